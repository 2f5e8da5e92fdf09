-- Workspace names are unique per owner whatever their case: "Demo" and "demo" are one name
-- (people read names in lists and type them in URLs). Names that collide from before keep
-- their text with a piece of their id appended, so nothing is lost and nothing clashes.
UPDATE workspaces SET name = name || '-' || substr(id, 1, 6)
WHERE rowid NOT IN (SELECT min(rowid) FROM workspaces GROUP BY owner, lower(name));
CREATE UNIQUE INDEX workspaces_owner_name_nocase ON workspaces (owner, name COLLATE NOCASE);
