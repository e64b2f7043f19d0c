-- roster schema, version 1 (PostgreSQL). Never edit once landed: add a new migration.
-- Every table carries org_id (except users and instance admin keys) so data can be sharded by tenant.
-- Timestamps are milliseconds since the Unix epoch (BIGINT); metadata is JSON text.

CREATE TABLE organizations (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    max_allowed_memberships BIGINT NOT NULL DEFAULT 0,
    admin_delete_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    public_metadata TEXT NOT NULL DEFAULT '{}',
    private_metadata TEXT NOT NULL DEFAULT '{}',
    created_by UUID NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT organizations_slug_key UNIQUE (slug)
);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    first_name TEXT NULL,
    last_name TEXT NULL,
    username TEXT NULL,
    image_url TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email_normalized)
);

CREATE TABLE roles (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id),
    role_key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NULL,
    permissions TEXT NOT NULL,
    built_in BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT roles_org_key_key UNIQUE (org_id, role_key)
);

CREATE TABLE memberships (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id),
    user_id UUID NULL REFERENCES users (id),
    invite_email TEXT NULL,
    role_id UUID NOT NULL REFERENCES roles (id),
    status TEXT NOT NULL,
    is_active BOOLEAN NOT NULL,
    last_invited_at BIGINT NULL,
    last_login_auth_method TEXT NULL,
    last_login_time BIGINT NULL,
    project_favorites TEXT NULL,
    public_metadata TEXT NOT NULL,
    private_metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT memberships_org_user_key UNIQUE (org_id, user_id)
);
CREATE INDEX memberships_org_role ON memberships (org_id, role_id);
CREATE INDEX memberships_org_id ON memberships (org_id, id);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE projects (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT projects_org_slug_key UNIQUE (org_id, slug)
);

CREATE TABLE project_memberships (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id),
    project_id UUID NOT NULL REFERENCES projects (id),
    user_id UUID NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT project_memberships_project_user_key UNIQUE (project_id, user_id)
);
CREATE INDEX project_memberships_org_user ON project_memberships (org_id, user_id);
CREATE INDEX project_memberships_user ON project_memberships (user_id);

CREATE TABLE identities (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    role_id UUID NOT NULL REFERENCES roles (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX identities_org ON identities (org_id, id);
CREATE INDEX identities_org_role ON identities (org_id, role_id);

CREATE TABLE identity_project_memberships (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id),
    project_id UUID NOT NULL REFERENCES projects (id),
    identity_id UUID NOT NULL REFERENCES identities (id),
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT identity_project_memberships_project_identity_key UNIQUE (project_id, identity_id)
);
CREATE INDEX identity_project_memberships_identity ON identity_project_memberships (identity_id);

CREATE TABLE tokens (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    org_id UUID NULL REFERENCES organizations (id),
    user_id UUID NULL REFERENCES users (id),
    identity_id UUID NULL REFERENCES identities (id),
    created_by UUID NULL,
    name TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    permissions TEXT NOT NULL,
    expires_at BIGINT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX tokens_org_creator ON tokens (org_id, created_by);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_identity ON tokens (identity_id);

CREATE TABLE passwords (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id),
    user_id UUID NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX passwords_org_user ON passwords (org_id, user_id);
CREATE INDEX passwords_user ON passwords (user_id);

-- No foreign key to organizations: the record of what happened outlives what it happened to.
CREATE TABLE audit_events (
    id UUID PRIMARY KEY,
    org_id UUID NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    request_id TEXT NULL,
    details TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_events_org ON audit_events (org_id, id);
