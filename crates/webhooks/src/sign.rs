//! Standard Webhooks signatures (which Svix, and so Clerk, use too): the HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` under the key the secret encodes (`whsec_` + base64), sent as
//! `v1,<base64>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use roster_core::webhooks::WebhookFormat;
use sha2::Sha256;

/// An endpoint's signing key, decoded from its secret and keyed into the HMAC once: the
/// worker keeps it between attempts rather than decoding the secret for each.
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

impl SigningKey {
    /// The key `secret` encodes, or `None` if it is not a `whsec_` secret.
    pub fn from_secret(secret: &str) -> Option<Self> {
        let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
        Hmac::<Sha256>::new_from_slice(&key).ok().map(SigningKey)
    }

    /// The `v1,…` signature of `body` for message `id` sent at `timestamp` (Unix seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `v1,…` signature of `body` for message `id` sent at `timestamp` (Unix seconds), or
/// `None` if `secret` is not a `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    Some(SigningKey::from_secret(secret)?.sign(id, timestamp, body))
}

/// The names of the three headers of a message signed for `format`: Standard Webhooks'
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`), or for Clerk's format Svix's,
/// which Clerk sends (`svix-…`).
pub fn header_names(format: WebhookFormat) -> [&'static str; 3] {
    match format {
        WebhookFormat::Native => ["webhook-id", "webhook-timestamp", "webhook-signature"],
        WebhookFormat::Clerk => ["svix-id", "svix-timestamp", "svix-signature"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn the_specifications_example_signs_as_it_says() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("not-a-secret", "id", 1, "{}"), None);
    }
}
