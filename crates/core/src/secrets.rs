//! Secrets: generated, shown once, stored only as a SHA-256 hash. A secret is 32 random bytes,
//! so a fast hash is enough (there is nothing to brute-force, unlike a human password).
//!
//! A token is written `rst_<token id, 32 hex>_<secret, 64 hex>`; the same key can be presented as
//! `<token id>:<secret>` (PlanetScale's form). Its `Debug` never prints the secret.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ids::TokenId;

const PREFIX: &str = "rst_";

/// A freshly generated secret, in clear: only ever handed back to its creator, once.
pub struct PlainSecret(String);

impl PlainSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        PlainSecret(hex(&bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> Vec<u8> {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainSecret(<redacted>)")
    }
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares two hashes in time independent of where they differ.
pub fn hashes_match(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// The full token string a client sends as `Bearer <token>`.
pub fn format_token(id: TokenId, secret: &PlainSecret) -> String {
    format!("{PREFIX}{}_{}", id.0.simple(), secret.expose())
}

/// What a request presented to authenticate with.
#[derive(Debug)]
pub enum Credentials {
    /// Nothing, or a header in no form any mount reads.
    Missing,
    /// A well-formed header (`Bearer <key>`) whose key is not a roster token.
    Unrecognized,
    Token(PresentedToken),
}

/// Credentials as presented: a token id and its secret.
pub struct PresentedToken {
    pub id: TokenId,
    pub secret: String,
}

impl fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedToken({}, <redacted>)", self.id)
    }
}

impl PresentedToken {
    /// Parses `rst_<id>_<secret>`.
    pub fn parse_bearer(token: &str) -> Option<Self> {
        let rest = token.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        Self::from_parts(id, secret)
    }

    /// Parses `<id>:<secret>` (the id hyphenated or simple).
    pub fn parse_pair(value: &str) -> Option<Self> {
        let (id, secret) = value.split_once(':')?;
        Self::from_parts(id, secret)
    }

    fn from_parts(id: &str, secret: &str) -> Option<Self> {
        let id = crate::ids::parse_uuid(id, "token").ok()?;
        if secret.is_empty() || secret.len() > 256 {
            return None;
        }
        Some(PresentedToken {
            id: TokenId(id),
            secret: secret.to_owned(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formatted_token_parses_back_in_both_forms() {
        let id = TokenId::new();
        let secret = PlainSecret::generate();
        let token = format_token(id, &secret);
        let bearer = PresentedToken::parse_bearer(&token).unwrap();
        assert_eq!(bearer.id, id);
        assert!(hashes_match(&hash_secret(&bearer.secret), &secret.hash()));
        let pair = PresentedToken::parse_pair(&format!("{id}:{}", secret.expose())).unwrap();
        assert_eq!(pair.id, id);
        assert_eq!(pair.secret, secret.expose());
    }

    #[test]
    fn secrets_are_never_printed_by_debug() {
        let secret = PlainSecret::generate();
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        assert!(PresentedToken::parse_bearer("rst_nothex_abc").is_none());
        assert!(PresentedToken::parse_bearer("sk_live_abc").is_none());
        assert!(PresentedToken::parse_pair("no-colon-here").is_none());
    }
}
