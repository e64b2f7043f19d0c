//! Reading credentials off a request. The header forms are shared by every mount:
//! `Authorization: Bearer <token>` and PlanetScale's `Authorization: <token id>:<secret>`.
//! Whether they authenticate is the core's business (`roster_core::auth`).

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use roster_core::secrets::{Credentials, PresentedToken};

/// The credentials of the `Authorization` header: a roster token in either form, a bearer key
/// that is not a roster token (unrecognized), or nothing readable (missing).
pub fn credentials(headers: &HeaderMap) -> Credentials {
    credentials_in(headers.get(AUTHORIZATION))
}

/// `credentials`, from the `Authorization` header's value.
pub fn credentials_in(authorization: Option<&HeaderValue>) -> Credentials {
    let Some(value) = authorization.and_then(|v| v.to_str().ok()).map(str::trim) else {
        return Credentials::Missing;
    };
    if let Some((scheme, token)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        let token = token.trim();
        return match PresentedToken::parse_bearer(token) {
            Some(t) => Credentials::Token(t),
            None if token.is_empty() => Credentials::Missing,
            None => Credentials::Unrecognized,
        };
    }
    PresentedToken::parse_pair(value).map_or(Credentials::Missing, Credentials::Token)
}
