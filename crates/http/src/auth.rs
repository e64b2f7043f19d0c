//! Reading credentials off a request. The header forms are shared by every mount:
//! `Authorization: Bearer <token>` and PlanetScale's `Authorization: <token id>:<secret>`.
//! Whether they authenticate is the core's business (`roster_core::auth`).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use roster_core::secrets::PresentedToken;

/// The token presented in the `Authorization` header, if it is in a form we read.
pub fn presented_token(headers: &HeaderMap) -> Option<PresentedToken> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some((scheme, token)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return PresentedToken::parse_bearer(token.trim());
    }
    PresentedToken::parse_pair(value)
}
