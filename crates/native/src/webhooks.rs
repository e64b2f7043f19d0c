//! `/v1/organizations/{organization_id}/webhook-endpoints`: where an organization's events are
//! sent, the attempts made, and retries. A signing secret is shown in the answers that create
//! or rotate it, and never again.

use crate::idempotency::ShownOnce;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use roster_core::service::{NewWebhookEndpoint, WebhookEndpointPatch};
use roster_core::webhooks::{DeliveryAttempt, WebhookEndpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::events::EventTypeKey;
use super::extract::{Auth, Body, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

#[derive(Serialize, ToSchema)]
pub struct WebhookEndpointOut {
    pub id: String,
    pub organization_id: String,
    pub url: String,
    pub description: Option<String>,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    /// `native` (Standard Webhooks) or `clerk` (Clerk's shapes and Svix headers).
    pub format: &'static str,
    /// `whsec_…`: only in the answers that create or rotate it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub disabled: bool,
    /// Why roster disabled it (every delivery failing for 5 days), when it did.
    pub disabled_reason: Option<String>,
    /// Since when every delivery to it has failed.
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl WebhookEndpointOut {
    /// The field a replayed answer has null (`crate::idempotency`).
    const SHOWN_ONCE: ShownOnce = ShownOnce(&["secret"]);

    fn without_secret(e: WebhookEndpoint) -> Self {
        WebhookEndpointOut {
            id: e.id.to_string(),
            organization_id: e.organization_id.to_string(),
            url: e.url,
            description: e.description,
            events: e.event_types.iter().map(|t| t.key().to_owned()).collect(),
            format: e.format.key(),
            secret: None,
            disabled: e.disabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since.map(|t| t.to_rfc3339()),
            created_at: e.created_at.to_rfc3339(),
            updated_at: e.updated_at.to_rfc3339(),
        }
    }

    fn with_secret(e: WebhookEndpoint) -> Self {
        let secret = e.secret.clone();
        WebhookEndpointOut {
            secret: Some(secret),
            ..Self::without_secret(e)
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// An http(s) URL; loopback, private, link-local and metadata addresses are refused unless
    /// the operator allows them.
    pub url: String,
    /// The event types to send; absent or empty: every type.
    pub events: Option<Vec<EventTypeKey>>,
    /// `native` (the default) or `clerk`.
    pub format: Option<String>,
    pub description: Option<String>,
}

/// A field given as `null` is cleared; an absent field is left as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpoint {
    pub url: Option<String>,
    pub events: Option<Vec<EventTypeKey>>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// `true` stops deliveries (they wait); `false` starts them again and forgets past failures.
    pub disabled: Option<bool>,
}

fn keys(types: Option<Vec<EventTypeKey>>) -> Option<Vec<String>> {
    types.map(|ts| ts.into_iter().map(|t| t.0.key().to_owned()).collect())
}

/// One attempt to deliver an event to the endpoint.
#[derive(Serialize, ToSchema)]
pub struct DeliveryAttemptOut {
    pub id: String,
    /// The delivery it was for: the id of the event delivered (a delivery is one event to one
    /// endpoint), which `…/deliveries/{delivery_id}/retry` takes.
    pub delivery_id: String,
    pub event_id: String,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why there was no answer (address refused, timeout, connection error).
    pub error: Option<String>,
    pub duration_ms: i64,
    pub created_at: String,
    /// The delivery's state now: `pending` (to be tried again), `succeeded` or `failed`.
    pub delivery_state: &'static str,
}

impl From<DeliveryAttempt> for DeliveryAttemptOut {
    fn from(a: DeliveryAttempt) -> Self {
        DeliveryAttemptOut {
            id: a.id.to_string(),
            delivery_id: a.event_id.to_string(),
            event_id: a.event_id.to_string(),
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
            created_at: a.created_at.to_rfc3339(),
            delivery_state: a.delivery_state.key(),
        }
    }
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/webhook-endpoints", tag = "webhooks",
    params(("organization_id" = String, Path), PageQuery),
    responses((status = 200, body = List<WebhookEndpointOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<WebhookEndpointOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster
            .list_webhook_endpoints(&a, parse(&org)?, q.page()?)
            .await?,
        WebhookEndpointOut::without_secret,
    )))
}

/// Creates an endpoint; its signing secret is in this answer only.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/webhook-endpoints", tag = "webhooks",
    params(("organization_id" = String, Path)), request_body = CreateWebhookEndpoint,
    responses((status = 201, body = WebhookEndpointOut), Errors))]
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Body(b): Body<CreateWebhookEndpoint>,
) -> Result<(StatusCode, Extension<ShownOnce>, Json<WebhookEndpointOut>), ApiError> {
    let input = NewWebhookEndpoint {
        url: b.url,
        event_types: keys(b.events),
        format: b.format,
        description: b.description,
    };
    let created = s
        .roster
        .create_webhook_endpoint(&a, parse(&org)?, input, &context())
        .await?;
    Ok((
        StatusCode::CREATED,
        Extension(WebhookEndpointOut::SHOWN_ONCE),
        Json(WebhookEndpointOut::with_secret(created)),
    ))
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("organization_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookEndpointOut), Errors))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<WebhookEndpointOut>, ApiError> {
    let e = s
        .roster
        .webhook_endpoint(&a, parse(&org)?, parse(&id)?)
        .await?;
    Ok(Json(WebhookEndpointOut::without_secret(e)))
}

#[utoipa::path(patch, path = "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("organization_id" = String, Path), ("endpoint_id" = String, Path)),
    request_body = UpdateWebhookEndpoint, responses((status = 200, body = WebhookEndpointOut), Errors))]
pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<UpdateWebhookEndpoint>,
) -> Result<Json<WebhookEndpointOut>, ApiError> {
    let patch = WebhookEndpointPatch {
        url: b.url,
        event_types: keys(b.events),
        description: b.description,
        disabled: b.disabled,
    };
    let e = s
        .roster
        .update_webhook_endpoint(&a, parse(&org)?, parse(&id)?, patch, &context())
        .await?;
    Ok(Json(WebhookEndpointOut::without_secret(e)))
}

/// Deletes the endpoint and the deliveries still pending to it; its history (attempts, finished
/// deliveries) goes with its events at the retention purge.
#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("organization_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookEndpointOut), Errors))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<WebhookEndpointOut>, ApiError> {
    let e = s
        .roster
        .delete_webhook_endpoint(&a, parse(&org)?, parse(&id)?, &context())
        .await?;
    Ok(Json(WebhookEndpointOut::without_secret(e)))
}

/// A new signing secret, in this answer only; the old one stops signing at once.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(("organization_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookEndpointOut), Errors))]
pub async fn rotate_secret(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<(Extension<ShownOnce>, Json<WebhookEndpointOut>), ApiError> {
    let e = s
        .roster
        .rotate_webhook_secret(&a, parse(&org)?, parse(&id)?, &context())
        .await?;
    Ok((
        Extension(WebhookEndpointOut::SHOWN_ONCE),
        Json(WebhookEndpointOut::with_secret(e)),
    ))
}

/// The endpoint's delivery attempts, oldest first unless `order=desc`.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/deliveries", tag = "webhooks",
    params(("organization_id" = String, Path), ("endpoint_id" = String, Path), OrderedPageQuery),
    responses((status = 200, body = List<DeliveryAttemptOut>), Errors))]
pub async fn deliveries(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<OrderedPageQuery>,
) -> Result<Json<List<DeliveryAttemptOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster
            .list_webhook_attempts(&a, parse(&org)?, parse(&id)?, q.page()?)
            .await?,
        Into::into,
    )))
}

/// Sends the delivery again now, whatever came of it so far (the same event id).
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(("organization_id" = String, Path), ("endpoint_id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = RetryOut), Errors))]
pub async fn retry(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id, delivery)): Path<(String, String, String)>,
) -> Result<(StatusCode, Json<RetryOut>), ApiError> {
    let event: roster_core::ids::EventId = parse(&delivery)?;
    s.roster
        .retry_webhook_delivery(&a, parse(&org)?, parse(&id)?, event, &context())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RetryOut {
            delivery_id: event.to_string(),
            delivery_state: "pending",
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct RetryOut {
    pub delivery_id: String,
    pub delivery_state: &'static str,
}
