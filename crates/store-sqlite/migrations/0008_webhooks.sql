-- Webhook endpoints, and the delivery of each event to each endpoint that wants it.
--
-- An endpoint has no foreign key to its organization: an organization's deletion is an event
-- its endpoints are still sent. A delivery is one event to one endpoint, written in the same
-- transaction as the event (so that none is lost), and claimed by one node at a time through
-- its lease (`claimed_until`). Deliveries and attempts are small rows written at the rate of
-- removals: kept WITHOUT ROWID, each in the b-tree of its key alone, not in a table and an
-- index of the key besides.

CREATE TABLE webhook_endpoints (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL,
    url TEXT NOT NULL,
    description TEXT NULL,
    -- The event types it receives, space-separated; empty: every type.
    event_types TEXT NOT NULL,
    format TEXT NOT NULL,
    -- Kept as it is (`whsec_…`): signing needs the key itself, so it cannot be a hash.
    secret TEXT NOT NULL,
    disabled INTEGER NOT NULL,
    disabled_reason TEXT NULL,
    -- Since when every delivery has failed (null while the last one succeeded).
    failing_since INTEGER NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, id);

CREATE TABLE webhook_deliveries (
    endpoint_id BLOB NOT NULL,
    event_id BLOB NOT NULL,
    org_id BLOB NOT NULL,
    -- pending, succeeded or failed (after its last attempt).
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    claimed_until INTEGER NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id BLOB PRIMARY KEY,
    endpoint_id BLOB NOT NULL,
    event_id BLOB NOT NULL,
    org_id BLOB NOT NULL,
    status_code INTEGER NULL,
    error TEXT NULL,
    duration_ms INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
