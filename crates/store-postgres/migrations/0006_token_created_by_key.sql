-- The instance admin key that created a token, when one did: `created_by` names only users,
-- so a token minted with an admin key recorded nobody as its creator.

ALTER TABLE tokens ADD COLUMN created_by_key UUID NULL;
