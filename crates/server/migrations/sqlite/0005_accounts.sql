-- Accounts (PROTOCOL.md section 7): users and their roles, sign-in sessions, API tokens,
-- shares of workspaces, and the audit log. Secrets are never stored: a session's cookie
-- and a token are kept as their SHA-256, passwords as Argon2 PHC strings.
-- `workspaces.owner` holds a user's id; workspaces from before accounts belong to "admin",
-- the id the first administrator gets.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    role          TEXT NOT NULL,
    -- An Argon2 PHC string; empty: no password sign-in (tokens only).
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    -- Overrides of the server's default quotas (JSON, the protocol's Quotas).
    quotas        TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX users_username_nocase ON users (username COLLATE NOCASE);

CREATE TABLE sessions (
    -- Public id: listed and revoked by it. The cookie's secret is only known by its hash.
    id            TEXT PRIMARY KEY NOT NULL,
    secret_hash   TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    -- Absolute expiry; idle expiry is computed from last_seen_at.
    expires_at    TEXT NOT NULL,
    address       TEXT NOT NULL,
    user_agent    TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    secret_hash   TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    last_used_at  TEXT
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE shares (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX shares_user ON shares (user_id);

-- Append-only: rows are added, never changed or removed (the triggers refuse it).
CREATE TABLE audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    username      TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    address       TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    detail        TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_username ON audit (username);
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
