-- Why a workspace is in its state, for people, and who stopped it.
ALTER TABLE workspaces ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN stopped_by TEXT;
