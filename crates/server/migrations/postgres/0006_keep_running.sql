-- A workspace kept running with nobody connected (background jobs): the idle stop passes it by.
ALTER TABLE workspaces ADD COLUMN keep_running BIGINT NOT NULL DEFAULT 0;
