//! Standard Webhooks signatures (which Svix, and so Clerk, use too): the HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` under the key the secret encodes (`whsec_` + base64), sent as
//! `v1,<base64>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `v1,…` signature of `body` for message `id` sent at `timestamp` (Unix seconds), or
/// `None` if `secret` is not a `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The three headers of a signed message, under `prefix` (`webhook` for Standard Webhooks,
/// `svix` for Clerk's endpoints): `{prefix}-id`, `{prefix}-timestamp`, `{prefix}-signature`.
pub fn signature_headers(
    prefix: &str,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
) -> Option<[(String, String); 3]> {
    let signature = sign(secret, id, timestamp, body)?;
    Some([
        (format!("{prefix}-id"), id.to_owned()),
        (format!("{prefix}-timestamp"), timestamp.to_string()),
        (format!("{prefix}-signature"), signature),
    ])
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
