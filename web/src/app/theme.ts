// The person's choice of theme: the OS setting (default), light or dark. Kept in this
// browser; applied as html[data-theme] before the first paint (main.tsx).
export type ThemeChoice = 'system' | 'light' | 'dark';

const KEY = 'cove.theme';
export const THEME_EVENT = 'cove:theme';

export function themeChoice(): ThemeChoice {
  const v = localStorage.getItem(KEY);
  return v === 'light' || v === 'dark' ? v : 'system';
}

export function applyTheme(choice: ThemeChoice = themeChoice()): void {
  if (choice === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = choice;
}

export function setTheme(choice: ThemeChoice): void {
  try {
    if (choice === 'system') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, choice);
  } catch {
    /* storage disabled: the choice lasts for this page */
  }
  applyTheme(choice);
  window.dispatchEvent(new Event(THEME_EVENT));
}

/** Whether the page is dark now (the choice, or the OS setting). */
export function isDark(): boolean {
  const c = themeChoice();
  return c === 'dark' || (c === 'system' && window.matchMedia('(prefers-color-scheme: dark)').matches);
}
