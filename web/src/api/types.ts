// The wire types the IDE uses, named as the UI thinks of them. Their shapes come from
// ./generated.ts, which is generated from the Rust types of crates/protocol (CI checks it is
// current), so a field renamed on the server breaks `npm run typecheck` here.
import type * as W from './generated';

export type WorkspaceState = W.WorkspaceState;
export type Workspace = W.WorkspaceView;
/** Resource limits a workspace may ask for (each at most the server's own). */
export type WorkspaceLimits = W.Limits;
export type Template = W.Template;
/** `POST /api/templates` (administrators only): a workspace's files become a template. */
export type PublishTemplate = W.PublishTemplate;
export type ServerInfo = W.ServerInfo;

// Accounts, sharing and audit (PROTOCOL.md section 7).
export type Role = W.Role;
export type ShareAccess = W.ShareAccess;
export type WorkspaceAccess = W.WorkspaceAccess;
export type User = W.User;
export type Quotas = W.Quotas;
export type CreateUser = W.CreateUser;
export type UpdateUser = W.UpdateUser;
export type SessionView = W.SessionView;
export type TokenCreated = W.TokenCreated;
export type TokenView = W.TokenView;
export type Share = W.Share;
export type Usage = W.Usage;
export type AuditEntry = W.AuditEntry;
export type AuditPage = W.AuditPage;
export type AuditQuery = W.AuditQuery;
export type Presence = W.Presence;
export type PresentUser = W.PresentUser;

/** The server's stable codes, and the client's own: `timeout`, `disconnected`. */
export type ErrorCode = W.ErrorCode | 'timeout' | 'disconnected';

export type TerminalInfo = W.TerminalInfo;
export type ProcessInfo = W.ProcessInfo;
export type DirEntry = W.DirEntry;
export type PortInfo = W.PortInfo;
export type FileChangeKind = W.ChangeKind;

/** Every server-to-client message of the control socket, read field by field. */
export type ServerMessage = { type: string; requestId?: string | null } & Record<string, unknown>;

export type WelcomeMessage = { type: 'welcome' } & W.Welcome;
export type StatusMessage = { type: 'status' } & W.Status;
export type FileChangedMessage = { type: 'file_changed' } & W.FileChanged;
export type FileContent = { type: 'file_content' } & W.FileContent;
export type FileWritten = { type: 'file_written' } & W.FileWritten;
export type DirListing = { type: 'dir_listing' } & W.DirListing;
export type ProcessOutput = { type: 'process_output' } & W.ProcessOutput;
export type ProcessExit = { type: 'process_exit' } & W.ProcessExit;
export type ProcessStarted = { type: 'process_started' } & W.ProcessStarted;
export type PortEvent = { type: 'port_opened' | 'port_closed' } & W.PortEvent;

/** Error with the stable `code` of docs/PROTOCOL.md. */
export class ApiError extends Error {
  code: ErrorCode;
  status?: number;
  /** Seconds to wait, from `Retry-After` on a 429. */
  retryAfter?: number;
  constructor(code: ErrorCode | string, message: string, status?: number) {
    super(message);
    this.name = 'ApiError';
    this.code = code as ErrorCode;
    this.status = status;
  }
}
