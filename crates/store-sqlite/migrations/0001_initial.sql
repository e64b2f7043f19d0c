-- roster schema, version 1 (SQLite). Never edit once landed: add a new migration.
-- Every table carries org_id (except users and instance admin keys) so data can be sharded by tenant.
-- Ids are 16-byte BLOBs, booleans 0/1, timestamps milliseconds since the Unix epoch; metadata is JSON text.

CREATE TABLE organizations (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    max_allowed_memberships INTEGER NOT NULL DEFAULT 0,
    admin_delete_enabled INTEGER NOT NULL DEFAULT 1,
    public_metadata TEXT NOT NULL DEFAULT '{}',
    private_metadata TEXT NOT NULL DEFAULT '{}',
    created_by BLOB NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT organizations_slug_key UNIQUE (slug)
) STRICT;

CREATE TABLE users (
    id BLOB PRIMARY KEY,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    first_name TEXT NULL,
    last_name TEXT NULL,
    username TEXT NULL,
    image_url TEXT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email_normalized)
) STRICT;

CREATE TABLE roles (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    role_key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NULL,
    permissions TEXT NOT NULL,
    built_in INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT roles_org_key_key UNIQUE (org_id, role_key)
) STRICT;

CREATE TABLE memberships (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    user_id BLOB NULL REFERENCES users (id),
    invite_email TEXT NULL,
    role_id BLOB NOT NULL REFERENCES roles (id),
    status TEXT NOT NULL,
    is_active INTEGER NOT NULL,
    last_invited_at INTEGER NULL,
    last_login_auth_method TEXT NULL,
    last_login_time INTEGER NULL,
    project_favorites TEXT NULL,
    public_metadata TEXT NOT NULL,
    private_metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT memberships_org_user_key UNIQUE (org_id, user_id)
) STRICT;
CREATE INDEX memberships_org_role ON memberships (org_id, role_id);
CREATE INDEX memberships_org_id ON memberships (org_id, id);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE projects (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT projects_org_slug_key UNIQUE (org_id, slug)
) STRICT;

CREATE TABLE project_memberships (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    project_id BLOB NOT NULL REFERENCES projects (id),
    user_id BLOB NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT project_memberships_project_user_key UNIQUE (project_id, user_id)
) STRICT;
CREATE INDEX project_memberships_org_user ON project_memberships (org_id, user_id);
CREATE INDEX project_memberships_user ON project_memberships (user_id);

CREATE TABLE identities (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    role_id BLOB NOT NULL REFERENCES roles (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX identities_org ON identities (org_id, id);
CREATE INDEX identities_org_role ON identities (org_id, role_id);

CREATE TABLE identity_project_memberships (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    project_id BLOB NOT NULL REFERENCES projects (id),
    identity_id BLOB NOT NULL REFERENCES identities (id),
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT identity_project_memberships_project_identity_key UNIQUE (project_id, identity_id)
) STRICT;
CREATE INDEX identity_project_memberships_identity ON identity_project_memberships (identity_id);

CREATE TABLE tokens (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    org_id BLOB NULL REFERENCES organizations (id),
    user_id BLOB NULL REFERENCES users (id),
    identity_id BLOB NULL REFERENCES identities (id),
    created_by BLOB NULL,
    name TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    permissions TEXT NOT NULL,
    expires_at INTEGER NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tokens_org_creator ON tokens (org_id, created_by);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_identity ON tokens (identity_id);

CREATE TABLE passwords (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    user_id BLOB NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX passwords_org_user ON passwords (org_id, user_id);
CREATE INDEX passwords_user ON passwords (user_id);

-- No foreign key to organizations: the record of what happened outlives what it happened to.
CREATE TABLE audit_events (
    id BLOB PRIMARY KEY,
    org_id BLOB NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    request_id TEXT NULL,
    details TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_events_org ON audit_events (org_id, id);
