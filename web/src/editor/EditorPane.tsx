import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { Icon } from '../app/feedback';
import type { EditorModel, TabInfo } from './model';
import { MarkdownPreview } from './MarkdownPreview';

function isMac(): boolean {
  return /Mac|iPhone|iPad/.test(navigator.platform);
}

/** The REST URL of a workspace file (downloads as an attachment). */
function fileUrl(workspaceId: string, path: string): string {
  return `/api/workspaces/${encodeURIComponent(workspaceId)}/files/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** Tabs of files with the same name also show their folder ("index.ts — src/api"). */
function tabTitles(tabs: TabInfo[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const t of tabs) count.set(t.title, (count.get(t.title) ?? 0) + 1);
  return new Map(
    tabs.map((t) => {
      if ((count.get(t.title) ?? 0) < 2) return [t.path, ''];
      const dir = t.path.slice(0, t.path.length - t.title.length).replace(/\/$/, '');
      return [t.path, dir || '/'];
    }),
  );
}

/** The first bytes of a binary file as a hex dump: offset, 16 bytes, their ASCII. */
function HexView({ editor, path }: { editor: EditorModel; path: string }) {
  const [dump, setDump] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    editor
      .readBytes(path)
      .then((bytes) => {
        if (!live) return;
        const lines: string[] = [];
        for (let off = 0; off < bytes.length; off += 16) {
          const row = bytes.subarray(off, off + 16);
          const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
          const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
          lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
        }
        setDump(lines.join('\n'));
      })
      .catch((e) => live && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      live = false;
    };
  }, [editor, path]);
  if (error) return <p className="error">Could not read it: {error}</p>;
  return (
    <pre className="hex-view" data-testid="hex-view" tabIndex={0} aria-label={`Bytes of ${path}`}>
      {dump ?? 'Reading…'}
    </pre>
  );
}

/** What the editor shows for a file it does not open as text, with a way forward. */
function NotText({ editor, workspaceId, tab }: { editor: EditorModel; workspaceId: string; tab: TabInfo }) {
  const [hex, setHex] = useState(false);
  const large = tab.kind === 'large';
  return (
    <div className="editor-placeholder not-text" data-testid="not-text">
      <p>
        <strong>{tab.title}</strong>{' '}
        {large ? 'is too large to open in the editor.' : 'is a binary file (not UTF-8 text), so the editor does not open it.'}
      </p>
      <p className="not-text-actions">
        <a className="button secondary small" href={fileUrl(workspaceId, tab.path)} download={tab.title} data-testid="download-file">
          <Icon name="download" /> Download
        </a>
        {!large && !hex && (
          <button type="button" className="button secondary small" onClick={() => setHex(true)} data-testid="show-hex">
            Show bytes (hex)
          </button>
        )}
      </p>
      {hex && <HexView editor={editor} path={tab.path} />}
    </div>
  );
}

export function EditorPane({ editor, workspaceId, onQuickOpen }: { editor: EditorModel; workspaceId: string; onQuickOpen: () => void }) {
  const { tabs, active, readOnly } = useSyncExternalStore(editor.subscribe, editor.getTabs);
  const folders = tabTitles(tabs);
  const hostRef = useRef<HTMLDivElement>(null);
  const tabRefs = useRef(new Map<string, HTMLDivElement>());
  const activeTab = tabs.find((t) => t.path === active);

  useEffect(() => {
    if (hostRef.current) editor.attach(hostRef.current);
    return () => editor.detach();
  }, [editor]);

  useEffect(() => {
    if (active) tabRefs.current.get(active)?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }, [active]);

  const showEditor = !!activeTab && activeTab.kind === 'text' && !activeTab.loading && !activeTab.error;
  const [preview, setPreview] = useState<Record<string, boolean>>({});
  const previewing = !!activeTab && !!preview[activeTab.path];
  const mod = isMac() ? '⌘' : 'Ctrl+';

  const onTabKey = (e: React.KeyboardEvent, t: TabInfo) => {
    const i = tabs.findIndex((x) => x.path === t.path);
    let next: TabInfo | undefined;
    if (e.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
    else if (e.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
    else if (e.key === 'Delete' || (e.key === 'w' && (e.ctrlKey || e.metaKey))) {
      e.preventDefault();
      void editor.close(t.path);
      return;
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      editor.activate(t.path);
      editor.focus();
      return;
    }
    if (next) {
      e.preventDefault();
      editor.activate(next.path);
      tabRefs.current.get(next.path)?.focus();
    }
  };

  return (
    <section className="editor-area" aria-label="Editor">
      {tabs.length > 0 && (
        <div className="tab-strip" role="tablist" aria-label="Open files" data-testid="editor-tabs">
          {tabs.map((t) => {
            const isActive = t.path === active;
            return (
              <div
                key={t.path}
                ref={(el) => {
                  if (el) tabRefs.current.set(t.path, el);
                  else tabRefs.current.delete(t.path);
                }}
                role="tab"
                aria-selected={isActive}
                tabIndex={isActive ? 0 : -1}
                className={`editor-tab${isActive ? ' active' : ''}${t.dirty ? ' dirty' : ''}${t.deleted ? ' deleted' : ''}`}
                title={t.path + (t.deleted ? ' (deleted on disk)' : t.diskChanged ? ' (changed on disk)' : '')}
                data-testid={`editor-tab-${t.path}`}
                data-dirty={t.dirty ? 'true' : 'false'}
                onClick={() => editor.activate(t.path)}
                onAuxClick={(e) => {
                  if (e.button === 1) {
                    e.preventDefault();
                    void editor.close(t.path);
                  }
                }}
                onKeyDown={(e) => onTabKey(e, t)}
              >
                <span className="tab-label">{t.title}</span>
                {folders.get(t.path) && <span className="tab-folder">{folders.get(t.path)}</span>}
                {t.saving && <span className="tab-saving" aria-label="saving" />}
                {/* For the pointer only: keyboards close a tab with Delete or Ctrl+W on it (a
                    button inside a tab would be a control nested in a control). */}
                <span
                  className="tab-close"
                  aria-hidden="true"
                  data-testid={`close-tab-${t.path}`}
                  title={t.dirty ? 'Unsaved changes — close' : 'Close'}
                  onClick={(e) => {
                    e.stopPropagation();
                    void editor.close(t.path);
                  }}
                >
                  <span className="dirty-dot" />
                  <Icon name="close" size={14} />
                </span>
              </div>
            );
          })}
        </div>
      )}
      {activeTab && (activeTab.diskChanged || activeTab.deleted) && !activeTab.loading && (
        <div className="editor-banner" role="status">
          <Icon name="info" />
          {activeTab.deleted ? (
            <span>This file was deleted on disk.{readOnly ? '' : ' Save to create it again.'}</span>
          ) : (
            <span>This file changed on disk while you were editing it.</span>
          )}
          {!activeTab.deleted && (
            <button type="button" className="button secondary small" onClick={() => editor.reloadTab(activeTab.path)}>
              Reload from disk
            </button>
          )}
          {!readOnly && (
            <button type="button" className="button secondary small" onClick={() => void editor.save(activeTab.path)}>
              {activeTab.deleted ? 'Save' : 'Save (you will be asked)'}
            </button>
          )}
        </div>
      )}
      {activeTab && activeTab.path && (
        <nav className="breadcrumbs" aria-label="File path">
          {/\.(md|markdown)$/i.test(activeTab.path) && (
            <button type="button" className={`link-button preview-toggle${previewing ? ' on' : ''}`} aria-pressed={previewing} onClick={() => setPreview((p) => ({ ...p, [activeTab.path]: !p[activeTab.path] }))} data-testid="markdown-preview-toggle">
              {previewing ? 'Hide preview' : 'Open preview'}
            </button>
          )}
          {activeTab.path.split('/').map((part, i, arr) => (
            <span key={i} className={i === arr.length - 1 ? 'crumb last' : 'crumb'}>
              {part}
              {i < arr.length - 1 && <Icon name="chevronRight" size={12} />}
            </span>
          ))}
        </nav>
      )}
      <div className={`editor-body${showEditor && previewing ? ' previewing' : ''}`}>
        <div ref={hostRef} className="editor-host" data-testid="editor" hidden={!showEditor} />
        {showEditor && previewing && activeTab && <MarkdownPreview editor={editor} path={activeTab.path} />}
        {activeTab?.loading && <div className="editor-placeholder">Opening {activeTab.path}…</div>}
        {activeTab?.error && (
          <div className="editor-placeholder error" role="alert">
            Could not open {activeTab.path}: {activeTab.error}
          </div>
        )}
        {activeTab?.kind === 'image' && (
          <div className="editor-placeholder image">
            <img src={fileUrl(workspaceId, activeTab.path)} alt={activeTab.path} />
          </div>
        )}
        {(activeTab?.kind === 'binary' || activeTab?.kind === 'large') && <NotText key={activeTab.path} editor={editor} workspaceId={workspaceId} tab={activeTab} />}
        {!activeTab && (
          <div className="editor-welcome">
            <div className="welcome-mark" aria-hidden="true">
              <Icon name="logo" size={56} />
            </div>
            <dl className="shortcuts">
              <dt>Go to file</dt>
              <dd>
                <button type="button" className="link-button" onClick={onQuickOpen}>
                  <kbd>{mod}P</kbd>
                </button>
              </dd>
              {!readOnly && (
                <>
                  <dt>Save</dt>
                  <dd>
                    <kbd>{mod}S</kbd>
                  </dd>
                </>
              )}
              <dt>Toggle terminal</dt>
              <dd>
                <kbd>Ctrl+`</kbd>
              </dd>
              <dt>Find in file</dt>
              <dd>
                <kbd>{mod}F</kbd>
              </dd>
            </dl>
          </div>
        )}
      </div>
    </section>
  );
}
