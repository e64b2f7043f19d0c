//! Request parsing shared by every mount, with rejections as data (`Rejection`) so that each
//! mount renders them in its own envelope. Nothing here decides a status code's body.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

/// Why a request could not be parsed.
#[derive(Debug)]
pub enum Rejection {
    /// The body is not JSON of the expected shape (syntax, types, unknown or missing fields).
    InvalidBody(String),
    /// A body was sent without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// Larger than the route's limit, in bytes.
    PayloadTooLarge { limit: usize },
    /// Still arriving when the body timeout (`serve::Timeouts::body_read`) passed: 408.
    BodyTimedOut,
    /// Credentials from an address, or naming a token id, that failed too often lately
    /// (`auth_limit`): 429.
    TooManyAuthFailures { retry_after_secs: u64 },
    /// A path parameter that does not parse.
    InvalidPath(String),
    /// A query string that does not parse.
    InvalidQuery(String),
}

impl Rejection {
    pub fn message(&self) -> String {
        match self {
            Rejection::InvalidBody(m) => format!("invalid request body: {m}"),
            Rejection::UnsupportedMediaType => {
                "the request body must be JSON (Content-Type: application/json)".into()
            }
            Rejection::PayloadTooLarge { limit } => {
                format!(
                    "the request body is larger than the limit of {} MiB ({limit} bytes)",
                    limit / (1024 * 1024)
                )
            }
            Rejection::BodyTimedOut => {
                "the request body did not arrive in time; the connection is closed".into()
            }
            Rejection::TooManyAuthFailures { retry_after_secs } => {
                format!("too many failed authentication attempts; retry after {retry_after_secs} s")
            }
            Rejection::InvalidPath(m) => format!("invalid path: {m}"),
            Rejection::InvalidQuery(m) => format!("invalid query string: {m}"),
        }
    }
}

impl From<PathRejection> for Rejection {
    fn from(r: PathRejection) -> Self {
        Rejection::InvalidPath(r.body_text())
    }
}

impl From<QueryRejection> for Rejection {
    fn from(r: QueryRejection) -> Self {
        Rejection::InvalidQuery(r.body_text())
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// Parses a JSON body. An empty body is read as `{}` when `empty_is_object` (for requests whose
/// fields are all optional; clients send DELETEs with a JSON content type and no body).
pub fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: &[u8],
    empty_is_object: bool,
) -> Result<T, Rejection> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if empty_is_object {
            return serde_json::from_slice(b"{}")
                .map_err(|e| Rejection::InvalidBody(e.to_string()));
        }
        return Err(Rejection::InvalidBody("a JSON body is required".into()));
    }
    if !is_json(headers) {
        return Err(Rejection::UnsupportedMediaType);
    }
    // serde reads a struct from a JSON array too, field by position (`["a@example.com", null]`
    // would create a user): every body is an object, whatever the type behind it.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Rejection::InvalidBody(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Rejection::InvalidBody(without_type_names(&e.to_string())))
}

/// A serde message with the Rust type names it carries ("expected struct CreateUser") said
/// in JSON's terms: the wire contract names fields, never the types behind them.
fn without_type_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = ["struct ", "enum "]
        .iter()
        .filter_map(|k| rest.find(k).map(|i| (i, *k)))
        .min()
    {
        let (i, keyword) = at;
        out.push_str(&rest[..i]);
        let after = &rest[i + keyword.len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        out.push_str(if keyword == "struct " {
            "an object"
        } else {
            "one of the allowed values"
        });
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

/// Reads a request's body as JSON (see `json_body`); both body extractors of `extractors!`.
pub async fn read_json<T: DeserializeOwned>(
    req: axum::extract::Request,
    empty_is_object: bool,
) -> Result<T, Rejection> {
    let (headers, bytes) = read_body(req).await?;
    json_body(&headers, &bytes, empty_is_object)
}

/// Reads a request's body whole, within the route's `DefaultBodyLimit` (as the framework's own
/// extractors apply it), and returns it with the request's headers.
///
/// The body is read into one buffer sized by its `Content-Length`, each part copied as it comes.
/// Collected first (as `Bytes::from_request` does) and then joined, a bulk removal's 3.6 MB of
/// ids were held twice.
pub async fn read_body(req: axum::extract::Request) -> Result<(HeaderMap, Vec<u8>), Rejection> {
    use axum::RequestExt;
    use http_body_util::BodyExt;
    let limit = req
        .extensions()
        .get::<crate::BodyLimit>()
        .map_or(crate::MAX_BODY_BYTES, |l| l.0);
    let (parts, mut body) = req.with_limited_body().into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    // Never more than the largest body any route takes, whatever the header claims; a body
    // shorter than it claims leaves pages of the buffer unwritten, which are never resident.
    let mut bytes = Vec::with_capacity(announced.min(crate::MAX_BULK_BODY_BYTES));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| body_error(&e, limit))?;
        if let Some(data) = frame.data_ref() {
            bytes.extend_from_slice(data);
        }
    }
    Ok((parts.headers, bytes))
}

/// A body that could not be read: over the route's `limit`, too slow, or cut short.
pub fn body_error(e: &axum::Error, limit: usize) -> Rejection {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return Rejection::PayloadTooLarge { limit };
        }
        if c.is::<crate::serve::BodyTimedOut>() {
            return Rejection::BodyTimedOut;
        }
        cause = c.source();
    }
    Rejection::InvalidBody(format!("the body could not be read: {e}"))
}

/// Defines the request extractors of one mount (`Body`, `OptionalBody`, `Path`, `Query`,
/// `Auth`) so that each renders its rejections in that mount's error type, which must be
/// `From<Rejection> + From<CoreError> + IntoResponse`. One definition for every mount: the
/// mounts differ only in how they render a rejection.
#[macro_export]
macro_rules! extractors {
    ($error:ty) => {
        /// A JSON body, parsed into a type whose unknown fields are refused.
        pub struct Body<T>(pub T);

        impl<T: ::serde::de::DeserializeOwned, S: Send + Sync> ::axum::extract::FromRequest<S>
            for Body<T>
        {
            type Rejection = $error;
            async fn from_request(
                req: ::axum::extract::Request,
                _state: &S,
            ) -> Result<Self, $error> {
                Ok(Body($crate::extract::read_json(req, false).await?))
            }
        }

        /// Like `Body`, but a missing body reads as `{}` (every field optional).
        pub struct OptionalBody<T>(pub T);

        impl<T: ::serde::de::DeserializeOwned, S: Send + Sync> ::axum::extract::FromRequest<S>
            for OptionalBody<T>
        {
            type Rejection = $error;
            async fn from_request(
                req: ::axum::extract::Request,
                _state: &S,
            ) -> Result<Self, $error> {
                Ok(OptionalBody($crate::extract::read_json(req, true).await?))
            }
        }

        pub struct Path<T>(pub T);

        impl<T: ::serde::de::DeserializeOwned + Send, S: Send + Sync>
            ::axum::extract::FromRequestParts<S> for Path<T>
        {
            type Rejection = $error;
            async fn from_request_parts(
                parts: &mut ::axum::http::request::Parts,
                state: &S,
            ) -> Result<Self, $error> {
                let ::axum::extract::Path(v) =
                    ::axum::extract::Path::<T>::from_request_parts(parts, state)
                        .await
                        .map_err($crate::extract::Rejection::from)?;
                Ok(Path(v))
            }
        }

        pub struct Query<T>(pub T);

        impl<T: ::serde::de::DeserializeOwned, S: Send + Sync> ::axum::extract::FromRequestParts<S>
            for Query<T>
        {
            type Rejection = $error;
            async fn from_request_parts(
                parts: &mut ::axum::http::request::Parts,
                state: &S,
            ) -> Result<Self, $error> {
                let ::axum::extract::Query(v) =
                    ::axum::extract::Query::<T>::from_request_parts(parts, state)
                        .await
                        .map_err($crate::extract::Rejection::from)?;
                Ok(Query(v))
            }
        }

        /// The caller as presented, not yet verified: a removal verifies it inside its own
        /// transaction (`roster_core::auth::Caller`). Missing or unrecognized credentials are
        /// refused here. A handler that answers before the removal runs must go through
        /// `checked`, so that a bad token is still a 401 before any other error.
        pub struct Presented(pub ::roster_core::auth::Caller);

        impl ::axum::extract::FromRequestParts<$crate::AppState> for Presented {
            type Rejection = $error;
            async fn from_request_parts(
                parts: &mut ::axum::http::request::Parts,
                state: &$crate::AppState,
            ) -> Result<Self, $error> {
                let credentials = $crate::auth::credentials(&parts.headers);
                $crate::auth_limit::check(state, &parts.extensions, &credentials)?;
                Ok(Presented(::roster_core::auth::Caller::presenting(
                    credentials,
                )?))
            }
        }

        impl Presented {
            /// `parsed` as it is if it parsed; if not, the caller is verified first, and a
            /// caller that does not authenticate gets the 401 instead.
            pub async fn checked<T>(
                &self,
                state: &$crate::AppState,
                parsed: Result<T, $error>,
            ) -> Result<T, $error> {
                if parsed.is_err() {
                    self.0.authenticate(state.roster.store()).await?;
                }
                parsed
            }

            /// A removal by this caller, its token verified in the removal's transaction.
            pub fn removal(
                self,
                targets: Vec<::roster_core::model::MemberRef>,
                options: ::roster_core::model::RemovalOptions,
            ) -> ::roster_core::service::RemovalRequest {
                ::roster_core::service::RemovalRequest::new(
                    self.0,
                    targets,
                    options,
                    $crate::request_id::context(),
                )
            }
        }

        /// The authenticated caller.
        pub struct Auth(pub ::roster_core::Actor);

        impl ::axum::extract::FromRequestParts<$crate::AppState> for Auth {
            type Rejection = $error;
            async fn from_request_parts(
                parts: &mut ::axum::http::request::Parts,
                state: &$crate::AppState,
            ) -> Result<Self, $error> {
                let credentials = $crate::auth::credentials(&parts.headers);
                $crate::auth_limit::check(state, &parts.extensions, &credentials)?;
                Ok(Auth(
                    ::roster_core::auth::authenticate(state.roster.store(), credentials).await?,
                ))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::body::{Body, Bytes};
    use axum::extract::Request;
    use http_body::Frame;

    use super::*;

    /// A body that arrives in parts, as one sent over a connection does.
    struct InParts(VecDeque<Bytes>);

    impl http_body::Body for InParts {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn request(json: &str, parts: usize) -> Request {
        let size = json.len().div_ceil(parts);
        let chunks = json
            .as_bytes()
            .chunks(size)
            .map(Bytes::copy_from_slice)
            .collect();
        Request::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, json.len())
            .body(Body::new(InParts(chunks)))
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_that_arrives_in_parts_is_read_whole() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("id-{i}")).collect();
        let json = serde_json::json!({ "ids": ids }).to_string();
        let read: serde_json::Value = read_json(request(&json, 7), false).await.unwrap();
        assert_eq!(read["ids"], serde_json::json!(ids));
    }

    #[tokio::test]
    async fn only_a_json_object_is_a_body() {
        #[derive(serde::Deserialize, Debug)]
        #[expect(dead_code, reason = "only parsed")]
        struct CreateThing {
            email: String,
            name: Option<String>,
        }
        for body in [r#"["a@example.com", null]"#, "[]", " 5", r#""text""#] {
            let read = read_json::<CreateThing>(request(body, 1), false).await;
            match read {
                Err(Rejection::InvalidBody(m)) => {
                    assert_eq!(m, "the body must be a JSON object", "{body}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let read = read_json::<CreateThing>(request(r#"{"email": 5}"#, 1), false).await;
        assert!(matches!(read, Err(Rejection::InvalidBody(_))), "{read:?}");
    }

    #[test]
    fn parse_errors_never_name_a_rust_type() {
        assert_eq!(
            without_type_names(
                "invalid type: integer `5`, expected struct RemoveOptions at line 1"
            ),
            "invalid type: integer `5`, expected an object at line 1"
        );
        assert_eq!(
            without_type_names("expected enum Format or struct Kind_2"),
            "expected one of the allowed values or an object"
        );
        assert_eq!(
            without_type_names("missing field `email`"),
            "missing field `email`"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_as_too_large_even_in_parts() {
        // No `DefaultBodyLimit` on the request: the framework's default of 2 MiB applies.
        let json = serde_json::json!({ "x": "x".repeat(3 * 1024 * 1024) }).to_string();
        let read = read_json::<serde_json::Value>(request(&json, 5), false).await;
        assert!(
            matches!(read, Err(Rejection::PayloadTooLarge { .. })),
            "{read:?}"
        );
    }
}
