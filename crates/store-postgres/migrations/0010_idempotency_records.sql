-- Idempotent requests: a caller's key, the request it was first used for (method, path, a
-- hash of the body) and the answer that request's change gave, written in the change's own
-- transaction, so that a repeat of the request gets the answer instead of a second change.
-- Kept for a day unless the operator says otherwise, then purged.

CREATE TABLE idempotency_records (
    -- The caller, as audit events name it (`user:…`): keys are the caller's own.
    actor TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body_sha256 BYTEA NOT NULL,
    status BIGINT NOT NULL,
    -- The answer's body as it was sent (a secret it held replaced: secrets are never kept).
    response BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (actor, idempotency_key)
);
CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);
