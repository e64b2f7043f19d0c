-- Each organization keeps its number of memberships (invitations included), maintained by the
-- database itself on every insert and delete, whoever writes: counting is then one row read
-- instead of a scan of the organization's memberships (Clerk renders the count on every
-- membership removal). Memberships never move between organizations, so updates need no trigger.
-- Statement-level triggers with transition tables: a bulk removal of 100,000 memberships
-- updates its organization's row once, not 100,000 times.

ALTER TABLE organizations ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;

UPDATE organizations
SET member_count = (SELECT COUNT(*) FROM memberships WHERE memberships.org_id = organizations.id);

CREATE FUNCTION memberships_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations o SET member_count = o.member_count + n.added
    FROM (SELECT org_id, COUNT(*) AS added FROM inserted_rows GROUP BY org_id) n
    WHERE o.id = n.org_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION memberships_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations o SET member_count = o.member_count - d.removed
    FROM (SELECT org_id, COUNT(*) AS removed FROM deleted_rows GROUP BY org_id) d
    WHERE o.id = d.org_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER memberships_counted_on_insert AFTER INSERT ON memberships
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memberships_count_inserted();

CREATE TRIGGER memberships_counted_on_delete AFTER DELETE ON memberships
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memberships_count_deleted();
