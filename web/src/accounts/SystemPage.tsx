// The administrators' live dashboard: running workspaces with their CPU, memory and disk
// against their limits, open connections by kind, start latency and recent errors. Fed by
// the `/system` Socket.IO namespace (a `stats` event about once a second), not by polling.
import { useEffect, useState } from 'react';
import { io, type Socket } from 'socket.io-client';
import type { HostStats, RealtimeError, StatsEvent, WorkspaceStats } from '../api/generated';
import { linkHandler } from '../app/router';
import { formatTime } from './format';

type Link = 'connecting' | 'live' | 'lost';

/** Follows `/system` while mounted: the latest `stats`, and the state of the link. */
function useSystemStats(): { stats: StatsEvent | null; link: Link; error: string | null } {
  const [stats, setStats] = useState<StatsEvent | null>(null);
  const [link, setLink] = useState<Link>('connecting');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const socket: Socket = io('/system', { transports: ['websocket', 'polling'] });
    socket.on('connect', () => {
      setLink('live');
      setError(null);
      socket.emit('subscribe:stats', {});
    });
    socket.on('disconnect', () => setLink('lost'));
    socket.on('connect_error', () => setLink('lost'));
    socket.on('stats', (event: StatsEvent) => setStats(event));
    socket.on('error', (e: RealtimeError) => setError(e.message));
    return () => {
      socket.close();
    };
  }, []);
  return { stats, link, error };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

function bytes(n: number): string {
  let v = n;
  let unit = 0;
  while (v >= 1024 && unit < UNITS.length - 1) {
    v /= 1024;
    unit += 1;
  }
  return `${v < 10 && unit > 0 ? v.toFixed(1) : Math.round(v)} ${UNITS[unit]}`;
}

/** A value against its limit, as text and a bar (no bar without a limit). */
function Meter({ label, value, limit, format }: { label: string; value: number; limit: number | null; format: (n: number) => string }) {
  const share = limit ? Math.min(1, value / limit) : null;
  const level = share === null ? '' : share > 0.9 ? 'danger' : share > 0.7 ? 'warning' : '';
  return (
    <div className="usage" title={limit ? `${format(value)} of ${format(limit)}` : `${format(value)} (no limit)`}>
      <span className="usage-text">
        {format(value)}
        {limit ? <span className="muted"> / {format(limit)}</span> : null}
      </span>
      {share !== null && (
        <span className={`usage-bar ${level}`} role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={limit ?? 0} aria-valuenow={value}>
          <span style={{ width: `${(share * 100).toFixed(1)}%` }} />
        </span>
      )}
    </div>
  );
}

function WorkspaceRow({ w }: { w: WorkspaceStats }) {
  const path = `/w/${encodeURIComponent(w.workspaceId)}`;
  return (
    <tr data-testid={`system-workspace-${w.name}`}>
      <td data-label="Workspace">
        <a href={path} onClick={linkHandler(path)}>
          {w.name}
        </a>
      </td>
      <td data-label="Owner">{w.owner}</td>
      <td data-label="CPU" className="nowrap">
        {w.cpuPercent.toFixed(1)}%
      </td>
      <td data-label="Memory">
        <Meter label={`memory of ${w.name}`} value={w.memoryBytes} limit={w.memoryLimitBytes} format={bytes} />
      </td>
      <td data-label="Disk">
        <Meter label={`disk of ${w.name}`} value={w.diskBytes} limit={w.diskLimitBytes} format={bytes} />
      </td>
      <td data-label="Processes" className="nowrap">
        {w.pids} <span className="muted">({w.terminals === 1 ? '1 terminal' : `${w.terminals} terminals`})</span>
      </td>
    </tr>
  );
}

function Host({ host }: { host: HostStats }) {
  const used = host.memoryTotalBytes - host.memoryAvailableBytes;
  const open = Object.entries(host.connections).filter(([, n]) => n > 0);
  return (
    <div className="system-cards">
      <div className="system-card" data-testid="system-host">
        <h2>Machine</h2>
        <p>
          Load <strong>{host.load.toFixed(2)}</strong> on {host.cpuCount} CPUs
        </p>
        <Meter label="memory of the machine" value={used} limit={host.memoryTotalBytes} format={bytes} />
        <p className="muted">cove's server uses {bytes(host.serverMemoryBytes)}</p>
      </div>
      <div className="system-card" data-testid="system-connections">
        <h2>Connections</h2>
        {open.length === 0 ? (
          <p className="muted">None open.</p>
        ) : (
          <ul className="system-counts">
            {open.map(([kind, n]) => (
              <li key={kind}>
                <span className="mono">{kind}</span> <strong>{n}</strong>
              </li>
            ))}
          </ul>
        )}
      </div>
      <div className="system-card" data-testid="system-starts">
        <h2>Workspace starts</h2>
        <p>
          <strong>{host.runningWorkspaces}</strong> running
        </p>
        <p>
          {host.starts} started since the server began
          {host.starts > 0 && (
            <>
              , in <strong>{Math.round(host.startMeanMs)} ms</strong> on average
            </>
          )}
        </p>
      </div>
    </div>
  );
}

export function SystemPage() {
  const { stats, link, error } = useSystemStats();
  const host = stats?.host ?? null;
  return (
    <section className="system-page" data-testid="system-page">
      <p className="muted">
        <span className={`tag ${link === 'live' ? 'success' : link === 'lost' ? 'danger' : ''}`} data-testid="system-link">
          {link === 'live' ? 'live' : link === 'lost' ? 'reconnecting' : 'connecting'}
        </span>{' '}
        Updated about once a second.
      </p>
      {error && (
        <div className="banner error" role="alert">
          {error}
        </div>
      )}
      {!stats && !error && <p className="muted">Waiting for the first figures…</p>}
      {host && <Host host={host} />}
      {stats && (
        <>
          <h2>Running workspaces</h2>
          {stats.workspaces.length === 0 ? (
            <p className="muted">No workspace is running.</p>
          ) : (
            <div className="table-scroll">
              <table className="data-table system-table" data-testid="system-workspaces">
                <thead>
                  <tr>
                    <th scope="col">Workspace</th>
                    <th scope="col">Owner</th>
                    <th scope="col">CPU</th>
                    <th scope="col">Memory</th>
                    <th scope="col">Disk</th>
                    <th scope="col">Processes</th>
                  </tr>
                </thead>
                <tbody>
                  {stats.workspaces.map((w) => (
                    <WorkspaceRow key={w.workspaceId} w={w} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
      {host && (
        <>
          <h2>Recent errors</h2>
          {host.recentErrors.length === 0 ? (
            <p className="muted" data-testid="system-no-errors">
              None since the server started.
            </p>
          ) : (
            <ul className="system-errors" data-testid="system-errors">
              {host.recentErrors.map((e, i) => (
                <li key={`${e.at}-${i}`}>
                  <span className="muted nowrap" title={e.at}>
                    {formatTime(e.at)}
                  </span>{' '}
                  {e.message}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
