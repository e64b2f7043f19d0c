//! PlanetScale's error envelope, `{"code", "message"}`, for every failure of this mount.
//!
//! | case | status | code |
//! |---|---|---|
//! | no or bad credentials | 401 | `unauthorized` |
//! | a service token without the access; an organization or member the caller cannot see | 404 | `not_found` |
//! | a user without the permission (not an admin) | 403 | `unauthorized` |
//! | last admin, only organization, own role | 403 | `unauthorized` |
//! | malformed input, unknown role, delete flags on a self-removal | 422 | `unprocessable` |
//! | internal fault | 500 | `internal_server_error` |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_core::{Actor, CoreError, Principal, Rule};
use roster_http::extract::Rejection;
use serde_json::json;

#[derive(Debug)]
pub struct PlanetScaleError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl PlanetScaleError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        PlanetScaleError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not Found")
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }

    /// The core's error as this caller sees it: PlanetScale answers a service token that lacks
    /// an access with 404, as if the thing were not there; a user who lacks a permission gets 403.
    pub fn for_actor(actor: &Actor) -> impl Fn(CoreError) -> PlanetScaleError + '_ {
        move |e| match e {
            CoreError::Forbidden { .. }
                if matches!(actor.principal, Principal::ServiceToken { .. }) =>
            {
                Self::not_found()
            }
            other => other.into(),
        }
    }
}

impl From<CoreError> for PlanetScaleError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { .. } | CoreError::NotFoundAmong { .. } => Self::not_found(),
            CoreError::Conflict { message, .. } => Self::unprocessable(message),
            CoreError::InvalidInput { message, .. } => Self::unprocessable(message),
            CoreError::Unauthenticated(reason) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", reason.to_string())
            }
            CoreError::Forbidden { permission } => Self::new(
                StatusCode::FORBIDDEN,
                "unauthorized",
                format!("You are not allowed to do this: it needs the permission `{permission}`"),
            ),
            CoreError::RuleViolated { rule, message, .. } => {
                let forbidden = |m: &str| Self::new(StatusCode::FORBIDDEN, "unauthorized", m);
                match rule {
                    Rule::LastAdmin => forbidden("Cannot remove the last admin of an organization"),
                    Rule::OnlyOrganization => forbidden("Cannot leave your only organization"),
                    Rule::OwnMembershipChange => forbidden("Cannot change your own role"),
                    Rule::MembershipQuota => forbidden(&message),
                    _ => Self::unprocessable(message),
                }
            }
            CoreError::Unavailable(cause) => {
                roster_http::log_unavailable(&cause);
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "Service Unavailable",
                )
            }
            CoreError::Internal(cause) => {
                roster_http::log_internal_error(&cause);
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_server_error",
                    "Internal Server Error",
                )
            }
        }
    }
}

impl From<Rejection> for PlanetScaleError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::PayloadTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                r.message(),
            ),
            Rejection::UnsupportedMediaType => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                r.message(),
            ),
            Rejection::BodyTimedOut => {
                Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", r.message())
            }
            Rejection::TooManyAuthFailures { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", r.message())
            }
            _ => Self::unprocessable(r.message()),
        }
    }
}

impl IntoResponse for PlanetScaleError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

/// Unknown routes and wrong methods: PlanetScale's routing answers both with a 404.
pub async fn route_not_found() -> PlanetScaleError {
    PlanetScaleError::not_found()
}
