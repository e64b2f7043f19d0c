//! `/v1/organizations/{organization_id}/events`: the organization's membership events, and how
//! the native API renders one (the same JSON a native-format webhook delivers).

use axum::Json;
use axum::extract::State;
use roster_core::events::{Event, EventFilter, EventObject, EventType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Auth, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;

/// An event, Standard Webhooks style: what happened (`type`), when, and its `data`.
#[derive(Serialize, ToSchema)]
pub struct EventOut {
    /// The event's id: the `webhook-id` of its deliveries, the same on every attempt.
    pub id: String,
    /// `membership.created`, `membership.updated`, `membership.removed`,
    /// `identity_membership.created`, `identity_membership.removed`, `organization.created`,
    /// `organization.updated`, `organization.deleted`, `user.created`, `user.updated` or
    /// `user.deleted`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the change was made (RFC 3339).
    pub timestamp: String,
    pub data: EventDataOut,
}

#[derive(Serialize, ToSchema)]
pub struct EventDataOut {
    /// The object as this API renders it (a membership, an identity's project membership, an
    /// organization or a user): after the change, or as it was before a removal or deletion.
    #[schema(value_type = Value)]
    pub object: EventObjectOut,
    pub organization_id: Option<String>,
    pub actor: EventActorOut,
    /// The id of the request that made the change.
    pub request_id: Option<String>,
    /// For `membership.removed`: what the removal deleted of the member's with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascade: Option<CascadeOut>,
}

/// An event's object, rendered as the API renders it where it lists such objects. Serialized
/// as it is, not through a `serde_json::Value`: each webhook delivery renders one.
#[derive(Serialize)]
#[serde(untagged)]
pub enum EventObjectOut {
    Membership(MembershipOut),
    IdentityMembership(IdentityProjectMembershipOut),
    Organization(OrganizationOut),
    User(UserOut),
}

#[derive(Serialize, ToSchema)]
pub struct EventActorOut {
    /// `user`, `identity`, `service_token`, `admin_key`, or `system` (the command line).
    pub kind: String,
    pub id: Option<String>,
}

impl From<Event> for EventOut {
    fn from(e: Event) -> Self {
        let object = match e.data.object {
            EventObject::Membership(m) => EventObjectOut::Membership(m.into()),
            EventObject::IdentityMembership(m) => EventObjectOut::IdentityMembership(m.into()),
            EventObject::Organization(o) => EventObjectOut::Organization(o.into()),
            EventObject::User(u) => EventObjectOut::User(u.into()),
        };
        EventOut {
            id: e.id.to_string(),
            event_type: e.event_type.key().to_owned(),
            timestamp: e.created_at.to_rfc3339(),
            data: EventDataOut {
                object,
                organization_id: e.organization_id.map(|o| o.to_string()),
                actor: EventActorOut {
                    kind: e.data.actor.kind,
                    id: e.data.actor.id,
                },
                request_id: e.data.request_id,
                cascade: e.data.cascade.map(Into::into),
            },
        }
    }
}

/// `?limit=&cursor=&order=&type=` of the events list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// At most this many events (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (in the same order).
    pub cursor: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    #[param(inline)]
    pub order: Option<Order>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", inline)]
    pub event_type: Option<EventTypeKey>,
}

/// An event type by its key (`membership.removed`, …): a string that must be one of them.
#[derive(Clone, Copy, Debug)]
pub struct EventTypeKey(pub EventType);

impl<'de> Deserialize<'de> for EventTypeKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        EventType::parse(&key)
            .map(EventTypeKey)
            .ok_or_else(|| serde::de::Error::custom(format!("`{key}` is not an event type")))
    }
}

impl utoipa::PartialSchema for EventTypeKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(EventType::ALL.iter().map(|t| t.key())))
            .into()
    }
}

impl ToSchema for EventTypeKey {}

/// The organization's events, oldest first unless `order=desc`: a consumer that missed
/// deliveries catches up from the last event id it saw (`cursor`).
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/events", tag = "events",
    params(("organization_id" = String, Path), EventQuery),
    responses((status = 200, body = List<EventOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<EventQuery>,
) -> Result<Json<List<EventOut>>, ApiError> {
    let mut page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    page.descending = matches!(q.order, Some(Order::Desc));
    let filter = EventFilter {
        event_type: q.event_type.map(|t| t.0),
    };
    Ok(Json(List::from_paged(
        s.roster
            .list_events(&a, parse(&org)?, &filter, page)
            .await?,
        Into::into,
    )))
}
