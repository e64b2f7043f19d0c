//! Typed ids. Every id is a UUID v7 (time-ordered, so new rows land at the end of indexes and
//! keyset pagination by id follows creation order). The newtypes keep a membership id from being
//! passed where a user id is expected; dialects render and parse them in their vendor's format.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident => $label:literal),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// What the id names, for error messages ("membership … not found").
            pub const LABEL: &'static str = $label;

            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = crate::CoreError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_uuid(s, $label).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    )*};
}

id_type! {
    /// An organization.
    OrganizationId => "organization",
    /// A user account.
    UserId => "user",
    /// A role of one organization.
    RoleId => "role",
    /// An organization membership (a user's, or an invitation by email).
    MembershipId => "membership",
    /// A project of one organization.
    ProjectId => "project",
    /// A user's membership in a project.
    ProjectMembershipId => "project membership",
    /// A machine identity.
    IdentityId => "identity",
    /// A machine identity's membership in a project.
    IdentityProjectMembershipId => "identity project membership",
    /// An API token (user, identity, service token or instance admin key).
    TokenId => "token",
    /// A member-owned password (a named secret).
    PasswordId => "password",
    /// An audit event.
    AuditEventId => "audit event",
    /// A membership event of the outbox (`events`).
    EventId => "event",
    /// A webhook endpoint of an organization.
    WebhookEndpointId => "webhook endpoint",
    /// One attempt to deliver an event to a webhook endpoint.
    WebhookAttemptId => "webhook attempt",
}

/// Parses a UUID in its hyphenated or simple form; anything else is invalid input naming `what`.
pub fn parse_uuid(s: &str, what: &str) -> Result<Uuid, crate::CoreError> {
    // Only the two canonical text forms: `Uuid::parse_str` also accepts braces and URNs,
    // which no client of ours sends and which would make two spellings of one id.
    let ok =
        (s.len() == 36 || s.len() == 32) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    match ok.then(|| Uuid::parse_str(s)) {
        Some(Ok(u)) => Ok(u),
        _ => Err(crate::CoreError::invalid(
            what.replace(' ', "_") + "_id",
            format!("`{s}` is not a valid {what} id (a UUID)"),
        )),
    }
}

/// An id as a request body spells it, parsed while the body is read: a bulk removal's 100,000
/// ids then take 16 bytes each rather than a string on the heap each. A malformed one keeps its
/// text, so that it is refused where, and as, the text would have been (`IdText::parse`).
#[derive(Clone, Debug, PartialEq)]
pub enum IdText<T> {
    Valid(T),
    Malformed(String),
}

impl<T: FromStr<Err = crate::CoreError>> IdText<T> {
    /// The id, or the error its text gets from `T::from_str`.
    pub fn parse(self) -> Result<T, crate::CoreError> {
        match self {
            IdText::Valid(id) => Ok(id),
            IdText::Malformed(text) => text.parse(),
        }
    }
}

impl<'de, T: FromStr> Deserialize<'de> for IdText<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text<T>(PhantomData<T>);
        impl<T: FromStr> serde::de::Visitor<'_> for Text<T> {
            type Value = IdText<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // What a `String` field expects: the same rejection for a number or a list.
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<IdText<T>, E> {
                Ok(match s.parse() {
                    Ok(id) => IdText::Valid(id),
                    Err(_) => IdText::Malformed(s.to_owned()),
                })
            }
        }
        d.deserialize_str(Text(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::{IdText, MembershipId};

    #[test]
    fn an_id_text_holds_a_valid_id_parsed_and_a_malformed_one_as_written() {
        let id = MembershipId::new();
        let read: Vec<IdText<MembershipId>> =
            serde_json::from_value(serde_json::json!([id.to_string(), "not-an-id"])).unwrap();
        assert_eq!(read[0], IdText::Valid(id));
        assert_eq!(read[1], IdText::Malformed("not-an-id".into()));
        // Refused with the error the text itself gets.
        let refused = read[1].clone().parse().unwrap_err();
        let direct = "not-an-id".parse::<MembershipId>().unwrap_err();
        assert_eq!(refused.to_string(), direct.to_string());
        assert_eq!(read[0].clone().parse().unwrap(), id);
    }

    #[test]
    fn an_id_text_refuses_what_is_not_a_string_as_a_string_field_does() {
        for not_text in [
            serde_json::json!(7),
            serde_json::json!(["x"]),
            serde_json::json!(null),
        ] {
            let as_id = serde_json::from_value::<IdText<MembershipId>>(not_text.clone())
                .unwrap_err()
                .to_string();
            let as_string = serde_json::from_value::<String>(not_text)
                .unwrap_err()
                .to_string();
            assert_eq!(as_id, as_string);
        }
    }
}
