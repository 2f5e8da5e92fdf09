// REST calls of accounts, sharing and audit (PROTOCOL.md section 7).
import { request } from './rest';
import type {
  AuditPage,
  AuditQuery,
  CreateUser,
  SessionView,
  Share,
  ShareAccess,
  TokenCreated,
  TokenView,
  UpdateUser,
  Usage,
  User,
} from './types';

const enc = encodeURIComponent;

export const accounts = {
  /** Signs in; a wrong password answers 401 (an ApiError), not a trip to the sign-in page. */
  login: (password: string, username?: string) =>
    request<{ user: User }>('POST', '/login', username ? { username, password } : { password }, { signInOn401: false }),
  /** Ends the session everywhere it is open. The body is empty JSON: the server wants JSON. */
  logout: () => request<void>('POST', '/logout', {}, { signInOn401: false }),

  me: () => request<User>('GET', '/api/users/me'),
  usage: () => request<Usage>('GET', '/api/users/me/usage'),
  sessions: () => request<SessionView[]>('GET', '/api/users/me/sessions'),
  revokeSession: (id: string) => request<void>('DELETE', `/api/users/me/sessions/${enc(id)}`),

  tokens: () => request<TokenView[]>('GET', '/api/tokens'),
  createToken: (name: string, expiresInDays?: number) =>
    request<TokenCreated>('POST', '/api/tokens', expiresInDays === undefined ? { name } : { name, expiresInDays }),
  revokeToken: (id: string) => request<void>('DELETE', `/api/tokens/${enc(id)}`),

  users: () => request<User[]>('GET', '/api/users'),
  createUser: (u: CreateUser) => request<User>('POST', '/api/users', u),
  updateUser: (user: string, change: UpdateUser) => request<User>('PUT', `/api/users/${enc(user)}`, change),
  deleteUser: (user: string) => request<void>('DELETE', `/api/users/${enc(user)}`),

  shares: (workspace: string) => request<Share[]>('GET', `/api/workspaces/${enc(workspace)}/shares`),
  share: (workspace: string, user: string, access: ShareAccess) =>
    request<unknown>('PUT', `/api/workspaces/${enc(workspace)}/shares/${enc(user)}`, { access }),
  unshare: (workspace: string, user: string) => request<void>('DELETE', `/api/workspaces/${enc(workspace)}/shares/${enc(user)}`),

  audit: (q: AuditQuery) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
    const qs = params.toString();
    return request<AuditPage>('GET', `/api/audit${qs ? `?${qs}` : ''}`);
  },
};

let checking: Promise<void> | null = null;

/**
 * Asks the server whether this browser is still signed in; when it is not, the 401 takes the
 * app to the sign-in page (see rest.ts). For sockets that closed for a reason they cannot tell
 * (a refused upgrade, a policy close). Other failures say nothing and are ignored.
 */
export function verifySession(): Promise<void> {
  checking ??= accounts
    .me()
    .then(
      () => undefined,
      () => undefined,
    )
    .finally(() => {
      checking = null;
    });
  return checking;
}
