-- Accounts (PROTOCOL.md section 7): users and their roles, sign-in sessions, API tokens,
-- shares of workspaces, and the audit log; see migrations/sqlite/0005_accounts.sql.
-- Integers are BIGINT (SQLite's INTEGER is 64-bit), so that one query reads both.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0,
    quotas        TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX users_username_nocase ON users (lower(username));

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY NOT NULL,
    secret_hash   TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
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

-- Append-only: rows are added, never changed or removed (the trigger refuses it).
CREATE TABLE audit (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_is_append_only_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();
