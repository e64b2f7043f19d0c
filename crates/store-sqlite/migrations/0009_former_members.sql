-- Former members: what every removal removed, kept for a retention window so that a removal
-- made by mistake can be undone (the membership back under its old id, with its role and its
-- project memberships). Written in the removal's own transaction. Credentials a removal
-- deleted are named, never kept. A user's deletion purges their records everywhere.

CREATE TABLE former_members (
    org_id BLOB NOT NULL,
    membership_id BLOB NOT NULL,
    user_id BLOB NULL,
    -- The membership as it was (the core's model, JSON).
    membership TEXT NOT NULL,
    -- Its project memberships, with their roles, and the ids of the credentials deleted with
    -- it (JSON).
    project_memberships TEXT NOT NULL,
    credentials TEXT NOT NULL,
    removed_by_kind TEXT NOT NULL,
    removed_by_id TEXT NULL,
    request_id TEXT NULL,
    removed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, membership_id)
) STRICT, WITHOUT ROWID;
-- Keyed by organization, as every list reads them, and nothing else: a removal writes one
-- row in one b-tree. A user's deletion and the hourly purge, both rare, read the table whole.
