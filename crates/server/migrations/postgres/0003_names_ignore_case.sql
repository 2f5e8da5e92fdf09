-- Workspace names are unique per owner whatever their case: "Demo" and "demo" are one name.
-- (SQLite renames clashes from before this version; a PostgreSQL store never had them.)
CREATE UNIQUE INDEX workspaces_owner_name_nocase ON workspaces (owner, lower(name));
