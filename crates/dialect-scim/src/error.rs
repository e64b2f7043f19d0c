//! SCIM's error envelope (RFC 7644 §3.12), for every failure of this mount, with the content
//! type `application/scim+json`:
//! `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "scimType"?, "detail"}`.
//!
//! | case | status | scimType |
//! |---|---|---|
//! | no or bad credentials | 401 | |
//! | lacking a permission | 403 | |
//! | a resource, an organization or a route the caller cannot see | 404 | |
//! | already a member; a userName or externalId taken | 409 | `uniqueness` |
//! | a rule refused the change (last active admin, own membership) | 409 | |
//! | bad JSON, a body that is not an object | 400 | `invalidSyntax` |
//! | a bad filter | 400 | `invalidFilter` |
//! | a bad value (a role that does not exist, `active: "maybe"`) | 400 | `invalidValue` |
//! | a PATCH path this mount does not know | 400 | `invalidPath` |
//! | an attribute that cannot be changed here (`emails`), `active` or `roles` removed | 400 | `mutability` |
//! | a body over 1 MiB | 413 | |
//! | the database unreachable | 503 | |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_core::CoreError;
use roster_http::extract::Rejection;
use serde_json::json;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn bad_request(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }
}

impl From<CoreError> for ScimError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { .. } | CoreError::NotFoundAmong { .. } => {
                Self::not_found(e.to_string())
            }
            CoreError::Conflict { message, .. } => {
                Self::new(StatusCode::CONFLICT, Some("uniqueness"), message)
            }
            CoreError::InvalidInput { message, .. } => Self::bad_request("invalidValue", message),
            CoreError::Unauthenticated(reason) => {
                Self::new(StatusCode::UNAUTHORIZED, None, reason.to_string())
            }
            CoreError::Forbidden { permission } => Self::new(
                StatusCode::FORBIDDEN,
                None,
                format!("missing permission `{permission}`"),
            ),
            // SCIM has no type for a refusal by a rule: a conflict with the current state.
            CoreError::RuleViolated { message, .. } => {
                Self::new(StatusCode::CONFLICT, None, message)
            }
            CoreError::Unavailable(cause) => {
                roster_http::log_unavailable(&cause);
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "the service is unavailable: its database cannot be reached; try again later",
                )
            }
            CoreError::Internal(cause) => {
                roster_http::log_internal_error(&cause);
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    format!(
                        "internal error; quote the request id {} when reporting it",
                        roster_http::request_id::current()
                    ),
                )
            }
        }
    }
}

impl From<Rejection> for ScimError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::PayloadTooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, None, r.message())
            }
            Rejection::UnsupportedMediaType => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "the request body must be JSON (Content-Type: application/scim+json or application/json)",
            ),
            Rejection::BodyTimedOut => Self::new(StatusCode::REQUEST_TIMEOUT, None, r.message()),
            Rejection::TooManyAuthFailures { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, None, r.message())
            }
            Rejection::InvalidBody(_) => Self::bad_request("invalidSyntax", r.message()),
            Rejection::InvalidPath(_) | Rejection::InvalidQuery(_) => {
                Self::bad_request("invalidValue", r.message())
            }
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut res = crate::scim_json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Unknown routes and wrong methods.
pub async fn route_not_found(uri: axum::http::Uri) -> ScimError {
    ScimError::not_found(format!("no SCIM resource at {}", uri.path()))
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ScimError {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
