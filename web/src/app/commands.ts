// Every action of the IDE as the command palette lists it, with its shortcut.
import { redo, undo } from '@codemirror/commands';
import { openSearchPanel } from '@codemirror/search';
import type { EditorModel } from '../editor/model';
import type { PaletteCommand } from './CommandPalette';
import { DEFAULTS, settings } from './settings';
import { notify } from './feedback';

export interface IdeActions {
  quickOpen(): void;
  searchInFiles(): void;
  toggleSidebar(): void;
  togglePanel(): void;
  newTerminal(): void;
  showPanel(panel: 'terminal' | 'problems' | 'processes' | 'ports'): void;
  openSettings(): void;
  splitEditor(): void;
  downloadWorkspace(): void;
}

const mod = /Mac|iPhone|iPad/.test(navigator.platform) ? '⌘' : 'Ctrl+';

export function ideCommands(editor: EditorModel, a: IdeActions, readOnly: boolean): PaletteCommand[] {
  const language = (command: 'definition' | 'references' | 'rename' | 'format') => () => {
    if (!editor.runLanguageCommand(command)) notify('No language server serves this file.');
  };
  const set = (patch: Parameters<typeof settings.update>[0]) => settings.update(patch, (m) => notify(m, 'error'));
  const commands: (PaletteCommand | false)[] = [
    { id: 'quick-open', label: 'Go to file', shortcut: `${mod}P`, run: a.quickOpen },
    { id: 'search', label: 'Search in files', shortcut: `${mod}Shift+F`, run: a.searchInFiles },
    { id: 'find', label: 'Find in file', shortcut: `${mod}F`, run: () => editor.runCommand(openSearchPanel) },
    !readOnly && { id: 'save', label: 'File: save', shortcut: `${mod}S`, run: () => void editor.save() },
    !readOnly && { id: 'save-all', label: 'File: save all', run: () => void editor.saveAll() },
    !readOnly && { id: 'undo', label: 'Edit: undo', shortcut: `${mod}Z`, run: () => editor.runCommand(undo) },
    !readOnly && { id: 'redo', label: 'Edit: redo', shortcut: `${mod}Shift+Z`, run: () => editor.runCommand(redo) },
    { id: 'definition', label: 'Go to definition', shortcut: 'F12', run: language('definition') },
    { id: 'references', label: 'Find references', shortcut: 'Shift+F12', run: language('references') },
    !readOnly && { id: 'rename', label: 'Rename symbol', shortcut: 'F2', run: language('rename') },
    !readOnly && { id: 'format', label: 'Format document', shortcut: 'Shift+Alt+F', run: language('format') },
    { id: 'toggle-sidebar', label: 'View: toggle sidebar', shortcut: `${mod}B`, run: a.toggleSidebar },
    { id: 'toggle-panel', label: 'View: toggle panel', shortcut: `${mod}J`, run: a.togglePanel },
    { id: 'split', label: 'View: split editor', shortcut: `${mod}\\`, run: a.splitEditor },
    { id: 'problems', label: 'View: problems', run: () => a.showPanel('problems') },
    { id: 'processes', label: 'View: processes', run: () => a.showPanel('processes') },
    { id: 'ports', label: 'View: ports', run: () => a.showPanel('ports') },
    !readOnly && { id: 'new-terminal', label: 'Terminal: new terminal', shortcut: 'Ctrl+Shift+`', run: a.newTerminal },
    { id: 'terminal', label: 'Terminal: show', shortcut: 'Ctrl+`', run: () => a.showPanel('terminal') },
    { id: 'settings', label: 'Preferences: settings', run: a.openSettings },
    {
      id: 'vim',
      label: 'Preferences: toggle Vim mode',
      run: () => set({ keymap: (settings.get().keymap ?? DEFAULTS.keymap) === 'vim' ? 'default' : 'vim' }),
    },
    { id: 'wrap', label: 'View: toggle word wrap', run: () => set({ wordWrap: !(settings.get().wordWrap ?? DEFAULTS.wordWrap) }) },
    { id: 'theme-dark', label: 'Preferences: dark theme', run: () => set({ theme: 'dark' }) },
    { id: 'theme-light', label: 'Preferences: light theme', run: () => set({ theme: 'light' }) },
    { id: 'theme-system', label: "Preferences: the system's theme", run: () => set({ theme: 'system' }) },
    { id: 'download', label: 'File: download the workspace (.tar.gz)', run: a.downloadWorkspace },
  ];
  return commands.filter((c): c is PaletteCommand => !!c);
}
