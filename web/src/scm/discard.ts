// "Discard this change" beside each chunk of a diff's working-tree side: the working file
// takes that chunk's staged text back, one hunk at a time (what `git checkout -p` does).
import type { Extension, Text } from '@codemirror/state';
import { EditorView, GutterMarker, gutter } from '@codemirror/view';
import type { Chunk, getChunks as GetChunks } from '@codemirror/merge';

class DiscardMarker extends GutterMarker {
  toDOM(): Node {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'diff-hunk-button diff-discard-button';
    button.textContent = '↺';
    button.title = 'Discard this change (the working file takes the staged text)';
    button.setAttribute('aria-label', button.title);
    return button;
  }
}
const DISCARD = new DiscardMarker();

/**
 * A gutter on the working-tree side of a merge view with a discard button on each chunk's
 * first line. `getChunks` comes from the lazily loaded `@codemirror/merge`.
 */
export function discardControls(getChunks: typeof GetChunks, onDiscard: (view: EditorView, chunk: Chunk) => void): Extension {
  const chunkOnLine = (view: EditorView, lineStart: number) => {
    const doc = view.state.doc;
    return getChunks(view.state)?.chunks.find((c) => doc.lineAt(Math.min(c.fromB, doc.length)).from === lineStart);
  };
  return gutter({
    class: 'diff-discard-gutter',
    lineMarker: (view, line) => (chunkOnLine(view, line.from) ? DISCARD : null),
    // The chunks change with either side of the diff.
    lineMarkerChange: () => true,
    domEventHandlers: {
      click: (view, line, event) => {
        if (!(event.target instanceof Element) || !event.target.closest('.diff-discard-button')) return false;
        const chunk = chunkOnLine(view, line.from);
        if (chunk) onDiscard(view, chunk);
        return true;
      },
    },
  });
}

/**
 * The change to the working side `b` that gives chunk `chunk` the text it has in `a`, whose
 * lines end in `lineBreak`. Chunks cover whole lines, and their ends lie one past the last
 * line's break (past the end of the document for its last line, which has none).
 */
export function discardChange(a: Text, b: Text, chunk: Chunk, lineBreak: string): { from: number; to: number; insert: string } {
  let insert = a.sliceString(chunk.fromA, Math.max(chunk.fromA, chunk.toA - 1), lineBreak);
  if (chunk.fromA !== chunk.toA && chunk.toB <= b.length) insert += lineBreak;
  return { from: chunk.fromB, to: Math.min(chunk.toB, b.length), insert };
}
