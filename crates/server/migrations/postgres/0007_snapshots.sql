-- The workspace's latest verified snapshot in the object store (JSON: key, size, sha256,
-- filesBytes, createdAt); the database is the authority on which one is good.
ALTER TABLE workspaces ADD COLUMN snapshot TEXT;
