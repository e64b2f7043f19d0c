-- Each organization keeps its number of memberships (invitations included), maintained by the
-- database itself on every insert and delete, whoever writes: counting is then one row read
-- instead of a scan of the organization's memberships (Clerk renders the count on every
-- membership removal). Memberships never move between organizations, so updates need no trigger.

ALTER TABLE organizations ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;

UPDATE organizations
SET member_count = (SELECT COUNT(*) FROM memberships WHERE memberships.org_id = organizations.id);

CREATE TRIGGER memberships_counted_on_insert AFTER INSERT ON memberships
BEGIN
    UPDATE organizations SET member_count = member_count + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER memberships_counted_on_delete AFTER DELETE ON memberships
BEGIN
    UPDATE organizations SET member_count = member_count - 1 WHERE id = OLD.org_id;
END;
