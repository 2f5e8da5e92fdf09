// Modal dialogs, questions with buttons, and toasts.
import { useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from 'react';
import { setTheme, themeChoice, type ThemeChoice } from './theme';
import { settings } from './settings';
import type { AskAction } from '../editor/model';

// ---------- Dialog ----------

export function Dialog(props: {
  title: string;
  onClose: () => void;
  children: React.ReactNode;
  footer?: React.ReactNode;
  width?: number;
  testId?: string;
  onSubmit?: () => void;
  describedBy?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  // What had focus before the dialog (read while rendering: an autoFocus field inside takes
  // focus before any effect runs). It gets focus back when the dialog goes, so that a
  // keyboard user continues where they were.
  const [opener] = useState(() => document.activeElement);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  useLayoutEffect(() => {
    const d = ref.current;
    return () => {
      if (d?.open) d.close();
      const now = document.activeElement;
      const lost = !now || now === document.body || !!d?.contains(now);
      if (lost && opener instanceof HTMLElement && opener.isConnected && opener !== document.body) opener.focus();
    };
  }, [opener]);
  const body = (
    <>
      <header className="dialog-header">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" className="icon-button" aria-label="Close dialog" onClick={props.onClose}>
          <Icon name="close" />
        </button>
      </header>
      <div className="dialog-body">{props.children}</div>
      {props.footer && <footer className="dialog-footer">{props.footer}</footer>}
    </>
  );
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      aria-describedby={props.describedBy}
      data-testid={props.testId}
      style={props.width ? { width: props.width } : undefined}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
      onMouseDown={(e) => {
        if (e.target === ref.current) props.onClose();
      }}
    >
      {props.onSubmit ? (
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            props.onSubmit!();
          }}
        >
          {body}
        </form>
      ) : (
        body
      )}
    </dialog>
  );
}

// ---------- ask: a question with buttons ----------

interface Question {
  id: number;
  title: string;
  message: string;
  actions: AskAction[];
  resolve: (id: string) => void;
}

let questions: Question[] = [];
let qSeq = 0;
const qListeners = new Set<() => void>();
function qEmit() {
  for (const l of qListeners) l();
}

export function ask(title: string, message: string, actions: AskAction[]): Promise<string> {
  return new Promise((resolve) => {
    questions = [...questions, { id: ++qSeq, title, message, actions, resolve }];
    qEmit();
  });
}

export function confirmDanger(title: string, message: string, confirmLabel: string): Promise<boolean> {
  return ask(title, message, [
    { id: 'cancel', label: 'Cancel', kind: 'secondary' },
    { id: 'ok', label: confirmLabel, kind: 'danger' },
  ]).then((r) => r === 'ok');
}

function answer(q: Question, id: string) {
  questions = questions.filter((x) => x !== q);
  qEmit();
  q.resolve(id);
}

export function AskHost() {
  const list = useSyncExternalStore(
    (fn) => {
      qListeners.add(fn);
      return () => qListeners.delete(fn);
    },
    () => questions,
  );
  const q = list[0];
  if (!q) return null;
  const cancelId = q.actions.find((a) => a.id === 'cancel' || a.id === 'keep')?.id ?? '';
  const msgId = `ask-msg-${q.id}`;
  return (
    <Dialog key={q.id} title={q.title} onClose={() => answer(q, cancelId)} width={460} testId="ask-dialog" describedBy={msgId}>
      <p id={msgId} className="ask-message">
        {q.message}
      </p>
      <div className="dialog-actions">
        {q.actions.map((a, i) => (
          <button
            key={a.id}
            type="button"
            className={`button ${a.kind ?? 'secondary'}`}
            data-testid={`ask-${a.id}`}
            autoFocus={a.kind === 'primary' || (i === q.actions.length - 1 && !q.actions.some((x) => x.kind === 'primary'))}
            onClick={() => answer(q, a.id)}
          >
            {a.label}
          </button>
        ))}
      </div>
    </Dialog>
  );
}

// ---------- toasts ----------

interface Toast {
  id: number;
  message: string;
  kind: 'info' | 'error';
}
let toasts: Toast[] = [];
let tSeq = 0;
const tListeners = new Set<() => void>();
function tEmit() {
  for (const l of tListeners) l();
}

export function notify(message: string, kind: 'info' | 'error' = 'info'): void {
  const t = { id: ++tSeq, message, kind };
  toasts = [...toasts.slice(-3), t];
  tEmit();
  setTimeout(() => dismiss(t.id), kind === 'error' ? 8000 : 4000);
}

function dismiss(id: number) {
  toasts = toasts.filter((t) => t.id !== id);
  tEmit();
}

export function Toasts() {
  const list = useSyncExternalStore(
    (fn) => {
      tListeners.add(fn);
      return () => tListeners.delete(fn);
    },
    () => toasts,
  );
  return (
    <div className="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} className={`toast ${t.kind}`} role={t.kind === 'error' ? 'alert' : undefined}>
          <Icon name={t.kind === 'error' ? 'error' : 'info'} />
          <span>{t.message}</span>
          <button type="button" className="icon-button" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
            <Icon name="close" />
          </button>
        </div>
      ))}
    </div>
  );
}

// ---------- icons (16px, stroke) ----------

const PATHS: Record<string, string> = {
  close: 'M4 4l8 8M12 4l-8 8',
  plus: 'M8 3v10M3 8h10',
  chevronRight: 'M6 4l4 4-4 4',
  chevronDown: 'M4 6l4 4 4-4',
  file: 'M4 1.5h5l3.5 3.5v9.5h-8.5zM9 1.5V5h3.5',
  folder: 'M1.5 3.5h4.5l1.5 1.5h7v8.5h-13z',
  folderOpen: 'M1.5 3.5h4.5l1.5 1.5h6v2M1.5 3.5v10h11l2-6.5h-11l-2 6.5',
  newFile: 'M4 1.5h5l3.5 3.5v3M9 1.5V5h3.5M4 1.5v13h5M12 10v5M9.5 12.5h5',
  newFolder: 'M1.5 3.5h4.5l1.5 1.5h7v3.5M1.5 3.5v10h7M12 10v5M9.5 12.5h5',
  refresh: 'M13 3v3.5H9.5M13 6.5A5.5 5.5 0 1 0 13.5 10',
  collapse: 'M3 3h10v10H3zM5.5 8h5',
  terminal: 'M2 3h12v10H2zM4.5 6l2 2-2 2M8 10.5h3.5',
  play: 'M5 3.5l7 4.5-7 4.5z',
  stop: 'M4 4h8v8H4z',
  trash: 'M2.5 4h11M6 4V2.5h4V4M4 4l.8 9.5h6.4L12 4',
  external: 'M9 2.5h4.5V7M13.5 2.5L7 9M11.5 9.5v4h-9v-9h4',
  search: 'M7 2.5a4.5 4.5 0 1 0 0 9a4.5 4.5 0 1 0 0-9zM10.3 10.3L14 14',
  error: 'M8 1.5a6.5 6.5 0 1 0 0 13a6.5 6.5 0 1 0 0-13zM8 4.5v4.5M8 11v.5',
  info: 'M8 1.5a6.5 6.5 0 1 0 0 13a6.5 6.5 0 1 0 0-13zM8 7v4.5M8 4.5V5',
  home: 'M2 7.5L8 2l6 5.5M3.5 6.5v7h9v-7',
  rename: 'M2 12.5V14h1.5l8-8-1.5-1.5zM10 4.5L11.5 3 13 4.5 11.5 6',
  ports: 'M2 8h3M11 8h3M5 5h6v6H5z',
  list: 'M2.5 4h11M2.5 8h11M2.5 12h11',
  split: 'M2 3h12v10H2zM8 3v10',
  more: 'M3.5 8h.01M8 8h.01M12.5 8h.01',
  circle: 'M8 4.5a3.5 3.5 0 1 0 0 7a3.5 3.5 0 1 0 0-7z',
  sidebar: 'M2 3h12v10H2zM6 3v10',
  panel: 'M2 3h12v10H2zM2 9.5h12',
  logo: 'M12.5 5A5 5 0 1 0 12.5 11',
  sun: 'M8 5a3 3 0 1 0 0 6a3 3 0 1 0 0-6zM8 1v1.5M8 13.5V15M1 8h1.5M13.5 8H15M3 3l1 1M12 12l1 1M3 13l1-1M12 4l1-1',
  moon: 'M13 10A5.5 5.5 0 0 1 6 3a5.5 5.5 0 1 0 7 7z',
  monitor: 'M2 3h12v8H2zM6 14h4M8 11v3',
  reload: 'M13 3v3.5H9.5M13 6.5A5.5 5.5 0 1 0 13.5 10',
  download: 'M8 2v8.5M4.5 7L8 10.5 11.5 7M2.5 13.5h11',
  share: 'M6 7.5a2.5 2.5 0 1 0 0-5a2.5 2.5 0 1 0 0 5zM1.5 14c0-2.5 2-4.5 4.5-4.5s4.5 2 4.5 4.5M12.5 5.5v5M10 8h5',
  eye: 'M1.5 8s2.5-4.5 6.5-4.5S14.5 8 14.5 8s-2.5 4.5-6.5 4.5S1.5 8 1.5 8zM8 6a2 2 0 1 0 0 4a2 2 0 1 0 0-4z',
  pin: 'M6 2h4M7 2v4L4.5 9h7L9 6V2M8 9v5',
  settings: 'M8 5.5a2.5 2.5 0 1 0 0 5a2.5 2.5 0 1 0 0-5zM8 1.5v2M8 12.5v2M1.5 8h2M12.5 8h2M3.4 3.4l1.4 1.4M11.2 11.2l1.4 1.4M3.4 12.6l1.4-1.4M11.2 4.8l1.4-1.4',
  upload: 'M8 10.5V2M4.5 5.5L8 2l3.5 3.5M2.5 13.5h11',
  publish: 'M8 10V2.5M5 5.5l3-3 3 3M2.5 9.5v4h11v-4',
};

/** A button that cycles the theme: the OS setting, light, dark. */
export function ThemeToggle() {
  const [choice, setChoice] = useState<ThemeChoice>(themeChoice());
  const next: Record<ThemeChoice, ThemeChoice> = { system: 'light', light: 'dark', dark: 'system' };
  const label: Record<ThemeChoice, string> = { system: 'Theme: as the system', light: 'Theme: light', dark: 'Theme: dark' };
  const icon: Record<ThemeChoice, string> = { system: 'monitor', light: 'sun', dark: 'moon' };
  return (
    <button
      type="button"
      className="icon-button"
      data-testid="theme-toggle"
      data-theme-choice={choice}
      aria-label={`${label[choice]} (click for ${next[choice]})`}
      title={`${label[choice]} (click for ${next[choice]})`}
      onClick={() => {
        setTheme(next[choice]);
        setChoice(next[choice]);
        // Kept with the person's settings, so that it follows them.
        settings.update({ theme: next[choice] });
      }}
    >
      <Icon name={icon[choice]} />
    </button>
  );
}

export function Icon({ name, size = 16, className }: { name: string; size?: number; className?: string }) {
  return (
    <svg
      className={`icon${className ? ' ' + className : ''}`}
      width={size}
      height={size}
      viewBox="0 0 16 16"
      fill="none"
      stroke="currentColor"
      strokeWidth={name === 'logo' ? 2.2 : 1.3}
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={PATHS[name] ?? PATHS.file} />
    </svg>
  );
}
