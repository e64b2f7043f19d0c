//! The native error envelope: `{"error": {"code", "message", "request_id", "details"?}}`.
//! Every failure of the native API, framework rejections included, is rendered here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_core::CoreError;
use serde_json::{Value, json};

use roster_http::extract::Rejection;
use roster_http::request_id;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { kind, id } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{kind} {id} not found"),
            )
            .with_details(json!({"resource": kind, "id": id})),
            CoreError::NotFoundAmong { kind, ids, count } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "{count} of the {kind}s named were not found: {}",
                    ids.join(", ")
                ),
            )
            .with_details(json!({"resource": kind, "id": ids[0], "ids": ids, "count": count})),
            CoreError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            CoreError::InvalidInput { field, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
                    .with_details(json!({"field": field}))
            }
            CoreError::Unauthenticated(reason) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                reason.to_string(),
            ),
            CoreError::Forbidden { permission } => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("missing permission `{permission}`"),
            )
            .with_details(json!({"permission": permission})),
            CoreError::RuleViolated {
                rule,
                message,
                id,
                ids,
            } => {
                let err = ApiError::new(StatusCode::CONFLICT, rule.code(), message);
                match (id, ids.len()) {
                    (Some(id), 0 | 1) => err.with_details(json!({"id": id})),
                    (Some(id), _) => err.with_details(json!({"id": id, "ids": ids})),
                    (None, _) => err,
                }
            }
            CoreError::Unavailable(cause) => {
                roster_http::log_unavailable(&cause);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is unavailable: its database cannot be reached; try again later",
                )
            }
            CoreError::Internal(cause) => {
                // Logged once, here, with its cause; the client sees only the request id.
                roster_http::log_internal_error(&cause);
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; quote the request id when reporting it",
                )
            }
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let status = match r {
            Rejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::BodyTimedOut => StatusCode::REQUEST_TIMEOUT,
            Rejection::TooManyAuthFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        };
        let code = match r {
            Rejection::UnsupportedMediaType => "unsupported_media_type",
            Rejection::PayloadTooLarge { .. } => "payload_too_large",
            Rejection::BodyTimedOut => "request_timeout",
            Rejection::TooManyAuthFailures { .. } => "too_many_requests",
            _ => "invalid_input",
        };
        ApiError::new(status, code, r.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message, "request_id": request_id::current()});
        if let Some(d) = self.details {
            body["details"] = d;
        }
        let mut res = (self.status, Json(json!({"error": body}))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Unknown routes under the native API (and anywhere no mount claims).
pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route for {}", uri.path()),
    )
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
