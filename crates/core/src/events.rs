//! Membership events: what a committed change did, written in the change's own transaction
//! (the outbox), so that there is no event without its change and no change without its event.
//! The events list reads them back, and the webhook delivery sends them.
//!
//! An event keeps its object as the core's model (serialized with serde into the store); each
//! surface renders it in its own shape (the native API, Clerk's webhook format). No wire
//! format is decided here.

use serde::{Deserialize, Serialize};

use crate::ids::*;
use crate::model::*;
use crate::permissions::Actor;
use crate::service::RequestContext;
use crate::timestamp::Timestamp;

macro_rules! event_types {
    ($($variant:ident = $key:literal),* $(,)?) => {
        /// What happened. The key is the event's `type` on every surface that shows it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventType { $($variant),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub fn key(self) -> &'static str {
                match self { $(EventType::$variant => $key),* }
            }

            pub fn parse(key: &str) -> Option<EventType> {
                match key { $($key => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    MembershipCreated = "membership.created",
    MembershipUpdated = "membership.updated",
    MembershipRemoved = "membership.removed",
    IdentityMembershipCreated = "identity_membership.created",
    IdentityMembershipRemoved = "identity_membership.removed",
    OrganizationCreated = "organization.created",
    OrganizationUpdated = "organization.updated",
    OrganizationDeleted = "organization.deleted",
    UserCreated = "user.created",
    UserUpdated = "user.updated",
    UserDeleted = "user.deleted",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// The object an event is about, as it was after the change (as it was before it, for a
/// removal or a deletion).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum EventObject {
    Membership(Membership),
    IdentityMembership(IdentityProjectMembership),
    Organization(Organization),
    User(User),
}

/// Who made the change: `kind` is `user`, `identity`, `service_token`, `admin_key`, or
/// `system` (the CLI, with no id), as in the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventActor {
    pub kind: String,
    pub id: Option<String>,
}

impl EventActor {
    pub fn of(actor: Option<&Actor>) -> Self {
        match actor {
            Some(a) => {
                let (kind, id) = a.audit_ref();
                EventActor {
                    kind: kind.to_owned(),
                    id: Some(id),
                }
            }
            None => EventActor {
                kind: "system".to_owned(),
                id: None,
            },
        }
    }
}

/// What is stored of an event beside its id, organization, type and time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    pub object: EventObject,
    pub actor: EventActor,
    pub request_id: Option<String>,
    /// For `membership.removed`: what the removal deleted of the member's with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<Cascade>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EventId,
    /// The organization whose endpoints receive it; `None` for a user's event while they
    /// belong to no organization.
    pub organization_id: Option<OrganizationId>,
    pub event_type: EventType,
    pub data: EventData,
    pub created_at: Timestamp,
}

impl Event {
    /// An event of `actor`'s change in `org`, made for the request `ctx`.
    pub fn new(
        ctx: &RequestContext,
        actor: Option<&Actor>,
        org: Option<OrganizationId>,
        event_type: EventType,
        object: EventObject,
    ) -> Self {
        Event {
            id: EventId::new(),
            organization_id: org,
            event_type,
            data: EventData {
                object,
                actor: EventActor::of(actor),
                request_id: ctx.request_id.clone(),
                cascade: None,
            },
            created_at: Timestamp::now(),
        }
    }

    /// The same event with what a removal's cascade deleted.
    pub fn with_cascade(mut self, cascade: Cascade) -> Self {
        self.data.cascade = Some(cascade);
        self
    }

    /// The event as a caller holding `held` may see it: private metadata only for those who
    /// may change what it describes (as `Membership::as_seen_with` and the others decide).
    pub fn as_seen_with(mut self, held: crate::PermissionSet) -> Self {
        self.data.object = match self.data.object {
            EventObject::Membership(m) => EventObject::Membership(m.as_seen_with(held)),
            EventObject::Organization(o) => EventObject::Organization(o.as_seen_with(held)),
            other => other,
        };
        self
    }
}

/// What an event purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgedEvents {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub endpoints: u64,
}

/// Which events a list asks for.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub event_type: Option<EventType>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_parses_back_from_its_key() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.key()), Some(*t));
        }
        assert_eq!(EventType::parse("membership.deleted"), None);
    }
}
