// Rename a symbol across the workspace. The LSP client's own rename edits only files open in
// an editor and only `changes`; servers such as pyright answer with `documentChanges`, and a
// rename must reach every use, so files not open are opened in tabs (unsaved: the person
// sees every change and saves it, or undoes it).
import type { Command } from '@codemirror/view';
import { getDialog, showDialog } from '@codemirror/view';
import { LSPPlugin } from '@codemirror/lsp-client';
import type { Text } from '@codemirror/state';

interface Position {
  line: number;
  character: number;
}
export interface TextEdit {
  range: { start: Position; end: Position };
  newText: string;
}
interface WorkspaceEdit {
  changes?: Record<string, TextEdit[]>;
  documentChanges?: ({ textDocument: { uri: string }; edits: TextEdit[] } | { kind: string })[];
}

/** The edits of a workspace edit by URI (file creations, renames and deletions are not applied). */
export function editsByUri(edit: WorkspaceEdit | null): Map<string, TextEdit[]> {
  const out = new Map<string, TextEdit[]>();
  if (!edit) return out;
  for (const [uri, edits] of Object.entries(edit.changes ?? {})) out.set(uri, edits);
  for (const change of edit.documentChanges ?? []) {
    if ('textDocument' in change) out.set(change.textDocument.uri, [...(out.get(change.textDocument.uri) ?? []), ...change.edits]);
  }
  return out;
}

export function offsetOf(doc: Text, p: Position): number {
  if (p.line >= doc.lines) return doc.length;
  const line = doc.line(p.line + 1);
  return Math.min(line.to, line.from + p.character);
}

/** What renaming needs from the editor: the text of a tab (opened first if needed), and a change to it. */
export interface RenameTarget {
  pathOf(uri: string): string | null;
  docFor(path: string): Promise<Text | null>;
  /** Whether the tab of `path` holds text not saved (what the server did not see, unless it tracks the file). */
  unsaved(path: string): boolean;
  apply(path: string, changes: { from: number; to: number; insert: string }[]): void;
  notify(message: string): void;
}

export function renameCommand(target: RenameTarget): Command {
  return (view) => {
    const plugin = LSPPlugin.get(view);
    const word = view.state.wordAt(view.state.selection.main.head);
    if (!plugin || !word || !plugin.client.serverCapabilities?.renameProvider) return false;
    if (getDialog(view, 'cm-lsp-rename-panel')) return true;
    const { close, result } = showDialog(view, {
      label: 'New name',
      input: { name: 'name', value: view.state.sliceDoc(word.from, word.to), 'aria-label': 'New name' },
      focus: true,
      submitLabel: 'Rename',
      class: 'cm-lsp-rename-panel',
    });
    void result.then(async (form) => {
      view.dispatch({ effects: close });
      const newName = (form?.elements.namedItem('name') as HTMLInputElement | null)?.value;
      if (!form || !newName) return;
      plugin.client.sync();
      try {
        // Positions are mapped through whatever is typed while the server thinks.
        await plugin.client.withMapping(async (mapping) => {
          const answer = await plugin.client.request<unknown, WorkspaceEdit | null>('textDocument/rename', {
            textDocument: { uri: plugin.uri },
            position: plugin.toPosition(word.from),
            newName,
          });
          const edits = editsByUri(answer);
          let count = 0;
          const skipped: string[] = [];
          for (const [uri, list] of edits) {
            const path = target.pathOf(uri);
            const tracked = !!plugin.client.workspace.getFile(uri);
            // Outside the workspace, or unsaved text the server never saw: not ours to edit.
            if (path === null || (!tracked && target.unsaved(path))) {
              skipped.push(path ?? decodeURI(uri));
              continue;
            }
            const doc = await target.docFor(path);
            if (!doc) {
              skipped.push(path);
              continue;
            }
            target.apply(
              path,
              list.map((e) =>
                tracked
                  ? { from: mapping.mapPosition(uri, e.range.start), to: mapping.mapPosition(uri, e.range.end), insert: e.newText }
                  : { from: offsetOf(doc, e.range.start), to: offsetOf(doc, e.range.end), insert: e.newText },
              ),
            );
            count += list.length;
          }
          const files = edits.size - skipped.length;
          target.notify(
            `Renamed ${count} ${count === 1 ? 'use' : 'uses'} in ${files} ${files === 1 ? 'file' : 'files'} (unsaved).${skipped.length ? ` Not changed: ${skipped.join(', ')}` : ''}`,
          );
        });
      } catch (e) {
        target.notify(`Rename failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
    return true;
  };
}
