//! Clerk-style ids: a prefix and the UUID in base 62 (`org_…`, `user_…`, `orgmem_…`), so that
//! roster's ids round-trip through a Clerk client unchanged. The core never sees this format.

use uuid::Uuid;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 62^22 > 2^128: every UUID fits in 22 digits.
const DIGITS: usize = 22;

pub const ORGANIZATION: &str = "org";
pub const USER: &str = "user";
pub const MEMBERSHIP: &str = "orgmem";
/// A membership while it is only an invitation, as Clerk names invitations.
pub const INVITATION: &str = "orginv";
pub const EMAIL: &str = "idn";

pub fn encode(prefix: &str, id: Uuid) -> String {
    let mut n = id.as_u128();
    let mut digits = [b'0'; DIGITS];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    format!("{prefix}_{}", String::from_utf8_lossy(&digits))
}

pub fn decode(prefix: &str, s: &str) -> Option<Uuid> {
    let digits = s.strip_prefix(prefix)?.strip_prefix('_')?;
    if digits.len() != DIGITS {
        return None;
    }
    let mut n: u128 = 0;
    for b in digits.bytes() {
        let d = ALPHABET.iter().position(|a| *a == b)? as u128;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(Uuid::from_u128(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ones_do_not_decode() {
        for u in [Uuid::nil(), Uuid::max(), Uuid::now_v7()] {
            let s = encode(ORGANIZATION, u);
            assert!(s.starts_with("org_") && s.len() == 4 + DIGITS);
            assert_eq!(decode(ORGANIZATION, &s), Some(u));
            assert_eq!(decode(USER, &s), None, "another kind's prefix");
        }
        assert_eq!(
            decode(ORGANIZATION, "org_2ZUtbk2yvnFGItdeze1ivCh3uqh"),
            None,
            "a real Clerk id is not one of ours"
        );
        assert_eq!(
            decode(ORGANIZATION, "org_zzzzzzzzzzzzzzzzzzzzzz"),
            None,
            "overflow"
        );
    }
}
