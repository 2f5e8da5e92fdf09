// The preview of a workspace's port beside the editor: the app on its own origin in a frame,
// with its address, reload and open-in-a-new-tab.
import { useEffect, useState } from 'react';
import type { PortInfo } from '../api/types';
import { Icon } from '../app/feedback';

export function PreviewPane({
  ports,
  port,
  onPort,
  urlOf,
  onClose,
}: {
  ports: PortInfo[];
  port: number;
  onPort: (port: number) => void;
  /** The preview URL of a port (its own origin when the server offers one). */
  urlOf: (port: number) => string;
  onClose: () => void;
}) {
  const [path, setPath] = useState('/');
  const [typed, setTyped] = useState('/');
  const [reloads, setReloads] = useState(0);
  useEffect(() => {
    setPath('/');
    setTyped('/');
  }, [port]);
  const base = urlOf(port).replace(/\/$/, '');
  const src = base + (path.startsWith('/') ? path : `/${path}`);
  const listening = ports.some((p) => p.port === port);

  return (
    <section className="preview-pane" aria-label={`Preview of port ${port}`} data-testid="preview-pane">
      <form
        className="preview-bar"
        onSubmit={(e) => {
          e.preventDefault();
          setPath(typed.trim() || '/');
          setReloads((n) => n + 1);
        }}
      >
        {ports.length > 1 ? (
          <select className="preview-port" aria-label="Port" value={port} onChange={(e) => onPort(Number(e.target.value))}>
            {ports.map((p) => (
              <option key={p.port} value={p.port}>
                :{p.port}
              </option>
            ))}
          </select>
        ) : (
          <span className="preview-port mono">:{port}</span>
        )}
        <input
          className="preview-path mono"
          aria-label="Path in the preview"
          value={typed}
          spellCheck={false}
          onChange={(e) => setTyped(e.target.value)}
          data-testid="preview-path"
        />
        <button type="button" className="icon-button" aria-label="Reload the preview" title="Reload" onClick={() => setReloads((n) => n + 1)} data-testid="preview-reload">
          <Icon name="reload" />
        </button>
        <a className="icon-button" href={src} target="_blank" rel="noopener" aria-label="Open the preview in a new tab" title="Open in a new tab" data-testid="preview-open">
          <Icon name="external" />
        </a>
        <button type="button" className="icon-button" aria-label="Close the preview" title="Close" onClick={onClose}>
          <Icon name="close" />
        </button>
      </form>
      {listening ? (
        <iframe
          key={`${src}#${reloads}`}
          className="preview-frame"
          src={src}
          title={`Preview of port ${port}`}
          data-testid="preview-frame"
          // The preview is another origin (or, path-based, sandboxed by the server): it keeps
          // its own storage, and cannot reach cove.
          sandbox="allow-scripts allow-forms allow-popups allow-modals allow-downloads allow-same-origin"
        />
      ) : (
        <div className="panel-empty" role="status">
          <p>Nothing is listening on port {port} yet. Start the server and the preview appears here.</p>
        </div>
      )}
    </section>
  );
}
