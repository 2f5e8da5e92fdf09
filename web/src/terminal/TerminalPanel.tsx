import { forwardRef, useCallback, useEffect, useImperativeHandle, useRef, useState } from 'react';
import '@xterm/xterm/css/xterm.css';
import type { TerminalInfo, WelcomeMessage } from '../api/types';
import type { WorkspaceClient } from '../api/workspace';
import { Icon } from '../app/feedback';
import { TermSession, type TermStatus } from './session';
import { THEME_EVENT } from '../app/theme';
import { settings } from '../app/settings';

interface TermTab {
  id: string;
  /** "1: bash" — the number, then the program once the server told us. */
  label: string;
  n: number;
  status: TermStatus;
  detail?: string;
}

export interface TerminalPanelHandle {
  newTerminal(): void;
  killActive(): void;
  focus(): void;
}

function programName(command?: string): string {
  if (!command) return '';
  const first = command.trim().split(/\s+/)[0] ?? '';
  return first.slice(first.lastIndexOf('/') + 1).replace(/^-/, '');
}

function newTerminalId(): string {
  const a = new Uint8Array(6);
  crypto.getRandomValues(a);
  return 't' + Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

export const TerminalPanel = forwardRef<
  TerminalPanelHandle,
  {
    client: WorkspaceClient;
    visible: boolean;
    /** View access: watch the workspace's terminals; open, type into, resize or kill none. */
    viewOnly?: boolean;
    onTabsChange?: (n: number) => void;
  }
>(
  function TerminalPanel({ client, visible, viewOnly = false, onTabsChange }, ref) {
    const [tabs, setTabs] = useState<TermTab[]>([]);
    // Read by the callbacks below without making new ones (and new sessions) when it changes.
    const viewOnlyRef = useRef(viewOnly);
    viewOnlyRef.current = viewOnly;
    const [active, setActive] = useState<string | null>(null);
    const sessions = useRef(new Map<string, TermSession>());
    const counter = useRef(0);
    const initialized = useRef(false);
    const hosts = useRef(new Map<string, HTMLDivElement>());

    const update = useCallback((id: string, patch: Partial<TermTab>) => {
      setTabs((ts) => ts.map((t) => (t.id === id ? { ...t, ...patch } : t)));
    }, []);

    // Name tabs after their program ("1: bash"), as the server reports it.
    const nameTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
    const refreshNames = useCallback(() => {
      if (nameTimer.current) return;
      nameTimer.current = setTimeout(() => {
        nameTimer.current = null;
        client
          .listTerminals()
          .then((list) => {
            // The program in the foreground now (vim while vim runs), else what it started with.
            const prog = new Map(list.map((t) => [t.terminalId, t.foreground || programName(t.command)]));
            setTabs((ts) =>
              ts.map((t) => {
                const name = prog.get(t.id);
                const label = name ? `${t.n}: ${name}` : t.label;
                return label === t.label ? t : { ...t, label };
              }),
            );
          })
          .catch(() => {
            /* keep the numbers */
          });
      }, 200);
    }, [client]);

    const addSession = useCallback(
      (id: string, activate: boolean, command?: string) => {
        if (sessions.current.has(id)) return;
        counter.current += 1;
        const n = counter.current;
        const label = `${n}: ${programName(command) || 'shell'}`;
        const s = new TermSession(client.workspaceId, id, {
          viewOnly: viewOnlyRef.current,
          mayReconnect: () => client.mayReconnect(),
          onStatus: (status, detail) => {
            update(id, { status, detail });
            if (status === 'attached' && !command) refreshNames();
          },
        });
        const { fontFamily, fontSize } = settings.get();
        s.setFont(fontFamily, fontSize);
        sessions.current.set(id, s);
        setTabs((ts) => [...ts, { id, label, n, status: 'connecting' }]);
        if (activate) setActive(id);
        else setActive((a) => a ?? id);
        const host = hosts.current.get(id);
        if (host) s.mount(host);
      },
      [client.workspaceId, update, refreshNames],
    );

    const newTerminal = useCallback(() => {
      // Opening a terminal is input: a viewer's would be refused.
      if (viewOnlyRef.current) return;
      const id = newTerminalId();
      addSession(id, true);
      requestAnimationFrame(() => sessions.current.get(id)?.focus());
    }, [addSession]);

    useImperativeHandle(ref, () => ({
      newTerminal,
      killActive: () => {
        if (active) close(active);
      },
      focus: () => {
        if (active) sessions.current.get(active)?.focus();
      },
    }));

    // The active terminal comes back after a reload (per workspace, in this browser).
    const activeKey = `cove.terminal.${client.workspaceId}`;
    useEffect(() => {
      if (!active) return;
      try {
        localStorage.setItem(activeKey, active);
      } catch {
        /* storage disabled */
      }
    }, [active, activeKey]);

    // Find the workspace's terminals again on every (re)connection.
    useEffect(() => {
      const sync = (w: WelcomeMessage) => {
        const list: TerminalInfo[] = (w.terminals ?? []).filter((t) => t.alive !== false);
        for (const t of list) addSession(t.terminalId, false, t.command);
        for (const s of sessions.current.values()) s.nudge();
        if (!initialized.current) {
          initialized.current = true;
          let kept: string | null = null;
          try {
            kept = localStorage.getItem(activeKey);
          } catch {
            kept = null;
          }
          if (kept && list.some((t) => t.terminalId === kept)) setActive(kept);
          if (list.length === 0 && sessions.current.size === 0 && !viewOnlyRef.current) newTerminal();
        }
      };
      const off = client.socket.onWelcome(sync);
      if (client.socket.welcome) sync(client.socket.welcome);
      return off;
    }, [client, addSession, newTerminal, activeKey]);

    useEffect(() => {
      const map = sessions.current;
      return () => {
        for (const s of map.values()) s.dispose();
        map.clear();
      };
    }, []);

    // Access changed while the IDE is open: each terminal reopens in its new mode.
    useEffect(() => {
      for (const s of sessions.current.values()) s.setViewOnly(viewOnly);
    }, [viewOnly]);

    useEffect(() => {
      onTabsChange?.(tabs.length);
    }, [tabs.length, onTabsChange]);

    // Keep the names current while the terminals are on screen (a program starts or ends
    // without any event): one small request every two seconds.
    useEffect(() => {
      if (!visible || tabs.length === 0) return;
      const t = setInterval(refreshNames, 2000);
      return () => clearInterval(t);
    }, [visible, tabs.length, refreshNames]);

    // Fit when shown or when the active tab changes.
    useEffect(() => {
      if (visible && active) sessions.current.get(active)?.scheduleFit();
    }, [visible, active]);

    useEffect(() => {
      const mq = window.matchMedia('(prefers-color-scheme: dark)');
      const on = () => {
        for (const s of sessions.current.values()) s.setTheme();
      };
      mq.addEventListener('change', on);
      // A theme chosen in cove: the CSS variables change at once; read them after.
      const onChoice = () => requestAnimationFrame(on);
      window.addEventListener(THEME_EVENT, onChoice);
      return () => {
        mq.removeEventListener('change', on);
        window.removeEventListener(THEME_EVENT, onChoice);
      };
    }, []);

    // The font follows the person's settings, as the editor's does.
    useEffect(
      () =>
        settings.subscribe(() => {
          const { fontFamily, fontSize } = settings.get();
          for (const s of sessions.current.values()) s.setFont(fontFamily, fontSize);
        }),
      [],
    );

    const close = (id: string) => {
      if (viewOnly) return;
      const s = sessions.current.get(id);
      if (s && !s.isExited) client.closeTerminal(id);
      s?.dispose();
      sessions.current.delete(id);
      setTabs((ts) => {
        const i = ts.findIndex((t) => t.id === id);
        const rest = ts.filter((t) => t.id !== id);
        setActive((a) => (a === id ? (rest[Math.min(i, rest.length - 1)]?.id ?? null) : a));
        return rest;
      });
    };

    const activeTab = tabs.find((t) => t.id === active);

    return (
      <div className="terminal-panel" data-testid="terminal-panel">
        <div className="terminal-body">
          {tabs.map((t) => (
            <div
              key={t.id}
              className="terminal-host"
              hidden={t.id !== active}
              data-testid={`terminal-${t.id}`}
              data-terminal-id={t.id}
              data-active={t.id === active ? 'true' : 'false'}
              aria-label={`Terminal ${t.label}`}
              ref={(el) => {
                if (!el) {
                  hosts.current.delete(t.id);
                  return;
                }
                hosts.current.set(t.id, el);
                sessions.current.get(t.id)?.mount(el);
              }}
            />
          ))}
          {tabs.length === 0 && (
            <div className="panel-empty">
              <p>No terminal is open.</p>
              {viewOnly ? (
                <p className="muted">Terminals opened by people who can edit this workspace show here.</p>
              ) : (
                <button type="button" className="button secondary small" onClick={newTerminal}>
                  <Icon name="plus" /> New terminal
                </button>
              )}
            </div>
          )}
          {activeTab && activeTab.status === 'reconnecting' && (
            <div className="terminal-overlay" role="status">
              Reconnecting…
            </div>
          )}
        </div>
        <div className="terminal-list" role="tablist" aria-label="Terminals" aria-orientation="vertical" hidden={tabs.length < 2}>
          {tabs.map((t) => (
            <div
              key={t.id}
              role="tab"
              aria-selected={t.id === active}
              tabIndex={t.id === active ? 0 : -1}
              className={`terminal-tab${t.id === active ? ' active' : ''}${t.status === 'exited' ? ' exited' : ''}`}
              data-testid={`terminal-tab-${t.id}`}
              title={t.status === 'exited' ? `${t.label} — exited (${t.detail ?? ''})` : t.label}
              onClick={() => {
                setActive(t.id);
                requestAnimationFrame(() => sessions.current.get(t.id)?.focus());
              }}
              onKeyDown={(e) => {
                const i = tabs.indexOf(t);
                if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
                  e.preventDefault();
                  const n = tabs[(i + (e.key === 'ArrowDown' ? 1 : tabs.length - 1)) % tabs.length];
                  setActive(n.id);
                  (e.currentTarget.parentElement?.children[tabs.indexOf(n)] as HTMLElement | undefined)?.focus();
                } else if (e.key === 'Enter' || e.key === ' ') {
                  e.preventDefault();
                  sessions.current.get(t.id)?.focus();
                } else if (e.key === 'Delete') {
                  e.preventDefault();
                  close(t.id);
                }
              }}
            >
              <Icon name="terminal" />
              <span className="terminal-tab-label">{t.label}</span>
              <span className={`conn-dot ${t.status}`} aria-label={t.status} />
              {!viewOnly && (
                <button
                  type="button"
                  className="icon-button tiny"
                  tabIndex={-1}
                  aria-label={`Kill ${t.label}`}
                  title="Kill terminal"
                  onClick={(e) => {
                    e.stopPropagation();
                    close(t.id);
                  }}
                >
                  <Icon name="trash" size={14} />
                </button>
              )}
            </div>
          ))}
        </div>
      </div>
    );
  },
);
