-- Workspaces and who owns them. `state` is the last state the server recorded; the backend
-- is the truth about whether a runner is running, and is asked again at start-up.
CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    template    TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (owner, name)
);
