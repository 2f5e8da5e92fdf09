// Language support by file extension, each pack loaded on first use.
import type { Extension } from '@codemirror/state';
import { StreamLanguage, type StreamParser } from '@codemirror/language';

type Loader = () => Promise<Extension>;

const legacy = (load: () => Promise<StreamParser<unknown>>): Loader => async () => StreamLanguage.define(await load());

const js = (opts: { jsx?: boolean; typescript?: boolean }): Loader => async () =>
  (await import('@codemirror/lang-javascript')).javascript(opts);

const LOADERS: Record<string, Loader> = {
  js: js({ jsx: true }),
  mjs: js({}),
  cjs: js({}),
  jsx: js({ jsx: true }),
  ts: js({ typescript: true }),
  mts: js({ typescript: true }),
  cts: js({ typescript: true }),
  tsx: js({ jsx: true, typescript: true }),
  py: async () => (await import('@codemirror/lang-python')).python(),
  pyi: async () => (await import('@codemirror/lang-python')).python(),
  rs: async () => (await import('@codemirror/lang-rust')).rust(),
  html: async () => (await import('@codemirror/lang-html')).html(),
  htm: async () => (await import('@codemirror/lang-html')).html(),
  vue: async () => (await import('@codemirror/lang-html')).html(),
  svg: async () => (await import('@codemirror/lang-html')).html(),
  css: async () => (await import('@codemirror/lang-css')).css(),
  scss: async () => (await import('@codemirror/lang-css')).css(),
  json: async () => (await import('@codemirror/lang-json')).json(),
  jsonc: async () => (await import('@codemirror/lang-json')).json(),
  md: async () => (await import('@codemirror/lang-markdown')).markdown(),
  markdown: async () => (await import('@codemirror/lang-markdown')).markdown(),
  sh: legacy(async () => (await import('@codemirror/legacy-modes/mode/shell')).shell),
  bash: legacy(async () => (await import('@codemirror/legacy-modes/mode/shell')).shell),
  zsh: legacy(async () => (await import('@codemirror/legacy-modes/mode/shell')).shell),
  toml: legacy(async () => (await import('@codemirror/legacy-modes/mode/toml')).toml),
  yaml: legacy(async () => (await import('@codemirror/legacy-modes/mode/yaml')).yaml),
  yml: legacy(async () => (await import('@codemirror/legacy-modes/mode/yaml')).yaml),
  go: legacy(async () => (await import('@codemirror/legacy-modes/mode/go')).go),
  dockerfile: legacy(async () => (await import('@codemirror/legacy-modes/mode/dockerfile')).dockerFile),
};

const NAME_LOADERS: Record<string, string> = {
  dockerfile: 'dockerfile',
  '.bashrc': 'sh',
  '.profile': 'sh',
  '.bash_profile': 'sh',
  '.zshrc': 'sh',
  'cargo.lock': 'toml',
  'pipfile': 'toml',
};

const LABELS: Record<string, string> = {
  js: 'JavaScript', mjs: 'JavaScript', cjs: 'JavaScript', jsx: 'JavaScript JSX',
  ts: 'TypeScript', mts: 'TypeScript', cts: 'TypeScript', tsx: 'TypeScript JSX',
  py: 'Python', pyi: 'Python', rs: 'Rust', html: 'HTML', htm: 'HTML', vue: 'Vue', svg: 'SVG',
  css: 'CSS', scss: 'SCSS', json: 'JSON', jsonc: 'JSON', md: 'Markdown', markdown: 'Markdown',
  sh: 'Shell', bash: 'Shell', zsh: 'Shell', toml: 'TOML', yaml: 'YAML', yml: 'YAML', go: 'Go',
  dockerfile: 'Dockerfile',
};

function keyFor(path: string): string | null {
  const name = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  if (NAME_LOADERS[name]) return NAME_LOADERS[name];
  const dot = name.lastIndexOf('.');
  if (dot < 0) return null;
  const ext = name.slice(dot + 1);
  return LOADERS[ext] ? ext : null;
}

const cache = new Map<string, Promise<Extension>>();

/** The language extension for a path, or null for plain text. */
export function loadLanguage(path: string): Promise<Extension> | null {
  const key = keyFor(path);
  if (!key) return null;
  let p = cache.get(key);
  if (!p) {
    p = LOADERS[key]();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

export function languageLabel(path: string): string {
  const key = keyFor(path);
  return key ? LABELS[key] ?? key : 'Plain Text';
}

const IMAGE_EXT = new Set(['png', 'jpg', 'jpeg', 'gif', 'webp', 'ico', 'bmp', 'avif']);
const BINARY_EXT = new Set(['zip', 'gz', 'tgz', 'xz', 'zst', 'tar', 'pdf', 'woff', 'woff2', 'ttf', 'otf', 'so', 'o', 'a', 'exe', 'wasm', 'pyc', 'class', 'jar', 'db', 'sqlite', 'mp3', 'mp4', 'webm', 'mov']);

export function fileKind(path: string): 'text' | 'image' | 'binary' {
  const name = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : '';
  if (IMAGE_EXT.has(ext)) return 'image';
  if (BINARY_EXT.has(ext)) return 'binary';
  return 'text';
}
