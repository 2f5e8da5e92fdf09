// The editor's part of a person's settings: tab size, word wrap, font, and Vim keys (loaded
// only for people who use them).
import { EditorState, Prec, type Extension } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import { indentUnit } from '@codemirror/language';
import type { Settings } from '../api/generated';
import { DEFAULTS } from '../app/settings';

let vimLoaded: Extension | null = null;

/** Loads the Vim keymap if `s` asks for it (resolves at once otherwise). */
export async function prepare(s: Settings): Promise<void> {
  if (s.keymap === 'vim' && !vimLoaded) vimLoaded = (await import('@replit/codemirror-vim')).vim({ status: true });
}

export function settingsExtension(s: Settings): Extension {
  const tab = s.tabSize ?? DEFAULTS.tabSize;
  const font: Record<string, string> = {};
  if (s.fontFamily) font.fontFamily = s.fontFamily;
  if (s.fontSize) font.fontSize = `${s.fontSize}px`;
  return [
    Prec.high([EditorState.tabSize.of(tab), indentUnit.of(' '.repeat(tab))]),
    s.wordWrap ? EditorView.lineWrapping : [],
    Object.keys(font).length ? EditorView.theme({ '.cm-scroller': font }) : [],
    // Vim's keys come before every other keymap.
    s.keymap === 'vim' && vimLoaded ? Prec.highest(vimLoaded) : [],
  ];
}
