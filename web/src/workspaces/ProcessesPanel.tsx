import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { PortInfo, ProcessExit, ProcessInfo, ProcessOutput, ProcessStarted, ServerMessage, WelcomeMessage } from '../api/types';
import type { WorkspaceClient } from '../api/workspace';
import { Icon, notify } from '../app/feedback';

interface Proc {
  processId: string;
  label: string;
  running: boolean;
  exitCode?: number | null;
  signal?: string | number | null;
  pid?: number;
  chunks: { stream: string; data: string }[];
  size: number;
  startedAt?: number;
}

const MAX_LOG = 512 * 1024;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-B]/g;

const SIGNALS: Record<string, string> = { '1': 'SIGHUP', '2': 'SIGINT', '3': 'SIGQUIT', '6': 'SIGABRT', '9': 'SIGKILL', '13': 'SIGPIPE', '15': 'SIGTERM' };
function signalName(s: string | number | null | undefined): string {
  return SIGNALS[String(s)] ?? String(s);
}

function labelOf(command: string, args?: string[]): string {
  if ((command === 'sh' || command === 'bash' || command === '/bin/sh') && args && args[0] === '-c' && args.length >= 2) return args[1];
  return [command, ...(args ?? [])].join(' ');
}

function appendChunk(p: Proc, stream: string, data: string): Proc {
  const chunks = [...p.chunks];
  const last = chunks[chunks.length - 1];
  if (last && last.stream === stream && last.data.length < 16384) chunks[chunks.length - 1] = { stream, data: last.data + data };
  else chunks.push({ stream, data });
  let size = p.size + data.length;
  while (size > MAX_LOG && chunks.length > 1) {
    size -= chunks[0].data.length;
    chunks.shift();
  }
  return { ...p, chunks, size };
}

export function ProcessesPanel({
  client,
  runCommand,
  onCountChange,
  ports = [],
  portUrl,
  readOnly = false,
}: {
  client: WorkspaceClient;
  /** View access: follow the processes' output; run or stop none. */
  readOnly?: boolean;
  runCommand?: string;
  onCountChange?: (running: number) => void;
  /** The workspace's listening ports: each process shows the ones it opened. */
  ports?: PortInfo[];
  portUrl?: (port: number) => string;
}) {
  const [procs, setProcs] = useState<Proc[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [command, setCommand] = useState(runCommand ?? '');
  const [busy, setBusy] = useState(false);
  const outRef = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  const commandTouched = useRef(false);

  useEffect(() => {
    if (!commandTouched.current && runCommand) setCommand(runCommand);
  }, [runCommand]);

  const upsert = useCallback((id: string, fn: (p: Proc) => Proc, create?: () => Proc) => {
    setProcs((ps) => {
      const i = ps.findIndex((p) => p.processId === id);
      if (i < 0) {
        if (!create) return ps;
        return [...ps, fn(create())];
      }
      const copy = [...ps];
      copy[i] = fn(ps[i]);
      return copy;
    });
  }, []);

  useEffect(() => {
    const s = client.socket;
    const fromInfo = (info: ProcessInfo): Proc => ({
      processId: info.processId,
      label: labelOf(info.command, info.args),
      running: info.running,
      exitCode: info.exitCode,
      pid: info.pid ?? undefined,
      chunks: [],
      size: 0,
    });
    const onWelcome = (w: WelcomeMessage) => {
      const list = w.processes ?? [];
      setProcs((ps) => {
        const known = new Map(ps.map((p) => [p.processId, p]));
        const next: Proc[] = [];
        for (const info of list) {
          const old = known.get(info.processId);
          // The kept log is replayed on subscribe: start from empty.
          next.push(old ? { ...old, running: info.running, exitCode: info.exitCode, chunks: [], size: 0 } : fromInfo(info));
          known.delete(info.processId);
        }
        // Processes the server no longer reports keep their last known state.
        for (const p of known.values()) next.push({ ...p, running: false });
        return next;
      });
      for (const info of list) client.subscribeProcess(info.processId);
      setSelected((cur) => cur ?? list.find((p) => p.running)?.processId ?? list[list.length - 1]?.processId ?? null);
    };
    const offs = [
      s.onWelcome(onWelcome),
      s.on('process_started', (m: ServerMessage) => {
        const e = m as unknown as ProcessStarted;
        upsert(
          e.processId,
          (p) => ({ ...p, pid: e.pid ?? p.pid, label: labelOf(e.command, e.args) }),
          () => ({ processId: e.processId, label: labelOf(e.command, e.args), running: true, chunks: [], size: 0, startedAt: Date.now() }),
        );
      }),
      s.on('process_output', (m: ServerMessage) => {
        const e = m as unknown as ProcessOutput;
        upsert(
          e.processId,
          (p) => appendChunk(p, e.stream, String(e.data ?? '')),
          () => ({ processId: e.processId, label: e.processId, running: true, chunks: [], size: 0 }),
        );
      }),
      s.on('process_exit', (m: ServerMessage) => {
        const e = m as unknown as ProcessExit;
        upsert(e.processId, (p) => ({ ...p, running: false, exitCode: e.exitCode, signal: e.signal }));
      }),
    ];
    if (s.welcome) onWelcome(s.welcome);
    return () => offs.forEach((f) => f());
  }, [client, upsert]);

  useEffect(() => {
    onCountChange?.(procs.filter((p) => p.running).length);
  }, [procs, onCountChange]);

  const sel = procs.find((p) => p.processId === selected) ?? null;

  useLayoutEffect(() => {
    const el = outRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [sel?.chunks, selected]);

  const run = async () => {
    const cmd = command.trim();
    if (!cmd || busy || readOnly) return;
    setBusy(true);
    try {
      const r = await client.runCommand(cmd);
      upsert(
        r.processId,
        (p) => ({ ...p, pid: r.pid ?? p.pid, label: cmd }),
        () => ({ processId: r.processId, label: cmd, running: true, chunks: [], size: 0, startedAt: Date.now() }),
      );
      setSelected(r.processId);
      stick.current = true;
    } catch (e) {
      notify(`Could not start "${cmd}": ${e instanceof Error ? e.message : String(e)}`, 'error');
    } finally {
      setBusy(false);
    }
  };

  const clearFinished = () => {
    setProcs((ps) => ps.filter((p) => p.running));
    setSelected((s) => (procs.find((p) => p.processId === s)?.running ? s : null));
  };

  return (
    <div className="processes-panel">
      <div className="process-side">
        <form
          className="run-form"
          onSubmit={(e) => {
            e.preventDefault();
            void run();
          }}
        >
          <input
            className="input mono"
            value={command}
            placeholder={readOnly ? 'Read-only: you can follow output, not run commands' : 'Command to run, e.g. npm run dev'}
            aria-label="Command to run"
            data-testid="process-command"
            spellCheck={false}
            autoComplete="off"
            disabled={readOnly}
            onChange={(e) => {
              commandTouched.current = true;
              setCommand(e.target.value);
            }}
          />
          <button type="submit" className="button primary small" disabled={busy || readOnly || !command.trim()} data-testid="process-run" aria-label="Run command">
            <Icon name="play" /> Run
          </button>
        </form>
        <ul className="process-list" data-testid="process-list" aria-label="Processes">
          {procs.length === 0 && <li className="panel-note">{readOnly ? 'No processes yet.' : "No processes yet. Run your project's command above."}</li>}
          {[...procs].reverse().map((p) => (
            <li
              key={p.processId}
              className={`process-item${p.processId === selected ? ' selected' : ''}`}
              data-testid={`process-${p.processId}`}
              data-running={p.running ? 'true' : 'false'}
            >
              <button type="button" className="process-select" aria-pressed={p.processId === selected} onClick={() => setSelected(p.processId)}>
                <span className={`proc-state ${p.running ? 'running' : p.exitCode === 0 ? 'ok' : 'failed'}`} aria-hidden="true" />
                <span className="proc-label mono">{p.label}</span>
                {p.processId === 'init' && (
                  <span className="tag accent proc-tag" title="The template's init command: run once, at this workspace's first start" data-testid="process-init-tag">
                    init
                  </span>
                )}
                <span className="proc-status" data-testid="process-status">
                  {p.running ? 'running' : p.signal ? signalName(p.signal) : `exit ${p.exitCode ?? '?'}`}
                </span>
              </button>
              {readOnly ? null : p.running ? (
                <button type="button" className="icon-button tiny" aria-label={`Stop ${p.label}`} title="Stop" data-testid="process-stop" onClick={() => client.stopProcess(p.processId)}>
                  <Icon name="stop" size={14} />
                </button>
              ) : (
                <button
                  type="button"
                  className="icon-button tiny"
                  aria-label={`Run ${p.label} again`}
                  title="Run again"
                  onClick={() => {
                    setCommand(p.label);
                    commandTouched.current = true;
                  }}
                >
                  <Icon name="refresh" size={14} />
                </button>
              )}
            </li>
          ))}
        </ul>
        {procs.some((p) => !p.running) && (
          <button type="button" className="link-button small pad-x" onClick={clearFinished}>
            Clear finished
          </button>
        )}
      </div>
      <div className="process-output-wrap">
        {sel ? (
          <>
            <div className="process-output-head">
              <span className="mono">{sel.label}</span>
              <span className="muted">
                {sel.pid ? `pid ${sel.pid} · ` : ''}
                {sel.running ? 'running' : sel.signal ? `stopped by ${signalName(sel.signal)}` : `exited with code ${sel.exitCode ?? '?'}`}
              </span>
              {sel.running &&
                ports
                  .filter((p) => p.processId === sel.processId)
                  .map((p) => (
                    <a
                      key={p.port}
                      className="port-chip"
                      href={portUrl?.(p.port)}
                      target="_blank"
                      rel="noopener"
                      data-testid={`process-port-${p.port}`}
                      title={`Open the preview of port ${p.port}`}
                    >
                      <span className="port-dot" aria-hidden="true" />:{p.port} <Icon name="external" size={12} />
                    </a>
                  ))}
            </div>
            <pre
              ref={outRef}
              className="process-output"
              data-testid="process-output"
              tabIndex={0}
              aria-label={`Output of ${sel.label}`}
              onScroll={(e) => {
                const el = e.currentTarget;
                stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
              }}
            >
              {sel.running && sel.chunks.length === 0 && (
                <span className="muted" data-testid="process-no-output">
                  Running, no output yet.
                  {ports.some((p) => p.processId === sel.processId)
                    ? ' It is listening (see above).'
                    : ' Some programs hold their output until much later (Python prints at once with python3 -u).'}
                </span>
              )}
              {sel.chunks.map((c, i) => (
                <span key={i} className={c.stream === 'stderr' ? 'stderr' : undefined}>
                  {c.data.replace(ANSI, '')}
                </span>
              ))}
              {!sel.running && (
                <span className="proc-exit-line">
                  {'\n'}[{sel.signal ? `stopped by ${signalName(sel.signal)}` : `process exited with code ${sel.exitCode ?? '?'}`}]
                </span>
              )}
            </pre>
          </>
        ) : (
          <div className="panel-empty">
            <p>Select a process to see its output.</p>
          </div>
        )}
      </div>
    </div>
  );
}
