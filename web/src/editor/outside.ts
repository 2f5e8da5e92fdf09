// A file outside the workspace that a language server points at (go to definition into the
// standard library or a package's stubs), shown read-only over the editor: it is not the
// workspace's, so it gets no tab, no save and no language server of its own. The runner reads
// it in the workspace's sandbox (GET .../lsp/file), for owners and editors only.
import { EditorState } from '@codemirror/state';
import { EditorView, highlightActiveLine, keymap, lineNumbers } from '@codemirror/view';
import type { OutsideFile } from '../api/generated';
import { request } from '../api/rest';
import { loadLanguage } from './languages';
import { editorHighlighting, editorTheme } from './theme';

let shown: { view: EditorView; panel: HTMLElement; restoreFocus: Element | null } | null = null;

/** Closes the outside file, if one is shown, and gives the focus back. */
export function closeOutsideFile(): void {
  if (!shown) return;
  const { view, panel, restoreFocus } = shown;
  shown = null;
  view.destroy();
  panel.remove();
  if (restoreFocus instanceof HTMLElement) restoreFocus.focus();
}

/** The absolute path of a `file:` URI; null for any other. */
export function outsidePath(uri: string): string | null {
  try {
    const url = new URL(uri);
    return url.protocol === 'file:' ? decodeURIComponent(url.pathname) : null;
  } catch {
    return null;
  }
}

/**
 * Reads `path` in the workspace and shows it read-only; resolves with its view (the language
 * client then puts the cursor on the definition), or rejects with the server's reason.
 */
export async function showOutsideFile(workspaceId: string, path: string): Promise<EditorView> {
  const [file, language] = await Promise.all([
    request<OutsideFile>('GET', `/api/workspaces/${encodeURIComponent(workspaceId)}/lsp/file?path=${encodeURIComponent(path)}`),
    loadLanguage(path) ?? Promise.resolve([]),
  ]);
  const restoreFocus = shown?.restoreFocus ?? document.activeElement;
  closeOutsideFile();
  const panel = document.createElement('section');
  panel.className = 'outside-file';
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', `${path}, read-only`);
  panel.dataset.testid = 'outside-file';
  const header = document.createElement('header');
  const title = document.createElement('strong');
  title.textContent = path;
  title.title = path;
  const note = document.createElement('span');
  note.className = 'muted';
  note.textContent = 'outside the workspace · read-only · Esc closes';
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'icon-button';
  close.textContent = '×';
  close.setAttribute('aria-label', 'Close');
  close.onclick = closeOutsideFile;
  header.append(title, note, close);
  const host = document.createElement('div');
  host.className = 'outside-file-host';
  panel.append(header, host);
  (document.querySelector('.editor-area') ?? document.body).append(panel);
  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: file.content,
      extensions: [
        editorTheme,
        editorHighlighting,
        language,
        lineNumbers(),
        highlightActiveLine(),
        EditorState.readOnly.of(true),
        EditorView.contentAttributes.of({ 'aria-label': `${path}, read-only` }),
        keymap.of([{ key: 'Escape', run: () => (closeOutsideFile(), true) }]),
      ],
    }),
  });
  shown = { view, panel, restoreFocus };
  view.focus();
  return view;
}
