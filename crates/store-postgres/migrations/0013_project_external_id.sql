-- A project's id in an identity provider's directory (a SCIM Group's `externalId`: Entra ID
-- maps a group's objectId to it). Unique in an organization where it is set.

ALTER TABLE projects ADD COLUMN external_id TEXT NULL;

CREATE UNIQUE INDEX projects_external_id_key
    ON projects (org_id, external_id)
    WHERE external_id IS NOT NULL;
