// A person's initials in a coloured circle (the colour follows the username, so the same
// person looks the same everywhere), and the row of people present on a workspace.
import type { PresentUser, WorkspaceAccess } from '../api/types';

export function initials(username: string): string {
  const parts = username.split(/[-_.@\s]+/).filter(Boolean);
  const s = parts.length >= 2 ? parts[0][0] + parts[1][0] : username.slice(0, 2);
  return s.toUpperCase();
}

function hue(username: string): number {
  let h = 0;
  for (let i = 0; i < username.length; i++) h = (h * 31 + username.charCodeAt(i)) >>> 0;
  return h % 360;
}

export function Avatar({ username, size = 22 }: { username: string; size?: number }) {
  return (
    <span
      className="avatar"
      aria-hidden="true"
      style={{ '--avatar-hue': hue(username), width: size, height: size, fontSize: Math.round(size * 0.42) } as React.CSSProperties}
    >
      {initials(username)}
    </span>
  );
}

export const ACCESS_TEXT: Record<WorkspaceAccess, string> = { owner: 'owner', edit: 'can edit', view: 'can view' };

/** Avatars shown before "+N". */
const SHOWN = 4;

/** The other people with this workspace open, live from the `presence` event. */
export function PresenceList({ users }: { users: PresentUser[] }) {
  if (users.length === 0) return null;
  const shown = users.slice(0, SHOWN);
  const rest = users.slice(SHOWN);
  return (
    <ul className="presence" aria-label="Also on this workspace" data-testid="presence">
      {shown.map((u) => {
        const tip = `${u.username} is here (${ACCESS_TEXT[u.access] ?? u.access})`;
        return (
          <li key={u.username} className="presence-item" title={tip} data-testid={`presence-${u.username}`} data-access={u.access}>
            <Avatar username={u.username} />
            <span className="sr-only">{tip}</span>
          </li>
        );
      })}
      {rest.length > 0 && (
        <li className="presence-item presence-more" title={rest.map((u) => `${u.username} (${ACCESS_TEXT[u.access] ?? u.access})`).join(', ')}>
          +{rest.length}
        </li>
      )}
    </ul>
  );
}
