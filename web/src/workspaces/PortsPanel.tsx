import { useEffect, useState } from 'react';
import { previewAddress, previewUrl, type ServerInfo } from '../api/rest';
import type { PortEvent, PortInfo, ServerMessage } from '../api/types';
import type { WorkspaceClient } from '../api/workspace';
import { Icon } from '../app/feedback';

export function usePorts(client: WorkspaceClient): PortInfo[] {
  const [ports, setPorts] = useState<PortInfo[]>([]);
  useEffect(() => {
    const s = client.socket;
    let live = true;
    const load = () => {
      client
        .listPorts()
        .then((p) => {
          if (live) setPorts([...p].sort((a, b) => a.port - b.port));
        })
        .catch(() => {
          /* shown as empty; events still update */
        });
    };
    const offs = [
      s.onWelcome(load),
      s.on('port_opened', (m: ServerMessage) => {
        const e = m as unknown as PortEvent;
        const port: PortInfo = { port: e.port, address: e.address, process: e.process, processId: e.processId, terminalId: e.terminalId };
        setPorts((ps) => (ps.some((p) => p.port === e.port) ? ps : [...ps, port].sort((a, b) => a.port - b.port)));
      }),
      s.on('port_closed', (m: ServerMessage) => {
        const e = m as unknown as PortEvent;
        setPorts((ps) => ps.filter((p) => p.port !== e.port));
      }),
    ];
    if (s.welcome) load();
    return () => {
      live = false;
      offs.forEach((f) => f());
    };
  }, [client]);
  return ports;
}

export function PortsPanel({
  workspaceId,
  info,
  ports,
  previewPort,
}: {
  workspaceId: string;
  /** The server's info (`GET /api/info`): where previews live and how people sign in. */
  info: ServerInfo | null;
  ports: PortInfo[];
  previewPort?: number;
}) {
  return (
    <div className="ports-panel">
      <table className="ports-table" data-testid="ports-list">
        <thead>
          <tr>
            <th scope="col">Port</th>
            <th scope="col">Address</th>
            <th scope="col">Process</th>
            <th scope="col">Preview</th>
          </tr>
        </thead>
        <tbody>
          {ports.length === 0 && (
            <tr>
              <td colSpan={4} className="panel-note">
                No port is listening. Start a server{previewPort ? ` (this template serves on port ${previewPort})` : ''} and it shows up here.
              </td>
            </tr>
          )}
          {ports.map((p) => {
            const url = previewUrl(info, workspaceId, p.port);
            const address = previewAddress(info, workspaceId, p.port);
            return (
              <tr key={p.port} data-testid={`port-${p.port}`}>
                <td className="mono">
                  <span className="port-dot" aria-hidden="true" />
                  {p.port}
                </td>
                <td className="mono muted">{p.address ?? ''}</td>
                <td className="muted">{p.process ?? ''}</td>
                <td>
                  <a href={url} target="_blank" rel="noopener" className="port-link" aria-label={`Open preview of port ${p.port} in a new tab`}>
                    {address} <Icon name="external" size={12} />
                  </a>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
