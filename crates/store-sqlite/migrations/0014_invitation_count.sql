-- Each organization keeps its number of invitations by email (memberships without a user),
-- maintained by the database like `member_count` (0002). Clerk's, SCIM's and PlanetScale's
-- lists total the users' memberships only: the kept count less this one, where counting the
-- invitations one by one cost as much as the organization held pending (27,000 in a 30-minute
-- soak, and the lists' p99 rose with them). An invitation becomes a user's membership when it
-- is accepted, the one update that moves a membership between the two counts.

ALTER TABLE organizations ADD COLUMN invitation_count INTEGER NOT NULL DEFAULT 0;

UPDATE organizations
SET invitation_count = (SELECT COUNT(*) FROM memberships
                        WHERE memberships.org_id = organizations.id AND memberships.user_id IS NULL);

CREATE TRIGGER invitations_counted_on_insert AFTER INSERT ON memberships
WHEN NEW.user_id IS NULL
BEGIN
    UPDATE organizations SET invitation_count = invitation_count + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER invitations_counted_on_delete AFTER DELETE ON memberships
WHEN OLD.user_id IS NULL
BEGIN
    UPDATE organizations SET invitation_count = invitation_count - 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER invitations_counted_on_update AFTER UPDATE OF user_id ON memberships
WHEN (OLD.user_id IS NULL) <> (NEW.user_id IS NULL)
BEGIN
    UPDATE organizations
    SET invitation_count = invitation_count + (CASE WHEN NEW.user_id IS NULL THEN 1 ELSE -1 END)
    WHERE id = NEW.org_id;
END;
