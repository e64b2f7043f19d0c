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
    body_sha256 BLOB NOT NULL,
    status INTEGER NOT NULL,
    -- The answer's body as it was sent (a secret it held replaced: secrets are never kept).
    response BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (actor, idempotency_key)
) STRICT;
-- A rowid table: an answer may be large (a bulk removal's), which a WITHOUT ROWID b-tree
-- stores badly.
CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);
