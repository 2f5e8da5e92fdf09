// Publishing a workspace's files as a template (administrators only): what every new project
// may then start from, with its description, icon, run command, preview port and a command run
// once at a new project's first start.
import { useEffect, useRef, useState } from 'react';
import { api } from '../api/rest';
import type { PublishTemplate, Template, Workspace } from '../api/types';
import { Dialog, notify } from '../app/feedback';
import { TemplateGlyph } from './NewProjectDialog';

/** What the server takes as a template name: 1 to 40 of a-z, 0-9 and '-', not first '-'. */
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** A template name from a workspace name: lowercase, anything else becomes '-'. */
export function templateNameOf(workspace: string): string {
  return workspace
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+/, '')
    .slice(0, 40);
}

export function PublishTemplateDialog({ workspace, onClose }: { workspace: Workspace; onClose: () => void }) {
  const [name, setName] = useState(() => templateNameOf(workspace.name));
  const [description, setDescription] = useState('');
  const [icon, setIcon] = useState('');
  const [runCommand, setRunCommand] = useState('');
  const [previewPort, setPreviewPort] = useState('');
  const [initCommand, setInitCommand] = useState('');
  const [error, setError] = useState<{ field?: 'name' | 'description' | 'port'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [existing, setExisting] = useState<Template[]>([]);
  const nameRef = useRef<HTMLInputElement>(null);
  const descriptionRef = useRef<HTMLInputElement>(null);
  const portRef = useRef<HTMLInputElement>(null);

  // To say when publishing replaces a template of that name.
  useEffect(() => {
    api.listTemplates().then(setExisting, () => {});
  }, []);
  const replaces = existing.find((t) => t.name === name.trim());

  const submit = async () => {
    if (busy) return;
    const n = name.trim();
    const d = description.trim();
    if (!NAME_RE.test(n)) {
      setError({ field: 'name', text: "The name is 1 to 40 lowercase letters, digits and '-', not starting with '-'." });
      nameRef.current?.focus();
      return;
    }
    if (!d) {
      setError({ field: 'description', text: 'Describe the template in a line: it is shown in the New project dialog.' });
      descriptionRef.current?.focus();
      return;
    }
    const body: PublishTemplate = { workspace: workspace.id, name: n, description: d };
    if (icon.trim()) body.icon = icon.trim();
    if (runCommand.trim()) body.runCommand = runCommand.trim();
    if (initCommand.trim()) body.initCommand = initCommand.trim();
    if (previewPort.trim()) {
      const port = Number(previewPort.trim());
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        setError({ field: 'port', text: 'The preview port is a whole number from 1 to 65535.' });
        portRef.current?.focus();
        return;
      }
      body.previewPort = port;
    }
    setBusy(true);
    setError(null);
    try {
      const t = await api.publishTemplate(body);
      notify(`Published template ${t.name} (${t.files} ${t.files === 1 ? 'file' : 'files'}). New projects can start from it.`);
      onClose();
    } catch (e) {
      // The server's message as it is (a bad name, too many files, not an administrator…).
      setError({ text: e instanceof Error ? e.message : String(e) });
      setBusy(false);
    }
  };

  const invalid = (field: 'name' | 'description' | 'port') => error?.field === field;
  const running = workspace.state === 'running' || workspace.state === 'starting';

  return (
    <Dialog
      title={`Publish ${workspace.name} as a template`}
      onClose={onClose}
      onSubmit={() => void submit()}
      width={560}
      testId="publish-template-dialog"
      footer={
        <>
          <button type="button" className="button secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy} data-testid="publish-template-submit">
            {busy ? 'Publishing…' : replaces ? 'Replace template' : 'Publish template'}
          </button>
        </>
      }
    >
      <p className="publish-intro muted">
        The files of {workspace.name} become a template that anyone can start a new project from
        (its shell histories, caches and keys are left out).
        {!running && ' The workspace is started to read its files.'}
      </p>
      <div className="publish-row">
        <label className="field">
          <span className="field-label">Name</span>
          <input
            ref={nameRef}
            className={`input mono${invalid('name') ? ' invalid' : ''}`}
            autoFocus
            value={name}
            onChange={(e) => setName(e.target.value)}
            maxLength={40}
            spellCheck={false}
            autoComplete="off"
            autoCapitalize="none"
            aria-invalid={invalid('name')}
            aria-describedby="publish-name-hint"
            data-testid="publish-name"
          />
          <span id="publish-name-hint" className={`field-hint${replaces ? ' warning' : ''}`} data-testid="publish-name-hint">
            {replaces
              ? `Replaces the template ${replaces.name}${replaces.publishedBy ? ` (by ${replaces.publishedBy})` : ''}; projects made from it keep their files.`
              : "Lowercase letters, digits and '-', at most 40."}
          </span>
        </label>
        <label className="field">
          <span className="field-label">Icon</span>
          <span className="publish-icon">
            <input
              className="input"
              value={icon}
              onChange={(e) => setIcon(e.target.value)}
              maxLength={8}
              autoComplete="off"
              aria-describedby="publish-icon-hint"
              data-testid="publish-icon"
            />
            <TemplateGlyph name={name.trim() || 'template'} icon={icon} />
          </span>
          <span id="publish-icon-hint" className="field-hint">
            An emoji or a few letters.
          </span>
        </label>
      </div>
      <label className="field">
        <span className="field-label">Description</span>
        <input
          ref={descriptionRef}
          className={`input${invalid('description') ? ' invalid' : ''}`}
          value={description}
          onChange={(e) => setDescription(e.target.value)}
          maxLength={300}
          placeholder="What a project made from it starts with"
          autoComplete="off"
          aria-invalid={invalid('description')}
          data-testid="publish-description"
        />
      </label>
      <div className="publish-row">
        <label className="field">
          <span className="field-label">Run command</span>
          <input
            className="input mono"
            value={runCommand}
            onChange={(e) => setRunCommand(e.target.value)}
            maxLength={1000}
            placeholder="npm run dev"
            spellCheck={false}
            autoComplete="off"
            aria-describedby="publish-run-hint"
            data-testid="publish-run-command"
          />
          <span id="publish-run-hint" className="field-hint">
            What the Processes panel offers to run.
          </span>
        </label>
        <label className="field">
          <span className="field-label">Preview port</span>
          <input
            ref={portRef}
            className={`input${invalid('port') ? ' invalid' : ''}`}
            inputMode="numeric"
            value={previewPort}
            onChange={(e) => setPreviewPort(e.target.value)}
            placeholder="none"
            autoComplete="off"
            aria-invalid={invalid('port')}
            aria-describedby="publish-port-hint"
            data-testid="publish-preview-port"
          />
          <span id="publish-port-hint" className="field-hint">
            What it serves.
          </span>
        </label>
      </div>
      <label className="field">
        <span className="field-label">Init command</span>
        <input
          className="input mono"
          value={initCommand}
          onChange={(e) => setInitCommand(e.target.value)}
          maxLength={4000}
          placeholder="npm install"
          spellCheck={false}
          autoComplete="off"
          aria-describedby="publish-init-hint"
          data-testid="publish-init-command"
        />
        <span id="publish-init-hint" className="field-hint">
          Run once, as the process init, when a workspace made from this template first starts.
        </span>
      </label>
      {error && (
        <div className="form-error" role="alert" data-testid="form-error">
          {error.text}
        </div>
      )}
    </Dialog>
  );
}
