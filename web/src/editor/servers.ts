// Which language server serves a file (the socket's key) and the file's LSP language id.
// Kept apart from lsp.ts so that asking costs nothing: the LSP client loads only when a file
// of a language with a server opens.
const TABLE: Record<string, [string, string]> = {
  py: ['python', 'python'],
  pyi: ['python', 'python'],
  ts: ['typescript', 'typescript'],
  mts: ['typescript', 'typescript'],
  cts: ['typescript', 'typescript'],
  tsx: ['typescript', 'typescriptreact'],
  js: ['typescript', 'javascript'],
  mjs: ['typescript', 'javascript'],
  cjs: ['typescript', 'javascript'],
  jsx: ['typescript', 'javascriptreact'],
  rs: ['rust', 'rust'],
  go: ['go', 'go'],
  c: ['c', 'c'],
  h: ['c', 'c'],
  cc: ['c', 'cpp'],
  cpp: ['c', 'cpp'],
  hpp: ['c', 'cpp'],
};

export function serverFor(path: string): { server: string; languageId: string } | null {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (!name.includes('.')) return null;
  const found = TABLE[name.slice(name.lastIndexOf('.') + 1).toLowerCase()];
  return found ? { server: found[0], languageId: found[1] } : null;
}
