-- The outbox: every committed change to memberships, organizations and users writes its events
-- in its own transaction. No foreign key to the organization: an organization's deletion is
-- itself an event, kept after the row it names is gone.

CREATE TABLE events (
    id UUID PRIMARY KEY,
    org_id UUID NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- One index, in the order a consumer catches up; a filter by type reads it in that order too
-- (a second index would cost every removal a second write).
CREATE INDEX events_org ON events (org_id, id);

-- The built-in admin role holds every permission, the two new ones included.
UPDATE roles SET permissions = permissions || ' events:read webhooks:manage'
WHERE built_in = TRUE AND role_key = 'admin';
