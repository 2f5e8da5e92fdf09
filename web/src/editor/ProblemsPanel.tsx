// The Problems panel: every diagnostic the language servers report for the open files,
// errors first; a click opens the file at the problem.
import { useSyncExternalStore } from 'react';
import { Icon } from '../app/feedback';
import type { LanguageServices, Problem } from './lsp';
import { serverFor } from './servers';

const NONE: Problem[] = [];
const noop = () => () => {};

/** The problems of `lsp` (none while no language server was needed). */
export function useProblems(lsp: LanguageServices | null): Problem[] {
  return useSyncExternalStore(lsp ? lsp.subscribe : noop, lsp ? lsp.getProblems : () => NONE);
}

export function ProblemsPanel({ lsp, onOpen }: { lsp: LanguageServices | null; onOpen: (path: string, line: number, col: number) => void }) {
  const problems = useProblems(lsp);
  if (problems.length === 0) {
    return (
      <p className="panel-empty muted" data-testid="problems-empty">
        No problems have been found in the open files.
      </p>
    );
  }
  return (
    <ul className="problems" data-testid="problems" aria-label="Problems">
      {problems.map((p, i) => (
        <li key={i}>
          <button type="button" className={`problem ${p.severity}`} onClick={() => onOpen(p.path, p.line, p.col)} data-testid="problem">
            <Icon name={p.severity === 'error' ? 'error' : 'info'} size={14} />
            <span className="problem-message">{p.message}</span>
            <span className="muted">
              {p.source ? `${p.source} · ` : ''}
              {p.path}:{p.line}:{p.col}
            </span>
          </button>
        </li>
      ))}
    </ul>
  );
}

/** The language server's word in the status bar: starting, ready, or why it stopped. */
export function LanguageServerStatus({ lsp, path }: { lsp: LanguageServices | null; path: string | null }) {
  const all = useSyncExternalStore(lsp ? lsp.subscribe : noop, lsp ? lsp.getStatus : () => null);
  const server = path ? serverFor(path)?.server : undefined;
  const status = server ? all?.[server] : undefined;
  if (!lsp || !status) return null;
  const stopped = status.state === 'stopped';
  return (
    <button
      type="button"
      className={`status-item lsp-status ${status.state}`}
      data-testid="lsp-status"
      data-state={status.state}
      title={stopped ? `${status.message} — click to try again` : status.message}
      onClick={() => stopped && lsp.retry(status.server)}
      aria-live="polite"
    >
      {stopped ? <Icon name="error" size={12} /> : <Icon name="circle" size={12} />} {stopped ? status.message : status.state === 'starting' ? status.message : status.server}
    </button>
  );
}
