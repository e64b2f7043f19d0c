-- One pending invitation per organization and address, whatever its case: a second invitation
-- to the same person gave a second row, and after one was accepted the other stayed forever.
-- The unique index makes concurrent invitations unable to race past the check. Rows an
-- earlier roster left are cleaned first: of duplicate invitations the oldest is kept, and an
-- invitation to an address whose user is already a member (it can never be accepted) goes.

DELETE FROM memberships
WHERE status = 'invited'
  AND EXISTS (
    SELECT 1 FROM memberships AS older
    WHERE older.org_id = memberships.org_id
      AND older.status = 'invited'
      AND lower(older.invite_email) = lower(memberships.invite_email)
      AND older.id < memberships.id
  );

DELETE FROM memberships
WHERE status = 'invited'
  AND EXISTS (
    SELECT 1 FROM memberships AS member
    JOIN users ON users.id = member.user_id
    WHERE member.org_id = memberships.org_id
      AND users.email_normalized = lower(memberships.invite_email)
  );

CREATE UNIQUE INDEX memberships_pending_invitation_key
    ON memberships (org_id, lower(invite_email))
    WHERE status = 'invited';
