-- Why a workspace is in its state, for people ("stopped by admin", "the runner exited"), and
-- who stopped it: a stop is a decision, shown in the IDE, not silently undone.
-- `updated_at` already records when the state last changed.
ALTER TABLE workspaces ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN stopped_by TEXT;
