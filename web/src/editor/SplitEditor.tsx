// The split editor: a second editor group beside the first, with tabs of its own. Both
// groups are clients of the same files, as two browsers would be: a save in one reloads the
// other's tab unless it holds unsaved text (then it is told the file changed on disk).
import { useCallback, useEffect, useRef, useState } from 'react';
import type { WorkspaceClient } from '../api/workspace';
import type { FileChangedMessage, ServerMessage } from '../api/types';
import { ask, notify } from '../app/feedback';
import { Sash } from '../app/Sash';
import { EditorPane } from './EditorPane';
import { EditorModel } from './model';

export interface SplitEditor {
  /** The group a person works in now (where Ctrl+S saves). */
  focused: () => EditorModel;
  toggle: () => void;
  pane: React.ReactNode;
}

export function useSplitEditor(client: WorkspaceClient, main: EditorModel, workspaceId: string, onQuickOpen: () => void): SplitEditor {
  const [right] = useState(() => new EditorModel(client, { ask, notify }, { name: 'right', languageServers: false }));
  const [open, setOpen] = useState(false);
  const [width, setWidth] = useState(() => Math.round(window.innerWidth / 3));
  const lastFocus = useRef<'main' | 'right'>('main');
  const paneRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const offs = [
      client.socket.on('file_changed', (m: ServerMessage) => right.onFileChanged(m as unknown as FileChangedMessage)),
      client.socket.onWelcome(() => right.resync()),
    ];
    const onFocus = (e: FocusEvent) => {
      lastFocus.current = paneRef.current?.contains(e.target as Node) ? 'right' : 'main';
    };
    const onBefore = (e: BeforeUnloadEvent) => {
      right.persist();
      if (right.dirtyCount() > 0) e.preventDefault();
    };
    window.addEventListener('focusin', onFocus);
    window.addEventListener('beforeunload', onBefore);
    return () => {
      offs.forEach((off) => off());
      window.removeEventListener('focusin', onFocus);
      window.removeEventListener('beforeunload', onBefore);
      right.persist();
      right.dispose();
    };
  }, [client, right]);

  const toggle = useCallback(() => {
    if (open) {
      if (right.dirtyCount() > 0) {
        notify('The right group has unsaved changes: save or close its tabs first.', 'error');
        return;
      }
      setOpen(false);
      main.focus();
      return;
    }
    setOpen(true);
    // The split starts with the file in front on the left, as editors do.
    const path = main.activeTabPath;
    if (path) void right.open(path).then(() => right.focus());
  }, [open, main, right]);

  const pane = open && (
    <>
      <Sash orientation="vertical" value={width} min={240} max={Math.max(300, window.innerWidth - 500)} direction={-1} onChange={setWidth} label="Resize the split editor" />
      <div ref={paneRef} className="split-group" style={{ width }} data-testid="split-editor">
        <EditorPane editor={right} workspaceId={workspaceId} onQuickOpen={onQuickOpen} />
      </div>
    </>
  );
  return { focused: () => (open && lastFocus.current === 'right' ? right : main), toggle, pane };
}
