//! Clerk's webhook events, for endpoints of the `clerk` format: the changes Clerk itself
//! tells of (`organizationMembership.*`, `organizationInvitation.*`, `organization.*`,
//! `user.*`) in Clerk's own shapes,
//! `{"data", "object": "event", "type", "timestamp", "instance_id"}`, so that an app's existing
//! Clerk webhook handler works when pointed at roster. (The worker signs them with Svix's
//! headers.)

use roster_core::events::{EventObject, EventType};
use roster_core::model::User;
use roster_core::webhooks::DueDelivery;
use serde_json::{Value, json};

use crate::wire;

/// QUIRK(clerk): every Clerk event names the Clerk instance it comes from; a roster server is
/// one instance, and says so with this fixed id.
pub const INSTANCE_ID: &str = "ins_roster";

/// The body of `due`'s event as Clerk sends it, or `None` for an event Clerk has no word for
/// (machine identities). A membership that is only an invitation is told of as Clerk's
/// invitation: created, then revoked if it is removed; its acceptance is the membership's
/// `organizationMembership.created` (one event, one body: Clerk's `organizationInvitation.
/// accepted` beside it is not sent).
pub fn event(due: &DueDelivery) -> Option<String> {
    let event = &due.event;
    let (clerk_type, data) = match (&event.data.object, event.event_type) {
        (EventObject::Membership(m), t) if m.user_id.is_none() => {
            let (clerk_type, status) = match t {
                EventType::MembershipCreated => ("organizationInvitation.created", "pending"),
                EventType::MembershipRemoved => ("organizationInvitation.revoked", "revoked"),
                _ => return None,
            };
            let inviter = (event.data.actor.kind == "user")
                .then(|| event.data.actor.id.as_deref()?.parse().ok())
                .flatten();
            let roles = wire::role_book(due.context.clone().unwrap_or_default().roles);
            (clerk_type, wire::invitation(m, status, inviter, &roles))
        }
        (EventObject::Membership(m), t) => {
            let clerk_type = match t {
                EventType::MembershipCreated => "organizationMembership.created",
                EventType::MembershipUpdated => "organizationMembership.updated",
                EventType::MembershipRemoved => "organizationMembership.deleted",
                _ => return None,
            };
            let user_id = m.user_id?;
            let context = due.context.clone().unwrap_or_default();
            // A deleted user (the membership went with them) is shown by id alone.
            let user = context.user.unwrap_or(User {
                id: user_id,
                email: String::new(),
                first_name: None,
                last_name: None,
                username: None,
                image_url: None,
                created_at: m.created_at,
                updated_at: m.updated_at,
            });
            let organization = match &context.organization {
                Some(o) => wire::organization(o, None),
                // A deleted organization: by id, as Clerk shows deleted objects.
                None => wire::deleted("organization", wire::org_id(m.organization_id), None),
            };
            let roles = wire::role_book(context.roles);
            (clerk_type, wire::membership(m, organization, &user, &roles))
        }
        (EventObject::Organization(o), t) => match t {
            EventType::OrganizationCreated => ("organization.created", wire::organization(o, None)),
            EventType::OrganizationUpdated => ("organization.updated", wire::organization(o, None)),
            EventType::OrganizationDeleted => (
                "organization.deleted",
                wire::deleted("organization", wire::org_id(o.id), None),
            ),
            _ => return None,
        },
        (EventObject::User(u), t) => match t {
            EventType::UserCreated => ("user.created", wire::user(u)),
            EventType::UserUpdated => ("user.updated", wire::user(u)),
            EventType::UserDeleted => (
                "user.deleted",
                wire::deleted("user", wire::user_id(u.id), None),
            ),
            _ => return None,
        },
        (EventObject::IdentityMembership(_), _) => return None,
    };
    let body: Value = json!({
        "data": data,
        "object": "event",
        "type": clerk_type,
        "timestamp": event.created_at.millis(),
        "instance_id": INSTANCE_ID,
    });
    Some(body.to_string())
}
