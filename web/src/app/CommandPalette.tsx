// The command palette (Ctrl+Shift+P): every action of the IDE with its shortcut, found by
// typing part of its name.
import { useEffect, useMemo, useRef, useState } from 'react';
import { fuzzyFilter } from '../files/fuzzy';

export interface PaletteCommand {
  id: string;
  label: string;
  shortcut?: string;
  run: () => void;
}

export function CommandPalette({ commands, onClose }: { commands: PaletteCommand[]; onClose: () => void }) {
  const [query, setQuery] = useState('');
  const [index, setIndex] = useState(0);
  const listRef = useRef<HTMLUListElement>(null);
  const byLabel = useMemo(() => new Map(commands.map((c) => [c.label, c])), [commands]);
  const results = useMemo(() => fuzzyFilter(query, [...byLabel.keys()], 100).map((r) => byLabel.get(r.path)!), [query, byLabel]);
  useEffect(() => setIndex(0), [query]);
  useEffect(() => {
    listRef.current?.querySelector(`[data-index="${index}"]`)?.scrollIntoView({ block: 'nearest' });
  }, [index]);
  const run = (c: PaletteCommand | undefined) => {
    if (!c) return;
    onClose();
    // After the palette is gone, so that the command's focus changes stick.
    requestAnimationFrame(() => c.run());
  };
  return (
    <div className="quick-open-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className="quick-open" role="dialog" aria-label="Command palette" data-testid="command-palette">
        <div className="quick-open-input">
          <span aria-hidden="true">&gt;</span>
          <input
            autoFocus
            value={query}
            placeholder="Type a command"
            aria-label="Type a command"
            role="combobox"
            aria-expanded="true"
            aria-controls="palette-list"
            aria-activedescendant={results[index] ? `pc-${index}` : undefined}
            onChange={(e) => setQuery(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'ArrowDown') {
                e.preventDefault();
                setIndex((i) => Math.min(i + 1, results.length - 1));
              } else if (e.key === 'ArrowUp') {
                e.preventDefault();
                setIndex((i) => Math.max(i - 1, 0));
              } else if (e.key === 'Enter') {
                e.preventDefault();
                run(results[index]);
              } else if (e.key === 'Escape') {
                e.preventDefault();
                onClose();
              }
            }}
          />
        </div>
        <ul id="palette-list" ref={listRef} role="listbox" className="quick-open-list" aria-label="Commands">
          {results.map((c, i) => (
            <li
              key={c.id}
              id={`pc-${i}`}
              data-index={i}
              role="option"
              aria-selected={i === index}
              className={`quick-open-item${i === index ? ' active' : ''}`}
              data-testid={`command-${c.id}`}
              onMouseMove={() => setIndex(i)}
              onClick={() => run(c)}
            >
              <span className="palette-label">{c.label}</span>
              {c.shortcut && <kbd className="palette-key">{c.shortcut}</kbd>}
            </li>
          ))}
          {results.length === 0 && <li className="quick-open-empty">No command matches.</li>}
        </ul>
      </div>
    </div>
  );
}
