// A person's IDE settings: kept on the server (GET/PUT /api/users/me/settings) so that they
// follow the person from browser to browser, and in this browser too, for the first paint.
import type { Settings } from '../api/generated';
import { request } from '../api/rest';
import { setTheme, type ThemeChoice } from './theme';

const KEY = 'cove.settings';

/** The values the IDE uses where the person set nothing. */
export const DEFAULTS = { fontSize: 13, tabSize: 4, wordWrap: false, keymap: 'default', formatOnSave: false } as const;

class SettingsStore {
  private value: Settings = {};
  private readonly listeners = new Set<() => void>();
  private saving: ReturnType<typeof setTimeout> | null = null;
  private loaded: Promise<void> | null = null;

  constructor() {
    try {
      this.value = JSON.parse(localStorage.getItem(KEY) ?? '{}') ?? {};
    } catch {
      this.value = {};
    }
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
  get = (): Settings => this.value;

  private set(value: Settings): void {
    this.value = value;
    try {
      localStorage.setItem(KEY, JSON.stringify(value));
    } catch {
      /* storage disabled */
    }
    for (const l of this.listeners) l();
  }

  /** Fetches the person's settings from the server (once a page). */
  load(): Promise<void> {
    this.loaded ??= request<Settings>('GET', '/api/users/me/settings').then(
      (value) => {
        this.set(value);
        if (value.theme) setTheme(value.theme as ThemeChoice);
      },
      () => {
        this.loaded = null; // kept from this browser; asked again next time
      },
    );
    return this.loaded;
  }

  /** Changes some settings here at once and on the server a moment later. */
  update(patch: Settings, onError?: (message: string) => void): void {
    const next: Settings = { ...this.value, ...patch };
    for (const k of Object.keys(next) as (keyof Settings)[]) if (next[k] === undefined) delete next[k];
    this.set(next);
    if (patch.theme) setTheme(patch.theme as ThemeChoice);
    if (this.saving) clearTimeout(this.saving);
    this.saving = setTimeout(() => {
      this.saving = null;
      request<Settings>('PUT', '/api/users/me/settings', this.value).catch((e) => onError?.(`Settings not saved: ${e instanceof Error ? e.message : String(e)}`));
    }, 300);
  }
}

export const settings = new SettingsStore();
