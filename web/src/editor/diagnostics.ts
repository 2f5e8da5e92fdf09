// What language servers report about the code, as the IDE shows it: a server is a program of
// the workspace, so its diagnostics are checked and cut before they reach the page.

/** One problem the language servers report, for the Problems panel. */
export interface Problem {
  path: string;
  line: number;
  col: number;
  severity: 'error' | 'warning' | 'info' | 'hint';
  message: string;
  source: string;
}

export function severityOf(n: number | undefined): Problem['severity'] {
  return n === 2 ? 'warning' : n === 3 ? 'info' : n === 4 ? 'hint' : 'error';
}

/** A server's diagnostics as the IDE can show them: anything malformed left out, text cut. */
export function cleanDiagnostics(items: unknown): unknown[] {
  if (!Array.isArray(items)) return [];
  const at = (p: unknown) => {
    const q = p as { line?: unknown; character?: unknown } | null;
    return q && Number.isInteger(q.line) && Number.isInteger(q.character) && (q.line as number) >= 0 && (q.character as number) >= 0 ? { line: q.line as number, character: q.character as number } : null;
  };
  return items.slice(0, 1000).flatMap((d) => {
    const item = d as { range?: { start?: unknown; end?: unknown }; severity?: unknown; message?: unknown; source?: unknown } | null;
    const start = at(item?.range?.start);
    const end = at(item?.range?.end);
    if (!item || !start || !end) return [];
    return [
      {
        range: { start, end },
        severity: [1, 2, 3, 4].includes(item.severity as number) ? item.severity : 1,
        message: String(item.message ?? '').slice(0, 2000),
        source: typeof item.source === 'string' ? item.source.slice(0, 100) : '',
      },
    ];
  });
}
