//! `Idempotency-Key` on every native `POST`, `PATCH` and `DELETE` (the IETF httpapi draft,
//! as Stripe serves it). The first request with a key runs with its change's commit held; its
//! answer is stored in that transaction, and both commit together
//! (`roster_core::service::Earlier`). A repeat by the same caller gets the stored answer with
//! `Idempotent-Replayed: true` and runs nothing; the key used for a different request is 422
//! `idempotency_key_reused`; while the first still runs, 409 `idempotency_key_in_use`.
//!
//! A request that changed nothing (refused, failed, a dry run) keeps nothing, so its repeat runs
//! again. An answer holding a secret shown once (`ShownOnce`) is kept with those fields null.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use roster_core::idempotency::{IdempotencyKey, IdempotentRequest, StoredResponse};
use roster_core::service::Earlier;
use roster_http::AppState;

use crate::error::ApiError;

/// The request header naming the key.
pub const KEY_HEADER: &str = "Idempotency-Key";

/// The answer header saying that the answer is a stored one.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The top-level fields of an answer that hold a secret shown once, set as a response
/// extension by the handler: the stored answer has them `null` (a secret is never kept), and a
/// replay says so.
#[derive(Clone, Copy, Debug)]
pub struct ShownOnce(pub &'static [&'static str]);

/// Middleware (a route layer, so that the route is known): runs a keyed `POST`, `PATCH` or
/// `DELETE` idempotently; anything else as it is. Its state is shared behind one `Arc`, so
/// that a request without a key pays one reference count, not a copy of `AppState`'s.
pub async fn layer(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PATCH | Method::DELETE) {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(KEY_HEADER).map(|v| v.as_bytes().to_vec()) else {
        return next.run(req).await;
    };
    keyed(&s, &raw, req, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn keyed(s: &AppState, raw: &[u8], req: Request, next: Next) -> Result<Response, ApiError> {
    let key = IdempotencyKey::parse(KEY_HEADER, raw)?;
    let credentials = roster_http::auth::credentials(req.headers());
    roster_http::auth_limit::check(s, req.extensions(), &credentials)?;
    let actor = roster_core::auth::authenticate(s.roster.store(), credentials).await?;
    let limit = if req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| p.as_str() == crate::BULK_REMOVE_ROUTE)
    {
        roster_http::MAX_BULK_BODY_BYTES
    } else {
        roster_http::MAX_BODY_BYTES
    };
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| roster_http::extract::body_error(&e, limit))?;
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
    let request = IdempotentRequest::new(&actor, key, parts.method.as_str(), &path, &body);
    let claim = match s.roster.earlier(request).await? {
        Earlier::Nothing(claim) => claim,
        earlier => return Ok(answer(earlier)),
    };
    let req = Request::from_parts(parts, Body::from(body));
    let (response, held) = s.roster.run_holding_commit(&claim, next.run(req)).await;
    let Some(held) = held else {
        // Nothing committed: nothing to keep.
        return Ok(response);
    };
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| {
        roster_core::CoreError::internal(format!("the answer could not be kept: {e}"))
    })?;
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        body: match parts.extensions.get::<ShownOnce>() {
            Some(shown_once) => without_secrets(&body, shown_once.0)?,
            None => body.to_vec(),
        },
    };
    Ok(
        match s.roster.commit_with_answer(claim, held, stored).await? {
            None => Response::from_parts(parts, Body::from(body)),
            Some(earlier) => answer(earlier),
        },
    )
}

/// `body` (a JSON object) with each of `fields` null.
fn without_secrets(body: &[u8], fields: &[&str]) -> Result<Vec<u8>, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        roster_core::CoreError::internal(format!("an answer with a secret is not JSON: {e}"))
    })?;
    if let Some(object) = value.as_object_mut() {
        for field in fields {
            if let Some(v) = object.get_mut(*field) {
                *v = serde_json::Value::Null;
            }
        }
    }
    Ok(value.to_string().into_bytes())
}

/// The answer to a request whose key was used before.
fn answer(earlier: Earlier) -> Response {
    match earlier {
        Earlier::Answered(stored) => {
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let empty = stored.body.is_empty();
            let mut response = Response::new(Body::from(stored.body));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            if !empty {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            response
        }
        Earlier::Reused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request (method, path or body); \
             use a new key for a new request",
        )
        .into_response(),
        Earlier::Nothing(_) | Earlier::Running => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still running; repeat it once that one \
             has answered",
        )
        .into_response(),
    }
}
