import { useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from 'react';
import { ApiError } from '../api/types';
import { baseName, joinPath, parentOf, type WorkspaceClient } from '../api/workspace';
import { Icon, confirmDanger, notify } from '../app/feedback';
import type { EditorModel } from '../editor/model';
import type { FileTreeModel, Row } from './model';
import { carriesFiles, downloadUrl, startDownload } from './upload';

type Edit = { kind: 'new-file' | 'new-folder'; dir: string } | { kind: 'rename'; path: string };

interface MenuState {
  x: number;
  y: number;
  path: string;
  isDir: boolean;
}

const EXT_COLORS: Record<string, string> = {
  py: '#3572a5', js: '#d4a72c', mjs: '#d4a72c', jsx: '#3fb5d9', ts: '#3178c6', tsx: '#3178c6', rs: '#c4633f',
  html: '#e34c26', css: '#663399', scss: '#c6538c', json: '#8b8b2a', md: '#5b8def', sh: '#4caf50', toml: '#9c4221',
  yaml: '#cb171e', yml: '#cb171e', go: '#00add8', txt: '#8a8a8a', lock: '#8a8a8a',
};

function fileColor(name: string): string | undefined {
  const dot = name.lastIndexOf('.');
  if (dot < 0) return undefined;
  return EXT_COLORS[name.slice(dot + 1).toLowerCase()];
}

function validName(name: string): string | null {
  if (!name.trim()) return 'A name is required.';
  if (name === '.' || name === '..') return 'This name is not allowed.';
  if (name.includes('\0')) return 'The name contains an invalid character.';
  return null;
}

const DRAG_TYPE = 'application/x-cove-path';

export function FileTree(props: {
  client: WorkspaceClient;
  tree: FileTreeModel;
  editor: EditorModel;
  activePath: string | null;
  workspaceName: string;
  /** View access: browse and open files; create, rename, move or delete none. */
  readOnly?: boolean;
  /** Files dropped from outside the page onto folder `dir` (the root: ''). */
  onDropFiles?: (dt: DataTransfer, dir: string) => void;
  /** What git sees changed, by path (a letter; folders holding changes: •). */
  decorations?: Map<string, string>;
  /** Upload files or a folder, chosen in the browser's dialog, into `dir`. */
  onPick?: (dir: string, folder: boolean) => void;
}) {
  const { client, tree, editor } = props;
  const readOnly = !!props.readOnly;
  const rows = useSyncExternalStore(tree.subscribe, tree.getRows);
  const [selected, setSelected] = useState<string | null>(null);
  const [edit, setEdit] = useState<Edit | null>(null);
  const [editValue, setEditValue] = useState('');
  const [editError, setEditError] = useState<string | null>(null);
  const [menu, setMenu] = useState<MenuState | null>(null);
  const [dropTarget, setDropTarget] = useState<string | null>(null);
  const rowRefs = useRef(new Map<string, HTMLDivElement>());
  const treeRef = useRef<HTMLDivElement>(null);
  const focusAfter = useRef<string | null>(null);
  const rootState = tree.dirState('');

  // Follow the active editor tab.
  useEffect(() => {
    if (props.activePath) setSelected(props.activePath);
  }, [props.activePath]);

  useLayoutEffect(() => {
    if (focusAfter.current) {
      const el = rowRefs.current.get(focusAfter.current);
      if (el) {
        el.focus();
        focusAfter.current = null;
      }
    }
  });

  const selectedRow = rows.find((r) => r.path === selected);
  const targetDir = (r?: Row | null): string => (r ? (r.kind === 'dir' ? r.path : parentOf(r.path)) : '');

  // Every change below would be refused by the server: with view access none is started.
  const startCreate = async (kind: 'new-file' | 'new-folder', dir: string) => {
    if (readOnly) return;
    if (dir) await tree.toggle(dir, true);
    setEdit({ kind, dir });
    setEditValue('');
    setEditError(null);
  };

  const startRename = (path: string) => {
    if (readOnly) return;
    setEdit({ kind: 'rename', path });
    setEditValue(baseName(path));
    setEditError(null);
  };

  const cancelEdit = () => {
    const e = edit;
    setEdit(null);
    setEditError(null);
    if (e?.kind === 'rename') focusAfter.current = e.path;
    else if (selected) focusAfter.current = selected;
  };

  const commitEdit = async () => {
    if (!edit) return;
    const name = editValue.trim();
    if (edit.kind === 'rename' && name === baseName(edit.path)) {
      cancelEdit();
      return;
    }
    if (edit.kind !== 'rename' && !name) {
      cancelEdit();
      return;
    }
    const bad = validName(name);
    if (bad) {
      setEditError(bad);
      return;
    }
    const dir = edit.kind === 'rename' ? parentOf(edit.path) : edit.dir;
    const target = joinPath(dir, name);
    const siblings = tree.dirState(dir)?.entries ?? [];
    if (!name.includes('/') && siblings.some((e) => e.name === name)) {
      setEditError(`A file or folder "${name}" already exists here.`);
      return;
    }
    try {
      if (edit.kind === 'new-file') {
        await client.writeFile(target, '');
        setEdit(null);
        await tree.refresh(dir);
        await tree.reveal(target);
        setSelected(target);
        await editor.open(target);
        editor.focus();
      } else if (edit.kind === 'new-folder') {
        await client.makeDir(target);
        setEdit(null);
        await tree.refresh(dir);
        setSelected(target);
        focusAfter.current = target;
      } else if (edit.kind === 'rename') {
        await client.renamePath(edit.path, target);
        editor.pathRenamed(edit.path, target);
        setEdit(null);
        await tree.refresh(dir);
        setSelected(target);
        focusAfter.current = target;
      }
      setEditError(null);
    } catch (e) {
      setEditError(e instanceof ApiError || e instanceof Error ? e.message : String(e));
    }
  };

  const remove = async (path: string, isDir: boolean) => {
    if (readOnly) return;
    const ok = await confirmDanger(
      isDir ? 'Delete folder' : 'Delete file',
      isDir ? `Delete the folder "${path}" and everything in it? This cannot be undone.` : `Delete "${path}"? This cannot be undone.`,
      'Delete',
    );
    if (!ok) {
      focusAfter.current = path;
      return;
    }
    try {
      await client.deletePath(path, true);
      editor.pathDeleted(path);
      await tree.refresh(parentOf(path));
      setSelected(parentOf(path) || null);
    } catch (e) {
      notify(`Could not delete ${path}: ${e instanceof Error ? e.message : String(e)}`, 'error');
    }
  };

  const move = async (from: string, toDir: string) => {
    if (readOnly) return;
    if (from === toDir || toDir.startsWith(from + '/') || parentOf(from) === toDir) return;
    const to = joinPath(toDir, baseName(from));
    if ((tree.dirState(toDir)?.entries ?? []).some((e) => e.name === baseName(from))) {
      notify(`"${baseName(from)}" already exists in ${toDir || 'the workspace root'}.`, 'error');
      return;
    }
    try {
      await client.renamePath(from, to);
      editor.pathRenamed(from, to);
      await Promise.all([tree.refresh(parentOf(from)), tree.refresh(toDir)]);
      if (toDir) await tree.toggle(toDir, true);
      setSelected(to);
    } catch (e) {
      notify(`Could not move ${from}: ${e instanceof Error ? e.message : String(e)}`, 'error');
    }
  };

  const activate = (r: Row) => {
    setSelected(r.path);
    if (r.kind === 'dir') void tree.toggle(r.path);
    else void editor.open(r.path);
  };

  const onKeyDown = (e: React.KeyboardEvent, r: Row) => {
    const idx = rows.indexOf(r);
    const go = (i: number) => {
      const t = rows[Math.max(0, Math.min(rows.length - 1, i))];
      if (t) {
        setSelected(t.path);
        rowRefs.current.get(t.path)?.focus();
      }
    };
    switch (e.key) {
      case 'ArrowDown':
        e.preventDefault();
        go(idx + 1);
        break;
      case 'ArrowUp':
        e.preventDefault();
        go(idx - 1);
        break;
      case 'Home':
        e.preventDefault();
        go(0);
        break;
      case 'End':
        e.preventDefault();
        go(rows.length - 1);
        break;
      case 'ArrowRight':
        e.preventDefault();
        if (r.kind === 'dir') {
          if (!r.expanded) void tree.toggle(r.path, true);
          else go(idx + 1);
        }
        break;
      case 'ArrowLeft':
        e.preventDefault();
        if (r.kind === 'dir' && r.expanded) void tree.toggle(r.path, false);
        else {
          const p = parentOf(r.path);
          if (p) go(rows.findIndex((x) => x.path === p));
        }
        break;
      case 'Enter':
        e.preventDefault();
        activate(r);
        break;
      case ' ':
        e.preventDefault();
        if (r.kind === 'dir') void tree.toggle(r.path);
        else void editor.open(r.path);
        break;
      case 'F2':
        e.preventDefault();
        startRename(r.path);
        break;
      case 'Delete':
        e.preventDefault();
        void remove(r.path, r.kind === 'dir');
        break;
      case 'ContextMenu':
      case 'F10':
        if (e.key === 'F10' && !e.shiftKey) break;
        e.preventDefault();
        {
          const rect = (e.currentTarget as HTMLElement).getBoundingClientRect();
          setMenu({ x: rect.left + 24, y: rect.bottom, path: r.path, isDir: r.kind === 'dir' });
        }
        break;
    }
  };

  // Rows with the inline editor inserted.
  const display: (Row | { edit: true; depth: number; key: string })[] = [];
  const editRow = (depth: number) => ({ edit: true as const, depth, key: '__edit__' });
  if (edit && edit.kind !== 'rename' && edit.dir === '') display.push(editRow(0));
  for (const r of rows) {
    display.push(r);
    if (edit && edit.kind !== 'rename' && r.kind === 'dir' && r.path === edit.dir) display.push(editRow(r.depth + 1));
  }

  const focusable = selected && rows.some((r) => r.path === selected) ? selected : rows[0]?.path;

  const renderEditInput = (depth: number, kind: 'file' | 'dir', initial?: string) => (
    <div className="tree-row editing" style={{ paddingLeft: 8 + depth * 12 }} key={initial ?? '__edit__'}>
      <span className="twistie" />
      <Icon name={kind === 'dir' ? 'folder' : 'file'} className="tree-icon" />
      <div className="tree-edit">
        <input
          className={`input tree-input${editError ? ' invalid' : ''}`}
          autoFocus
          value={editValue}
          aria-label={edit?.kind === 'rename' ? 'New name' : kind === 'dir' ? 'Folder name' : 'File name'}
          aria-invalid={!!editError}
          data-testid="tree-edit-input"
          onChange={(e) => {
            setEditValue(e.target.value);
            setEditError(null);
          }}
          onFocus={(e) => {
            const v = e.currentTarget.value;
            const dot = v.lastIndexOf('.');
            e.currentTarget.setSelectionRange(0, dot > 0 && kind === 'file' ? dot : v.length);
          }}
          onKeyDown={(e) => {
            e.stopPropagation();
            if (e.key === 'Enter') {
              e.preventDefault();
              void commitEdit();
            } else if (e.key === 'Escape') {
              e.preventDefault();
              cancelEdit();
            }
          }}
          onBlur={() => {
            if (editError) return;
            if (editValue.trim()) void commitEdit();
            else cancelEdit();
          }}
        />
        {editError && (
          <div className="tree-edit-error" role="alert">
            {editError}
          </div>
        )}
      </div>
    </div>
  );

  return (
    <section className="sidebar-section explorer" aria-label="Explorer">
      <div className="section-header">
        <h2 className="section-title" title={props.workspaceName}>
          {props.workspaceName}
        </h2>
        <div className="section-actions">
          {(
            [
              ['new-file', 'New file', 'newFile'],
              ['new-folder', 'New folder', 'newFolder'],
            ] as const
          ).map(([kind, label, icon]) => (
            <button
              key={kind}
              type="button"
              className="icon-button"
              title={readOnly ? `${label} (read-only workspace)` : label}
              aria-label={label}
              data-testid={`tree-${kind}`}
              disabled={readOnly}
              onClick={() => void startCreate(kind, targetDir(selectedRow))}
            >
              <Icon name={icon} />
            </button>
          ))}
          <button type="button" className="icon-button" title="Refresh" aria-label="Refresh file tree" onClick={() => void tree.resync()}>
            <Icon name="refresh" />
          </button>
          <button type="button" className="icon-button" title="Collapse folders" aria-label="Collapse all folders" onClick={() => tree.collapseAll()}>
            <Icon name="collapse" />
          </button>
        </div>
      </div>
      <div
        ref={treeRef}
        className={`tree${dropTarget === '' ? ' drop-root' : ''}`}
        role="tree"
        aria-label="Files"
        data-testid="file-tree"
        onDragOver={(e) => {
          const files = !readOnly && carriesFiles(e.dataTransfer);
          if (!e.dataTransfer.types.includes(DRAG_TYPE) && !files) return;
          e.preventDefault();
          e.dataTransfer.dropEffect = files ? 'copy' : 'move';
          if (e.target === treeRef.current) setDropTarget('');
        }}
        onDragLeave={(e) => {
          if (e.target === treeRef.current) setDropTarget(null);
        }}
        onDrop={(e) => {
          const from = e.dataTransfer.getData(DRAG_TYPE);
          setDropTarget(null);
          if (!from && !readOnly && carriesFiles(e.dataTransfer)) {
            e.preventDefault();
            props.onDropFiles?.(e.dataTransfer, '');
            return;
          }
          if (!from) return;
          e.preventDefault();
          void move(from, '');
        }}
        onContextMenu={(e) => {
          if (e.target === treeRef.current) {
            e.preventDefault();
            setMenu({ x: e.clientX, y: e.clientY, path: '', isDir: true });
          }
        }}
      >
        {rootState?.error && !rootState.entries && (
          <div className="tree-message error">
            {rootState.error}{' '}
            <button type="button" className="link-button" onClick={() => void tree.refresh('')}>
              Retry
            </button>
          </div>
        )}
        {!rootState?.entries && !rootState?.error && <div className="tree-message muted">Loading files…</div>}
        {rootState?.entries && rows.length === 0 && !edit && <div className="tree-message muted">This workspace is empty.</div>}
        {display.map((item) => {
          if ('edit' in item) return renderEditInput(item.depth, edit?.kind === 'new-folder' ? 'dir' : 'file');
          const r = item;
          if (edit?.kind === 'rename' && edit.path === r.path) return renderEditInput(r.depth, r.kind === 'dir' ? 'dir' : 'file', r.path);
          const isDir = r.kind === 'dir';
          const isSel = selected === r.path;
          const isActive = props.activePath === r.path;
          const dropHere = dropTarget !== null && dropTarget === r.path;
          return (
            <div
              key={r.path}
              ref={(el) => {
                if (el) rowRefs.current.set(r.path, el);
                else rowRefs.current.delete(r.path);
              }}
              role="treeitem"
              aria-level={r.depth + 1}
              aria-expanded={isDir ? r.expanded : undefined}
              aria-selected={isSel}
              aria-label={props.decorations?.has(r.path) ? `${r.name} (changed)` : r.name}
              tabIndex={r.path === focusable ? 0 : -1}
              className={`tree-row${isSel ? ' selected' : ''}${isActive ? ' active' : ''}${dropHere ? ' drop-target' : ''}`}
              style={{ paddingLeft: 8 + r.depth * 12 }}
              data-testid={`tree-item-${r.path}`}
              data-kind={r.kind}
              draggable={!readOnly}
              title={r.path}
              onClick={() => activate(r)}
              onKeyDown={(e) => onKeyDown(e, r)}
              onFocus={() => setSelected(r.path)}
              onContextMenu={(e) => {
                e.preventDefault();
                setSelected(r.path);
                setMenu({ x: e.clientX, y: e.clientY, path: r.path, isDir });
              }}
              onDragStart={(e) => {
                e.dataTransfer.setData(DRAG_TYPE, r.path);
                e.dataTransfer.setData('text/plain', r.path);
                e.dataTransfer.effectAllowed = 'move';
              }}
              onDragOver={(e) => {
                const files = !readOnly && carriesFiles(e.dataTransfer);
                if (!e.dataTransfer.types.includes(DRAG_TYPE) && !files) return;
                e.preventDefault();
                e.stopPropagation();
                e.dataTransfer.dropEffect = files ? 'copy' : 'move';
                setDropTarget(isDir ? r.path : parentOf(r.path));
              }}
              onDragEnd={() => setDropTarget(null)}
              onDrop={(e) => {
                const from = e.dataTransfer.getData(DRAG_TYPE);
                e.preventDefault();
                e.stopPropagation();
                setDropTarget(null);
                if (from) void move(from, isDir ? r.path : parentOf(r.path));
                else if (!readOnly && carriesFiles(e.dataTransfer)) props.onDropFiles?.(e.dataTransfer, isDir ? r.path : parentOf(r.path));
              }}
            >
              <span className="twistie" aria-hidden="true">
                {isDir && <Icon name={r.expanded ? 'chevronDown' : 'chevronRight'} size={14} />}
              </span>
              {isDir ? (
                <Icon name={r.expanded ? 'folderOpen' : 'folder'} className="tree-icon folder" />
              ) : (
                <span className="tree-icon file" style={{ color: fileColor(r.name) }}>
                  <Icon name="file" />
                </span>
              )}
              <span className="tree-label">{r.name}</span>
              {/* The letter is drawn by CSS (data-git): the row's name says it in words. */}
              {props.decorations?.get(r.path) && <span className={`tree-git git-${props.decorations.get(r.path) === '•' ? 'dir' : props.decorations.get(r.path)}`} data-git={props.decorations.get(r.path)} title="changed since the last commit" aria-hidden="true" />}
              {r.loading && <span className="tree-spinner" aria-label="loading" />}
            </div>
          );
        })}
      </div>
      {menu && (
        <ContextMenu
          x={menu.x}
          y={menu.y}
          onClose={(chosen) => {
            setMenu(null);
            if (!chosen && menu.path) focusAfter.current = menu.path;
          }}
          items={
            readOnly
              ? [menu.path ? { label: 'Copy Path', run: () => void navigator.clipboard?.writeText(menu.path) } : { label: 'Refresh', run: () => void tree.resync() }, download(menu, client.workspaceId)]
              : [
                  download(menu, client.workspaceId),
                  { label: 'New File…', run: () => void startCreate('new-file', menu.isDir ? menu.path : parentOf(menu.path)) },
                  { label: 'New Folder…', run: () => void startCreate('new-folder', menu.isDir ? menu.path : parentOf(menu.path)) },
                  { label: 'Upload Files…', run: () => props.onPick?.(menu.isDir ? menu.path : parentOf(menu.path), false) },
                  { label: 'Upload Folder…', run: () => props.onPick?.(menu.isDir ? menu.path : parentOf(menu.path), true) },
                  ...(menu.path
                    ? [
                        { separator: true as const },
                        { label: 'Rename…', hint: 'F2', run: () => startRename(menu.path) },
                        { label: 'Delete', hint: 'Del', danger: true, run: () => void remove(menu.path, menu.isDir) },
                        { separator: true as const },
                        { label: 'Copy Path', run: () => void navigator.clipboard?.writeText(menu.path) },
                      ]
                    : [{ label: 'Refresh', run: () => void tree.resync() }]),
                ]
          }
        />
      )}
    </section>
  );
}

type MenuItem = { label: string; hint?: string; danger?: boolean; run: () => void } | { separator: true };

/** The menu item that downloads a file, or a folder as a .tar.gz. */
function download(menu: MenuState, workspaceId: string): MenuItem {
  return { label: menu.isDir ? 'Download as .tar.gz' : 'Download', run: () => startDownload(downloadUrl(workspaceId, menu.path, menu.isDir)) };
}

function ContextMenu({ x, y, items, onClose }: { x: number; y: number; items: MenuItem[]; onClose: (chosen: boolean) => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const [pos, setPos] = useState({ x, y });
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const r = el.getBoundingClientRect();
    setPos({ x: Math.min(x, window.innerWidth - r.width - 4), y: Math.min(y, window.innerHeight - r.height - 4) });
    (el.querySelector('[role=menuitem]') as HTMLElement | null)?.focus();
  }, [x, y]);
  useEffect(() => {
    const down = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) onClose(false);
    };
    const blur = () => onClose(false);
    window.addEventListener('mousedown', down);
    window.addEventListener('blur', blur);
    return () => {
      window.removeEventListener('mousedown', down);
      window.removeEventListener('blur', blur);
    };
  }, [onClose]);
  const onKey = (e: React.KeyboardEvent) => {
    const list = [...(ref.current?.querySelectorAll<HTMLElement>('[role=menuitem]') ?? [])];
    const i = list.indexOf(document.activeElement as HTMLElement);
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      list[(i + 1) % list.length]?.focus();
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      list[(i - 1 + list.length) % list.length]?.focus();
    } else if (e.key === 'Escape' || e.key === 'Tab') {
      e.preventDefault();
      onClose(false);
    }
  };
  return (
    <div ref={ref} className="context-menu" role="menu" style={{ left: pos.x, top: pos.y }} onKeyDown={onKey}>
      {items.map((it, i) =>
        'separator' in it ? (
          <div key={i} className="menu-separator" role="separator" />
        ) : (
          <button
            key={i}
            type="button"
            role="menuitem"
            tabIndex={-1}
            className={`menu-item${it.danger ? ' danger' : ''}`}
            onClick={() => {
              onClose(true);
              it.run();
            }}
          >
            <span>{it.label}</span>
            {it.hint && <span className="menu-hint">{it.hint}</span>}
          </button>
        ),
      )}
    </div>
  );
}
