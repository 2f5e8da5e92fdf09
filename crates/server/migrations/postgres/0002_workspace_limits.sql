-- Limits a workspace asked for at creation (JSON: memoryMib, cpu, pids, diskMib; absent keys
-- take the server's defaults, which are also the ceilings).
ALTER TABLE workspaces ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
