// The pieces of the editor model that hold no state: the base extensions every tab's state
// gets, and the text helpers.
import { EditorState, type Extension } from '@codemirror/state';
import {
  EditorView,
  crosshairCursor,
  drawSelection,
  dropCursor,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
  rectangularSelection,
} from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { bracketMatching, foldGutter, foldKeymap, indentOnInput, indentUnit } from '@codemirror/language';
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search';
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from '@codemirror/autocomplete';
import { editorHighlighting, editorTheme } from './theme';
import type { Tab, TabInfo } from './model';

// Mod-S is handled by the IDE's window-level shortcut (also outside the editor).
export function baseExtensions(): Extension[] {
  return [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    foldGutter({ openText: '\u25be', closedText: '\u25b8' }),
    drawSelection(),
    dropCursor(),
    EditorState.allowMultipleSelections.of(true),
    indentOnInput(),
    editorHighlighting,
    bracketMatching(),
    closeBrackets(),
    autocompletion(),
    rectangularSelection(),
    crosshairCursor(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    indentUnit.of('    '),
    EditorState.tabSize.of(4),
    keymap.of([
      ...closeBracketsKeymap,
      ...defaultKeymap,
      ...searchKeymap,
      ...historyKeymap,
      ...foldKeymap,
      ...completionKeymap,
      indentWithTab,
    ]),
    editorTheme,
    EditorView.contentAttributes.of({ 'aria-label': 'Code editor', 'data-testid': 'editor-content' }),
  ];
}

export function tabInfo(t: Tab): TabInfo {
  return {
    path: t.path,
    title: t.path.slice(t.path.lastIndexOf('/') + 1),
    kind: t.kind,
    dirty: t.dirty,
    loading: t.loading,
    saving: t.saving,
    error: t.error,
    diskChanged: t.diskChanged,
    deleted: t.deleted,
  };
}

/** A change that turns `old` into `next` touching only the differing middle. */
export function minimalChange(old: string, next: string): { from: number; to: number; insert: string } | null {
  if (old === next) return null;
  let start = 0;
  const max = Math.min(old.length, next.length);
  while (start < max && old.charCodeAt(start) === next.charCodeAt(start)) start++;
  let endOld = old.length;
  let endNew = next.length;
  while (endOld > start && endNew > start && old.charCodeAt(endOld - 1) === next.charCodeAt(endNew - 1)) {
    endOld--;
    endNew--;
  }
  return { from: start, to: endOld, insert: next.slice(start, endNew) };
}

export function decodeContent(content: string, encoding: string): string {
  if (encoding !== 'base64') return content;
  const bin = atob(content);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

