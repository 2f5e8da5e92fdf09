-- Templates: their manifest (JSON: name, description, icon, runCommand, previewPort,
-- initCommand) and their files' archive in the object store (JSON: key, size, sha256, files,
-- bytes). The object store holds the same manifest beside the archive.
CREATE TABLE templates (
    name TEXT PRIMARY KEY,
    manifest TEXT NOT NULL,
    archive TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_at TEXT NOT NULL
);
-- The template's init command, until the workspace's first start has run it.
ALTER TABLE workspaces ADD COLUMN init_command TEXT;
-- The template's run command and preview port as they were when the workspace was made
-- ('' and 0 for none; NULL for a workspace older than this column, which reads its
-- template's current ones).
ALTER TABLE workspaces ADD COLUMN run_command TEXT;
ALTER TABLE workspaces ADD COLUMN preview_port BIGINT;
