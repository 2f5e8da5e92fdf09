import { useEffect, useMemo, useRef, useState } from 'react';
import { Icon } from '../app/feedback';
import { fuzzyFilter, type FuzzyResult } from './fuzzy';
import type { FileTreeModel } from './model';

function Highlighted({ text, positions, offset }: { text: string; positions: Set<number>; offset: number }) {
  const out: React.ReactNode[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    out.push(positions.has(i + offset) ? <mark key={i}>{ch}</mark> : ch);
  }
  return <>{out}</>;
}

export function QuickOpen({ tree, onOpen, onClose }: { tree: FileTreeModel; onOpen: (path: string) => void; onClose: () => void }) {
  const [query, setQuery] = useState('');
  const [files, setFiles] = useState<string[] | null>(null);
  const [truncated, setTruncated] = useState(false);
  const [index, setIndex] = useState(0);
  const listRef = useRef<HTMLUListElement>(null);
  const boxRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let live = true;
    tree.listAllFiles().then((r) => {
      if (!live) return;
      setFiles(r.files);
      setTruncated(r.truncated);
    });
    return () => {
      live = false;
    };
  }, [tree]);

  useEffect(() => {
    const down = (e: MouseEvent) => {
      if (boxRef.current && !boxRef.current.contains(e.target as Node)) onClose();
    };
    window.addEventListener('mousedown', down);
    return () => window.removeEventListener('mousedown', down);
  }, [onClose]);

  const results: FuzzyResult[] = useMemo(() => (files ? fuzzyFilter(query, files, 60) : []), [files, query]);

  useEffect(() => setIndex(0), [query]);
  useEffect(() => {
    listRef.current?.querySelector('[aria-selected=true]')?.scrollIntoView({ block: 'nearest' });
  }, [index]);

  const choose = (r?: FuzzyResult) => {
    if (!r) return;
    onOpen(r.path);
  };

  return (
    <div className="quick-open-backdrop">
      <div ref={boxRef} className="quick-open" role="dialog" aria-label="Go to file" data-testid="quick-open">
        <div className="quick-open-input">
          <Icon name="search" />
          <input
            autoFocus
            value={query}
            placeholder="Search files by name"
            aria-label="Search files by name"
            role="combobox"
            aria-expanded="true"
            aria-controls="quick-open-list"
            aria-activedescendant={results[index] ? `qo-${index}` : undefined}
            spellCheck={false}
            onChange={(e) => setQuery(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'ArrowDown') {
                e.preventDefault();
                setIndex((i) => Math.min(results.length - 1, i + 1));
              } else if (e.key === 'ArrowUp') {
                e.preventDefault();
                setIndex((i) => Math.max(0, i - 1));
              } else if (e.key === 'Enter') {
                e.preventDefault();
                choose(results[index]);
              } else if (e.key === 'Escape') {
                e.preventDefault();
                onClose();
              }
            }}
          />
        </div>
        <ul id="quick-open-list" ref={listRef} className="quick-open-list" role="listbox" aria-label="Files">
          {files === null && <li className="quick-open-empty">Indexing files…</li>}
          {files && results.length === 0 && <li className="quick-open-empty">No matching files</li>}
          {results.map((r, i) => {
            const slash = r.path.lastIndexOf('/');
            const name = r.path.slice(slash + 1);
            const dir = slash >= 0 ? r.path.slice(0, slash) : '';
            const pos = new Set(r.positions);
            return (
              <li
                key={r.path}
                id={`qo-${i}`}
                role="option"
                aria-selected={i === index}
                className={i === index ? 'selected' : undefined}
                onMouseMove={() => setIndex(i)}
                onClick={() => choose(r)}
                data-testid={`quick-open-item-${r.path}`}
              >
                <Icon name="file" />
                <span className="qo-name">
                  <Highlighted text={name} positions={pos} offset={slash + 1} />
                </span>
                {dir && (
                  <span className="qo-dir">
                    <Highlighted text={dir} positions={pos} offset={0} />
                  </span>
                )}
              </li>
            );
          })}
          {truncated && <li className="quick-open-empty">Only the first files were indexed.</li>}
        </ul>
      </div>
    </div>
  );
}
