-- A member's id in an identity provider's directory (SCIM's `externalId`), kept with the
-- membership so that it goes with a removal and comes back with a reinstatement. Unique in
-- an organization where it is set: the provider looks its members up by it.

ALTER TABLE memberships ADD COLUMN external_id TEXT NULL;

CREATE UNIQUE INDEX memberships_external_id_key
    ON memberships (org_id, external_id)
    WHERE external_id IS NOT NULL;
