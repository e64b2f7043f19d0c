//! Infisical's error envelope: `{"reqId", "statusCode", "message", "error", "details"?}`, with
//! the status codes of the seeds: 400 BadRequest, 401 UnauthorizedError, 403 PermissionDenied,
//! 404 NotFound, 422 ValidationFailure, 500 InternalServerError. `details` appears only where
//! the seed schemas allow it (400 and 403).

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use roster_core::{CoreError, Rule};
use roster_http::extract::Rejection;
use roster_http::request_id;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct InfisicalError {
    status: StatusCode,
    error: &'static str,
    message: String,
    details: Option<Value>,
}

impl InfisicalError {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        InfisicalError {
            status,
            error,
            message: message.into(),
            details: None,
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ValidationFailure",
            message,
        )
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Infisical's CASL wording: permission `members:delete` → ("delete", "member").
fn action_and_subject(permission: &str) -> (&str, String) {
    let (subject, action) = permission.split_once(':').unwrap_or((permission, "access"));
    let subject = match subject {
        "members" => "member".to_owned(),
        "identities" => "identity".to_owned(),
        "projects" => "project".to_owned(),
        other => other.trim_end_matches('s').to_owned(),
    };
    (action, subject)
}

impl From<CoreError> for InfisicalError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { kind, id } => Self::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{} with ID {id} not found", capitalized(kind)),
            ),
            // Infisical's bulk removal names the first id it cannot find; so does this one.
            CoreError::NotFoundAmong { kind, ids, .. } => Self::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{} with ID {} not found", capitalized(kind), ids[0]),
            ),
            CoreError::Conflict { message, .. } => {
                Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
            }
            CoreError::InvalidInput { message, .. } => Self::validation(message),
            CoreError::Unauthenticated(reason) => Self::new(
                StatusCode::UNAUTHORIZED,
                "UnauthorizedError",
                reason.to_string(),
            ),
            CoreError::Forbidden { permission } => {
                let (action, subject) = action_and_subject(permission);
                let mut err = Self::new(
                    StatusCode::FORBIDDEN,
                    "PermissionDenied",
                    format!("You are not allowed to {action} on {subject}"),
                );
                err.details =
                    Some(json!([{"action": action, "subject": subject, "inverted": false}]));
                err
            }
            CoreError::RuleViolated {
                rule, message, id, ..
            } => {
                let message = match rule {
                    Rule::LastAdmin => {
                        "You cannot remove the last admin of an organization".to_owned()
                    }
                    _ => message,
                };
                let mut err = Self::new(StatusCode::BAD_REQUEST, "BadRequest", message);
                err.details = Some(json!({"rule": rule.code(), "id": id}));
                err
            }
            CoreError::Unavailable(cause) => {
                roster_http::log_unavailable(&cause);
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable",
                )
            }
            CoreError::Internal(cause) => {
                roster_http::log_internal_error(&cause);
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "Something went wrong",
                )
            }
        }
    }
}

impl From<Rejection> for InfisicalError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::PayloadTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                r.message(),
            ),
            Rejection::UnsupportedMediaType => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                r.message(),
            ),
            Rejection::BodyTimedOut => {
                Self::new(StatusCode::REQUEST_TIMEOUT, "RequestTimeout", r.message())
            }
            Rejection::TooManyAuthFailures { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RateLimitExceeded",
                r.message(),
            ),
            _ => Self::validation(r.message()),
        }
    }
}

impl IntoResponse for InfisicalError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "reqId": request_id::current(),
            "statusCode": self.status.as_u16(),
            "message": self.message,
            "error": self.error,
        });
        if let Some(d) = self.details {
            body["details"] = d;
        }
        (self.status, Json(body)).into_response()
    }
}

/// Unknown routes, and known routes with a method they do not have.
/// QUIRK(infisical): Fastify answers both with 404 `Route METHOD:/path not found`; we do too, so
/// that clients that read Infisical's 404 see the same thing.
pub async fn route_not_found(method: Method, uri: Uri) -> InfisicalError {
    InfisicalError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Route {method}:{} not found", uri.path()),
    )
}
