//! Clerk's error envelope:
//! `{"errors": [{"message", "long_message", "code", "meta"}], "clerk_trace_id"}`, for every
//! failure of this mount, unknown routes and framework rejections included.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_core::{AuthFailure, CoreError, Rule};
use roster_http::extract::Rejection;
use roster_http::request_id;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ClerkError {
    status: StatusCode,
    code: &'static str,
    message: String,
    long_message: String,
    param: Option<String>,
}

impl ClerkError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        long: impl Into<String>,
    ) -> Self {
        ClerkError {
            status,
            code,
            message: message.into(),
            long_message: long.into(),
            param: None,
        }
    }

    fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "not found",
            format!("Given {what} not found."),
        )
    }

    pub fn param_missing(param: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            format!("{param} must be included"),
            format!("{param} must be included"),
        )
        .with_param(param)
    }

    pub fn param_invalid(param: &str, why: impl Into<String>) -> Self {
        let why = why.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            format!("{param} is invalid"),
            why,
        )
        .with_param(param)
    }

    pub fn param_unknown(param: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_unknown",
            format!("{param} is not a valid parameter for this request."),
            format!("{param} is not a valid parameter for this request."),
        )
        .with_param(param)
    }

    pub fn malformed(why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "malformed request",
            why,
        )
    }
}

impl From<CoreError> for ClerkError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { kind, .. } | CoreError::NotFoundAmong { kind, .. } => {
                Self::not_found(kind)
            }
            CoreError::Conflict {
                code: "already_a_member",
                ..
            } => Self::new(
                StatusCode::BAD_REQUEST,
                "already_a_member_in_organization",
                "already a member",
                "User is already a member of the organization.",
            ),
            CoreError::Conflict {
                code: "slug_taken",
                message,
            } => Self::new(
                StatusCode::BAD_REQUEST,
                "form_identifier_exists",
                "slug taken",
                message,
            )
            .with_param("slug"),
            CoreError::Conflict {
                code: "email_taken",
                message,
            } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_identifier_exists",
                "email taken",
                message,
            )
            .with_param("email_address"),
            CoreError::Conflict { message, .. } => {
                Self::new(StatusCode::BAD_REQUEST, "conflict", "conflict", message)
            }
            CoreError::InvalidInput { field, message } => Self::param_invalid(&field, message),
            CoreError::Unauthenticated(AuthFailure::Missing) => Self::new(
                StatusCode::UNAUTHORIZED,
                "authorization_header_format_invalid",
                "Invalid Authorization header format",
                "Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'",
            ),
            CoreError::Unauthenticated(AuthFailure::Invalid) => Self::new(
                StatusCode::UNAUTHORIZED,
                "clerk_key_invalid",
                "Secret Key invalid",
                "The provided Secret Key is invalid. Make sure that your Secret Key is correct.",
            ),
            CoreError::Forbidden { permission } => Self::new(
                StatusCode::FORBIDDEN,
                "authorization_invalid",
                "Unauthorized request",
                format!("You are not authorized to perform this request: it needs `{permission}`."),
            ),
            CoreError::RuleViolated {
                rule: Rule::LastAdmin,
                ..
            } => Self::new(
                StatusCode::BAD_REQUEST,
                "organization_minimum_permissions_needed",
                "there has to be at least one organization member with the minimum required permissions",
                "There has to be at least one organization member with the minimum required permissions.",
            ),
            CoreError::RuleViolated {
                rule: Rule::MembershipQuota,
                ..
            } => Self::new(
                StatusCode::FORBIDDEN,
                "organization_membership_quota_exceeded",
                "Organization membership quota exceeded",
                "You have reached your limit of organization memberships.",
            ),
            CoreError::RuleViolated { rule, message, .. } => Self::new(
                StatusCode::BAD_REQUEST,
                rule.code(),
                message.clone(),
                message,
            ),
            CoreError::Unavailable(cause) => {
                roster_http::log_unavailable(&cause);
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "Service unavailable",
                    "The service is temporarily unavailable. Please try again later.",
                )
            }
            CoreError::Internal(cause) => {
                roster_http::log_internal_error(&cause);
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_clerk_error",
                    "Oops, an unexpected error occurred",
                    "There was an internal error on our servers. We've been notified and are working on fixing it.",
                )
            }
        }
    }
}

impl From<Rejection> for ClerkError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::PayloadTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_body_too_large",
                "request body too large",
                r.message(),
            ),
            Rejection::BodyTimedOut => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "request timeout",
                r.message(),
            ),
            Rejection::TooManyAuthFailures { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests",
                r.message(),
            ),
            // A path segment that does not parse names nothing.
            Rejection::InvalidPath(_) => Self::not_found("resource"),
            _ => Self::malformed(r.message()),
        }
    }
}

impl IntoResponse for ClerkError {
    fn into_response(self) -> Response {
        let meta = match self.param {
            Some(p) => json!({"param_name": p}),
            None => json!({}),
        };
        let body = json!({
            "errors": [{"message": self.message, "long_message": self.long_message, "code": self.code, "meta": meta}],
            "clerk_trace_id": request_id::current(),
        });
        // axum's Json sets exactly `application/json`, which the SDK compares strictly.
        (self.status, Json::<Value>(body)).into_response()
    }
}

/// Unknown routes and wrong methods.
pub async fn route_not_found() -> ClerkError {
    ClerkError::not_found("resource")
}
