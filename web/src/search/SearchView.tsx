// The sidebar's search view: a query with its options, results grouped by file as they
// stream in, and replace across files with a preview and one undo.
import { useEffect, useRef, useState } from 'react';
import type { SearchQuery } from '../api/generated';
import type { WorkspaceClient } from '../api/workspace';
import { Icon, notify } from '../app/feedback';
import { applyReplace, planReplace, runSearch, undoReplace, type FileReplacement, type SearchDone, type SearchMatch } from './search';

interface Options {
  regex: boolean;
  caseSensitive: boolean;
  wholeWord: boolean;
}

function Toggle({ on, label, text, onChange, testid }: { on: boolean; label: string; text: string; onChange: (v: boolean) => void; testid: string }) {
  return (
    <button type="button" className={`search-toggle${on ? ' on' : ''}`} aria-pressed={on} aria-label={label} title={label} onClick={() => onChange(!on)} data-testid={testid}>
      {text}
    </button>
  );
}

/** `text` with its `ranges` marked. */
function Marked({ text, ranges }: { text: string; ranges: [number, number][] }) {
  const parts: React.ReactNode[] = [];
  let at = 0;
  ranges.forEach(([s, e], i) => {
    if (s < at) return;
    parts.push(text.slice(at, s));
    parts.push(<mark key={i}>{text.slice(s, e)}</mark>);
    at = e;
  });
  parts.push(text.slice(at));
  return <>{parts}</>;
}

/** The first lines a replacement changes in a file: each before and after. */
function ChangedLines({ plan }: { plan: FileReplacement }) {
  const before = plan.before.split('\n');
  const after = plan.after.split('\n');
  if (before.length !== after.length) return null;
  const changed = before.map((b, i) => [i, b, after[i]] as const).filter(([, b, a]) => b !== a);
  return (
    <ul className="replace-lines">
      {changed.slice(0, 5).map(([i, b, a]) => (
        <li key={i}>
          <span className="search-line-no">{i + 1}</span> <del>{b.trim()}</del> <ins>{a.trim()}</ins>
        </li>
      ))}
      {changed.length > 5 && <li className="muted">and {changed.length - 5} more lines</li>}
    </ul>
  );
}

export function SearchView(props: {
  workspaceId: string;
  client: WorkspaceClient;
  readOnly: boolean;
  onOpen: (path: string, line: number, col: number) => void;
  focusKey: number;
}) {
  const [text, setText] = useState('');
  const [replacement, setReplacement] = useState('');
  const [showReplace, setShowReplace] = useState(false);
  const [showGlobs, setShowGlobs] = useState(false);
  const [include, setInclude] = useState('');
  const [exclude, setExclude] = useState('');
  const [options, setOptions] = useState<Options>({ regex: false, caseSensitive: false, wholeWord: false });
  const [matches, setMatches] = useState<SearchMatch[]>([]);
  const [done, setDone] = useState<SearchDone | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [searching, setSearching] = useState(false);
  const [preview, setPreview] = useState<FileReplacement[] | null>(null);
  const [undo, setUndo] = useState<FileReplacement[] | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const abortRef = useRef<AbortController | null>(null);

  useEffect(() => {
    inputRef.current?.focus();
    inputRef.current?.select();
  }, [props.focusKey]);

  const query = (): SearchQuery => ({ query: text, ...options, include: include || undefined, exclude: exclude || undefined });

  // Searches as the person types (a moment after they stop), each search ending the last.
  useEffect(() => {
    abortRef.current?.abort();
    setPreview(null);
    if (!text) {
      setMatches([]);
      setDone(null);
      setError(null);
      setSearching(false);
      return;
    }
    const abort = new AbortController();
    abortRef.current = abort;
    const timer = setTimeout(() => {
      setMatches([]);
      setDone(null);
      setError(null);
      setSearching(true);
      // Lines arrive in bursts: render in batches, not per line.
      let batch: SearchMatch[] = [];
      let flush: ReturnType<typeof setTimeout> | null = null;
      const push = () => {
        flush = null;
        const b = batch;
        batch = [];
        setMatches((m) => m.concat(b));
      };
      runSearch(
        props.workspaceId,
        query(),
        (line) => {
          if (abort.signal.aborted) return;
          if (line.type === 'match') {
            batch.push(line);
            flush ??= setTimeout(push, 50);
          } else if (line.type === 'done') {
            if (flush) clearTimeout(flush);
            push();
            setDone(line);
          } else setError(line.message);
        },
        abort.signal,
      )
        .catch((e) => {
          if (!abort.signal.aborted) setError(e instanceof Error ? e.message : String(e));
        })
        .finally(() => {
          if (!abort.signal.aborted) setSearching(false);
        });
    }, 200);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [text, options, include, exclude, props.workspaceId]);

  const byFile = new Map<string, SearchMatch[]>();
  for (const m of matches) {
    const list = byFile.get(m.path) ?? [];
    list.push(m);
    byFile.set(m.path, list);
  }

  const planAll = async () => {
    try {
      const { plans, changed } = await planReplace(props.client, byFile, query(), replacement);
      if (changed.length) notify(`Changed since the search, left out (search again to include them): ${changed.join(', ')}`, 'error');
      setPreview(plans);
    } catch (e) {
      notify(`Could not prepare the replacement: ${e instanceof Error ? e.message : String(e)}`, 'error');
    }
  };
  const applyAll = async () => {
    if (!preview) return;
    const { done: written, skipped } = await applyReplace(props.client, preview);
    setPreview(null);
    setUndo(written);
    const n = written.reduce((s, p) => s + p.count, 0);
    notify(`Replaced ${n} ${n === 1 ? 'match' : 'matches'} in ${written.length} ${written.length === 1 ? 'file' : 'files'}.${skipped.length ? ` Skipped (changed meanwhile): ${skipped.join(', ')}` : ''}`);
    setOptions((o) => ({ ...o })); // the results are stale: search again
  };
  const undoAll = async () => {
    if (!undo) return;
    const skipped = await undoReplace(props.client, undo);
    setUndo(null);
    notify(skipped.length ? `Undone, except files changed since: ${skipped.join(', ')}` : 'Replacement undone.');
    setOptions((o) => ({ ...o }));
  };

  return (
    <section className="sidebar-section search-view" aria-label="Search">
      <div className="section-header">
        <span>Search</span>
      </div>
      <div className="search-form">
        <div className="search-row">
          {!props.readOnly && (
            <button type="button" className="icon-button small" aria-label={showReplace ? 'Hide replace' : 'Show replace'} aria-expanded={showReplace} onClick={() => setShowReplace((v) => !v)} data-testid="search-toggle-replace">
              <Icon name={showReplace ? 'chevronDown' : 'chevronRight'} size={12} />
            </button>
          )}
          <input ref={inputRef} type="search" className="search-input" placeholder="Search" aria-label="Search in files" value={text} onChange={(e) => setText(e.target.value)} data-testid="search-input" />
          <Toggle on={options.caseSensitive} label="Match case" text="Aa" onChange={(v) => setOptions({ ...options, caseSensitive: v })} testid="search-case" />
          <Toggle on={options.wholeWord} label="Match whole word" text="ab" onChange={(v) => setOptions({ ...options, wholeWord: v })} testid="search-word" />
          <Toggle on={options.regex} label="Use regular expression" text=".*" onChange={(v) => setOptions({ ...options, regex: v })} testid="search-regex" />
        </div>
        {showReplace && !props.readOnly && (
          <div className="search-row">
            <input type="text" className="search-input" placeholder="Replace" aria-label="Replace with" value={replacement} onChange={(e) => setReplacement(e.target.value)} data-testid="replace-input" />
            <button type="button" className="button secondary small" disabled={byFile.size === 0 || searching} onClick={() => void planAll()} data-testid="replace-preview">
              Replace all…
            </button>
          </div>
        )}
        <button type="button" className="link-button small" aria-expanded={showGlobs} onClick={() => setShowGlobs((v) => !v)}>
          {showGlobs ? 'Hide file filters' : 'Files to include or exclude'}
        </button>
        {showGlobs && (
          <>
            <input type="text" className="search-input" placeholder="files to include (src/**, *.py)" aria-label="Files to include" value={include} onChange={(e) => setInclude(e.target.value)} data-testid="search-include" />
            <input type="text" className="search-input" placeholder="files to exclude" aria-label="Files to exclude" value={exclude} onChange={(e) => setExclude(e.target.value)} data-testid="search-exclude" />
          </>
        )}
      </div>
      <div className="search-summary" role="status" aria-live="polite" data-testid="search-summary">
        {searching && 'Searching…'}
        {!searching && done && (done.matches === 0 ? 'No results.' : `${done.matches} ${done.matches === 1 ? 'result' : 'results'} in ${byFile.size} ${byFile.size === 1 ? 'file' : 'files'}${done.truncated ? ' (stopped at the limit)' : ''}`)}
        {error && <span className="error"> {error}</span>}
        {undo && (
          <button type="button" className="button secondary small" onClick={() => void undoAll()} data-testid="replace-undo">
            Undo replace
          </button>
        )}
      </div>
      {preview && (
        <div className="replace-preview" data-testid="replace-preview-list" role="dialog" aria-label="Replace preview">
          <p>
            Replace {preview.reduce((s, p) => s + p.count, 0)} matches in {preview.length} files:
          </p>
          <ul>
            {preview.map((p) => (
              <li key={p.path}>
                {p.path} <span className="muted">({p.count})</span>
                <ChangedLines plan={p} />
              </li>
            ))}
          </ul>
          <div className="replace-actions">
            <button type="button" className="button primary small" onClick={() => void applyAll()} data-testid="replace-apply">
              Replace
            </button>
            <button type="button" className="button secondary small" onClick={() => setPreview(null)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      <div className="search-results" data-testid="search-results">
        {[...byFile].map(([path, list]) => (
          <div key={path} className="search-file" data-testid={`search-file-${path}`}>
            <div className="search-file-name" title={path}>
              <Icon name="file" size={14} /> {path.slice(path.lastIndexOf('/') + 1)} <span className="muted">{path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ''}</span>
              <span className="count-badge">{list.length}</span>
            </div>
            {list.map((m) => (
              <button type="button" key={`${m.line}`} className="search-hit" onClick={() => props.onOpen(m.path, Number(m.line), m.column + 1)}>
                <span className="search-line-no">{String(m.line)}</span>
                <span className="search-text">
                  {m.clipped && '…'}
                  <Marked text={m.text} ranges={m.ranges} />
                </span>
              </button>
            ))}
          </div>
        ))}
      </div>
    </section>
  );
}
