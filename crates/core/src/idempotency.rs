//! Idempotent requests (the IETF httpapi draft "The Idempotency-Key HTTP Header Field", as
//! Stripe serves it): a client's key for one change, and the answer that change gave, kept
//! with the change (in its transaction) so that a repeat of the request gets the same answer
//! instead of a second change.
//!
//! What an answer is (a status and body bytes) is the surface's business; this knows no HTTP.

use sha2::{Digest, Sha256};

use crate::error::{CoreError, CoreResult};
use crate::permissions::Actor;
use crate::timestamp::Timestamp;

/// How long an answer is kept for its key's repeats by default: a day, as Stripe keeps them.
pub const DEFAULT_IDEMPOTENCY_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(24 * 3600);

/// A client's key: 1 to 255 printable ASCII characters (space included).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// The key `raw` (a header's bytes), or why it is not one; `field` names the header.
    pub fn parse(field: &str, raw: &[u8]) -> CoreResult<Self> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(CoreError::invalid(
                field,
                format!(
                    "{field} must be 1 to {} characters long, not {}",
                    Self::MAX_LEN,
                    raw.len()
                ),
            ));
        }
        if !raw.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(CoreError::invalid(
                field,
                format!("{field} must be printable ASCII characters"),
            ));
        }
        // Every byte is ASCII, so this is the same text.
        Ok(IdempotencyKey(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request, as far as a repeat of its key must match it: whose key it is (keys are the
/// caller's own: one caller's key never replays another's answer), the method, the path with
/// its query, and a hash of the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// The caller, as audit events name it (`user:…`, `service_token:…`, …).
    pub actor: String,
    pub key: IdempotencyKey,
    pub method: String,
    pub path: String,
    pub body_sha256: Vec<u8>,
}

impl IdempotentRequest {
    pub fn new(actor: &Actor, key: IdempotencyKey, method: &str, path: &str, body: &[u8]) -> Self {
        let (kind, id) = actor.audit_ref();
        IdempotentRequest {
            actor: format!("{kind}:{id}"),
            key,
            method: method.to_owned(),
            path: path.to_owned(),
            body_sha256: Sha256::digest(body).to_vec(),
        }
    }

    /// Whether `other` (a request stored under the same caller and key) is this request again.
    pub fn repeats(&self, other: &IdempotentRequest) -> bool {
        self.method == other.method
            && self.path == other.path
            && self.body_sha256 == other.body_sha256
    }
}

/// An answer as the surface gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A key's request and its answer, kept until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request: IdempotentRequest,
    pub response: StoredResponse,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_printable_characters() {
        assert!(IdempotencyKey::parse("Idempotency-Key", b"a").is_ok());
        assert!(IdempotencyKey::parse("Idempotency-Key", b"leavers 2026-12 #4").is_ok());
        assert!(IdempotencyKey::parse("Idempotency-Key", &[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse("Idempotency-Key", &[b'k'; 256]).is_err());
        assert!(IdempotencyKey::parse("Idempotency-Key", b"").is_err());
        assert!(IdempotencyKey::parse("Idempotency-Key", b"tab\there").is_err());
        assert!(IdempotencyKey::parse("Idempotency-Key", "clé".as_bytes()).is_err());
    }
}
