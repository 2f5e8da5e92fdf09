// The person's settings, saved on the server as they change.
import { useSyncExternalStore } from 'react';
import type { Settings } from '../api/generated';
import { Dialog, notify } from './feedback';
import { DEFAULTS, settings } from './settings';
import { themeChoice } from './theme';

function Row({ label, htmlFor, children }: { label: string; htmlFor: string; children: React.ReactNode }) {
  return (
    <div className="settings-row">
      <label htmlFor={htmlFor}>{label}</label>
      {children}
    </div>
  );
}

export function SettingsDialog({ onClose }: { onClose: () => void }) {
  const s = useSyncExternalStore(settings.subscribe, settings.get);
  const set = (patch: Settings) => settings.update(patch, (m) => notify(m, 'error'));
  return (
    <Dialog title="Settings" onClose={onClose} testId="settings-dialog" width={460}>
      <p className="muted settings-note">Saved to your account: they follow you to any browser.</p>
      <Row label="Theme" htmlFor="set-theme">
        <select id="set-theme" value={s.theme ?? themeChoice()} onChange={(e) => set({ theme: e.target.value })} data-testid="settings-theme">
          <option value="system">As the system</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </Row>
      <Row label="Keymap" htmlFor="set-keymap">
        <select id="set-keymap" value={s.keymap ?? DEFAULTS.keymap} onChange={(e) => set({ keymap: e.target.value })} data-testid="settings-keymap">
          <option value="default">Default</option>
          <option value="vim">Vim</option>
        </select>
      </Row>
      <Row label="Font size" htmlFor="set-font-size">
        <input id="set-font-size" type="number" min={8} max={32} value={s.fontSize ?? DEFAULTS.fontSize} onChange={(e) => {
          const n = Number(e.target.value);
          if (n >= 8 && n <= 32) set({ fontSize: n });
        }} data-testid="settings-font-size" />
      </Row>
      <Row label="Font family" htmlFor="set-font-family">
        <input id="set-font-family" type="text" placeholder="the system's monospace font" value={s.fontFamily ?? ''} maxLength={200} onChange={(e) => set({ fontFamily: e.target.value || undefined })} data-testid="settings-font-family" />
      </Row>
      <Row label="Tab size" htmlFor="set-tab-size">
        <select id="set-tab-size" value={s.tabSize ?? DEFAULTS.tabSize} onChange={(e) => set({ tabSize: Number(e.target.value) })} data-testid="settings-tab-size">
          {[2, 3, 4, 8].map((n) => (
            <option key={n} value={n}>
              {n} spaces
            </option>
          ))}
        </select>
      </Row>
      <Row label="Word wrap" htmlFor="set-wrap">
        <input id="set-wrap" type="checkbox" checked={s.wordWrap ?? DEFAULTS.wordWrap} onChange={(e) => set({ wordWrap: e.target.checked })} data-testid="settings-wrap" />
      </Row>
      <Row label="Format on save" htmlFor="set-format">
        <input id="set-format" type="checkbox" checked={s.formatOnSave ?? DEFAULTS.formatOnSave} onChange={(e) => set({ formatOnSave: e.target.checked })} data-testid="settings-format-on-save" />
      </Row>
    </Dialog>
  );
}
