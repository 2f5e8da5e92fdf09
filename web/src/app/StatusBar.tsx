import { useEffect, useState, useSyncExternalStore } from 'react';
import type { ConnectionState } from '../api/control';
import type { EditorModel } from '../editor/model';
import { Icon } from './feedback';
import { LanguageServerStatus } from '../editor/ProblemsPanel';
import { DEFAULTS, settings } from './settings';

function useNow(active: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

export function connectionText(conn: ConnectionState, now: number): string {
  switch (conn.kind) {
    case 'connected':
      return 'Connected';
    case 'connecting':
      return 'Connecting…';
    case 'reconnecting': {
      const s = Math.max(0, Math.ceil((conn.retryAt - now) / 1000));
      return s > 0 ? `Reconnecting in ${s}s` : 'Reconnecting…';
    }
    case 'offline':
      return 'Offline';
    case 'closed':
      return 'Disconnected';
  }
}

export function StatusBar(props: {
  conn: ConnectionState;
  /** The workspace was stopped (or failed) and the IDE waits for a person to start it. */
  stopped: boolean;
  workspaceStatus: string | null;
  editor: EditorModel;
  runningProcesses: number;
  ports: number;
  onRetry: () => void;
  onShowPanel: (p: 'processes' | 'ports') => void;
}) {
  const { conn, editor } = props;
  const now = useNow(conn.kind === 'reconnecting');
  const cursor = useSyncExternalStore(editor.subscribe, editor.getCursor);
  const { tabs, active } = useSyncExternalStore(editor.subscribe, editor.getTabs);
  const lsp = useSyncExternalStore(editor.subscribe, editor.getLanguageServices);
  const tabSize = useSyncExternalStore(settings.subscribe, settings.get).tabSize ?? DEFAULTS.tabSize;
  const dirty = tabs.filter((t) => t.dirty).length;
  const text = props.stopped ? 'Workspace stopped' : connectionText(conn, now);
  // Red only when something is wrong: a connection that is being made, or a workspace a
  // person stopped, is a state, not an error.
  const bad = !props.stopped && (conn.kind === 'reconnecting' || conn.kind === 'offline' || conn.kind === 'closed');
  const neutral = props.stopped || conn.kind === 'connecting';

  return (
    <footer className={`statusbar${bad ? ' degraded' : neutral ? ' neutral' : ''}`} data-testid="status-bar" aria-label="Status bar">
      <div className="status-left">
        <button
          type="button"
          className={`status-item conn ${conn.kind}`}
          data-testid="connection-status"
          data-state={props.stopped ? 'stopped' : conn.kind}
          onClick={props.onRetry}
          title={bad ? 'Click to reconnect now' : 'The workspace connection is live'}
          aria-live="polite"
        >
          <span className="conn-indicator" aria-hidden="true" />
          {text}
        </button>
        {props.workspaceStatus && (
          <span className="status-item" role="status">
            {props.workspaceStatus}
          </span>
        )}
        <button type="button" className="status-item" onClick={() => props.onShowPanel('processes')} title="Show processes">
          <Icon name="play" size={12} /> {props.runningProcesses} running
        </button>
        <button type="button" className="status-item" onClick={() => props.onShowPanel('ports')} title="Show ports" data-testid="status-ports">
          <Icon name="ports" size={12} /> {props.ports === 1 ? '1 port' : `${props.ports} ports`}
        </button>
      </div>
      <div className="status-right">
        <LanguageServerStatus lsp={lsp} path={active} />
        {dirty > 0 && <span className="status-item" data-testid="status-dirty">{dirty} unsaved</span>}
        {cursor && (
          <>
            <span className="status-item" data-testid="status-cursor">
              Ln {cursor.line}, Col {cursor.col}
              {cursor.selected > 0 ? ` (${cursor.selected} selected)` : ''}
            </span>
            <span className="status-item">Spaces: {tabSize}</span>
            <span className="status-item">UTF-8</span>
            <span className="status-item">{cursor.lineSeparator}</span>
            <span className="status-item">{cursor.language}</span>
          </>
        )}
      </div>
    </footer>
  );
}
