import { useEffect, useState } from 'react';
import { api } from '../api/rest';
import type { Template, Workspace, WorkspaceLimits } from '../api/types';
import { Dialog } from '../app/feedback';

const TEMPLATE_GLYPH: Record<string, string> = {
  blank: '∅',
  python: 'Py',
  node: 'JS',
  react: 'Re',
  vite: 'Vi',
  rust: 'Rs',
  go: 'Go',
  static: '<>',
  'static-web': '<>',
  html: '<>',
};

/** An emoji (drawn larger) rather than letters. */
const PICTOGRAPH = /\p{Extended_Pictographic}/u;

const drawable = new Map<string, boolean>();

/**
 * Whether this browser draws `emoji` in colour. Without an emoji font (a bare Linux, a kiosk)
 * it draws an empty box, and the built-in glyph says more than that.
 */
function drawsEmoji(emoji: string): boolean {
  let known = drawable.get(emoji);
  if (known !== undefined) return known;
  known = true;
  try {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 24;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (ctx) {
      ctx.fillStyle = '#000';
      ctx.textBaseline = 'top';
      ctx.font = '18px sans-serif';
      ctx.fillText(emoji, 0, 0);
      const px = ctx.getImageData(0, 0, 24, 24).data;
      known = false;
      for (let i = 0; i < px.length && !known; i += 4) {
        known = px[i + 3] > 0 && Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]) > 40;
      }
    }
  } catch {
    /* no canvas: assume it can */
  }
  drawable.set(emoji, known);
  return known;
}

/**
 * The symbol beside a template's name: its own icon (an emoji only where the browser can draw
 * it), else a built-in glyph, else its first two letters.
 */
export function TemplateGlyph({ name, icon }: { name: string; icon?: string }) {
  const own = icon?.trim() ?? '';
  const emoji = PICTOGRAPH.test(own);
  const text = own && (!emoji || drawsEmoji(own)) ? own : TEMPLATE_GLYPH[name] || name.slice(0, 2);
  const kind = PICTOGRAPH.test(text) ? ' emoji' : [...text].length > 3 ? ' long' : '';
  return (
    <span className={`template-glyph${kind}`} aria-hidden="true" data-testid="template-glyph" data-icon={own || undefined}>
      {text}
    </span>
  );
}

/** "Published by ada on 3 May 2025" for a template someone published; null for cove's own. */
function publishedText(t: Template): string | null {
  if (!t.publishedBy || t.publishedBy === 'cove') return null;
  const at = t.publishedAt ? Date.parse(t.publishedAt) : NaN;
  return `Published by ${t.publishedBy}${Number.isFinite(at) ? ` on ${new Date(at).toLocaleDateString()}` : ''}`;
}

export function NewProjectDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (w: Workspace) => void }) {
  const [templates, setTemplates] = useState<Template[] | null>(null);
  const [template, setTemplate] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Optional resource limits, as typed; empty means the server's default.
  const [memoryMib, setMemoryMib] = useState('');
  const [cpu, setCpu] = useState('');
  const [diskMib, setDiskMib] = useState('');

  useEffect(() => {
    api
      .listTemplates()
      .then((t) => {
        setTemplates(t);
        setTemplate((cur) => cur || (t.find((x) => x.name === 'blank')?.name ?? t[0]?.name ?? ''));
      })
      .catch((e) => setError(`Could not load templates: ${e instanceof Error ? e.message : String(e)}`));
  }, []);

  const chosen = templates?.find((t) => t.name === template) ?? null;

  const submit = async () => {
    if (busy) return;
    const n = name.trim();
    if (!n) {
      setError('Give the project a name.');
      return;
    }
    const limits: WorkspaceLimits = {};
    for (const [key, text, label] of [
      ['memoryMib', memoryMib, 'Memory'],
      ['cpu', cpu, 'CPU'],
      ['diskMib', diskMib, 'Disk'],
    ] as const) {
      if (!text.trim()) continue;
      const value = Number(text);
      if (!Number.isFinite(value) || value <= 0 || (key !== 'cpu' && !Number.isInteger(value))) {
        setError(`${label} must be a positive ${key === 'cpu' ? 'number of cores' : 'whole number of MiB'}.`);
        return;
      }
      limits[key] = value;
    }
    setBusy(true);
    setError(null);
    try {
      const w = await api.createWorkspace(n, template || 'blank', limits);
      onCreated(w);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  };

  return (
    <Dialog
      title="New project"
      onClose={onClose}
      onSubmit={() => void submit()}
      width={560}
      testId="new-project-dialog"
      footer={
        <>
          <button type="button" className="button secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy || !templates} data-testid="create-project">
            {busy ? 'Creating…' : 'Create project'}
          </button>
        </>
      }
    >
      <label className="field">
        <span className="field-label">Name</span>
        <input
          className="input"
          autoFocus
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="my-project"
          spellCheck={false}
          autoComplete="off"
          data-testid="project-name"
          aria-describedby="project-name-hint"
        />
        <span id="project-name-hint" className="field-hint">
          Must be unique among your workspaces.
        </span>
      </label>
      <fieldset className="field">
        <legend className="field-label">Template</legend>
        {!templates && !error && <div className="muted">Loading templates…</div>}
        <div className="template-grid" role="radiogroup" aria-label="Template">
          {templates?.map((t) => {
            const published = publishedText(t);
            const description = t.description.trim();
            return (
              <label
                key={t.name}
                className={`template-card${template === t.name ? ' selected' : ''}`}
                data-testid={`template-${t.name}`}
                title={[description, published].filter(Boolean).join('\n') || undefined}
              >
                <input type="radio" name="template" value={t.name} checked={template === t.name} onChange={() => setTemplate(t.name)} />
                <TemplateGlyph name={t.name} icon={t.icon} />
                <span className="template-text">
                  <span className="template-name">{t.name}</span>
                  <span className={`template-desc${description ? '' : ' none'}`} data-testid="template-description">
                    {description || 'No description'}
                  </span>
                  {published && (
                    <span className="template-by" data-testid="template-published-by">
                      by {t.publishedBy}
                    </span>
                  )}
                </span>
              </label>
            );
          })}
        </div>
        {chosen?.initCommand && (
          <span className="field-hint" data-testid="template-init-hint">
            At its first start, a project from {chosen.name} runs <code>{chosen.initCommand}</code> (the process init).
          </span>
        )}
      </fieldset>
      <details className="field" data-testid="project-limits">
        <summary className="field-label">Resources (optional)</summary>
        <div className="limits-grid">
          <label className="field">
            <span className="field-label">Memory (MiB)</span>
            <input className="input" inputMode="numeric" value={memoryMib} onChange={(e) => setMemoryMib(e.target.value)} placeholder="server default" data-testid="limit-memory" />
          </label>
          <label className="field">
            <span className="field-label">CPU (cores)</span>
            <input className="input" inputMode="decimal" value={cpu} onChange={(e) => setCpu(e.target.value)} placeholder="server default" data-testid="limit-cpu" />
          </label>
          <label className="field">
            <span className="field-label">Disk (MiB)</span>
            <input className="input" inputMode="numeric" value={diskMib} onChange={(e) => setDiskMib(e.target.value)} placeholder="server default" data-testid="limit-disk" />
          </label>
        </div>
        <span className="field-hint">Empty fields take the server's defaults. A project may ask for less than the server allows, never more.</span>
      </details>
      {error && (
        <div className="form-error" role="alert" data-testid="form-error">
          {error}
        </div>
      )}
    </Dialog>
  );
}
