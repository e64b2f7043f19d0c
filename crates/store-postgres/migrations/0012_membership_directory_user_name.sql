-- A member's userName in an identity provider's directory (SCIM's `userName`), where it is
-- not their email: an Okta login such as `ada.lovelace`. Kept with the membership, like its
-- external id; unique in an organization, whatever its case.

ALTER TABLE memberships ADD COLUMN directory_user_name TEXT NULL;

CREATE UNIQUE INDEX memberships_directory_user_name_key
    ON memberships (org_id, lower(directory_user_name))
    WHERE directory_user_name IS NOT NULL;
