-- Webhook endpoints, and the delivery of each event to each endpoint that wants it.
--
-- An endpoint has no foreign key to its organization: an organization's deletion is an event
-- its endpoints are still sent. A delivery is one event to one endpoint, written in the same
-- transaction as the event (so that none is lost), and claimed by one node at a time through
-- its lease (`claimed_until`).

CREATE TABLE webhook_endpoints (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL,
    url TEXT NOT NULL,
    description TEXT NULL,
    -- The event types it receives, space-separated; empty: every type.
    event_types TEXT NOT NULL,
    format TEXT NOT NULL,
    -- Kept as it is (`whsec_…`): signing needs the key itself, so it cannot be a hash.
    secret TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    disabled_reason TEXT NULL,
    -- Since when every delivery has failed (null while the last one succeeded).
    failing_since BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, id);

CREATE TABLE webhook_deliveries (
    endpoint_id UUID NOT NULL,
    event_id UUID NOT NULL,
    org_id UUID NOT NULL,
    -- pending, succeeded or failed (after its last attempt).
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id UUID PRIMARY KEY,
    endpoint_id UUID NOT NULL,
    event_id UUID NOT NULL,
    org_id UUID NOT NULL,
    status_code BIGINT NULL,
    error TEXT NULL,
    duration_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
