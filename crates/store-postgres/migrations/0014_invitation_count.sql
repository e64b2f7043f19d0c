-- Each organization keeps its number of invitations by email (memberships without a user),
-- maintained by the database like `member_count` (0002). Clerk's, SCIM's and PlanetScale's
-- lists total the users' memberships only: the kept count less this one, where counting the
-- invitations one by one cost as much as the organization held pending (27,000 in a 30-minute
-- soak, and the lists' p99 rose with them). An invitation becomes a user's membership when it
-- is accepted, the one update that moves a membership between the two counts.
-- The statement-level functions of 0002 now keep both counts in their one update of each
-- organization's row; acceptance changes one row at a time, so its trigger is per row, and
-- its condition keeps every other update (roles, the active flag) from running it.

ALTER TABLE organizations ADD COLUMN invitation_count BIGINT NOT NULL DEFAULT 0;

UPDATE organizations
SET invitation_count = (SELECT COUNT(*) FROM memberships
                        WHERE memberships.org_id = organizations.id AND memberships.user_id IS NULL);

CREATE OR REPLACE FUNCTION memberships_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations o
    SET member_count = o.member_count + n.added,
        invitation_count = o.invitation_count + n.invited
    FROM (SELECT org_id, COUNT(*) AS added, COUNT(*) FILTER (WHERE user_id IS NULL) AS invited
          FROM inserted_rows GROUP BY org_id) n
    WHERE o.id = n.org_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION memberships_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations o
    SET member_count = o.member_count - d.removed,
        invitation_count = o.invitation_count - d.uninvited
    FROM (SELECT org_id, COUNT(*) AS removed, COUNT(*) FILTER (WHERE user_id IS NULL) AS uninvited
          FROM deleted_rows GROUP BY org_id) d
    WHERE o.id = d.org_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION invitations_count_accepted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations
    SET invitation_count = invitation_count + (CASE WHEN NEW.user_id IS NULL THEN 1 ELSE -1 END)
    WHERE id = NEW.org_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER invitations_counted_on_update AFTER UPDATE OF user_id ON memberships
    FOR EACH ROW WHEN ((OLD.user_id IS NULL) <> (NEW.user_id IS NULL))
    EXECUTE FUNCTION invitations_count_accepted();
