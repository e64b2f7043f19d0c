//! `/v1/admin-keys`: the instance admin keys, listed and revoked by an instance admin. None is
//! minted over HTTP: `roster admin-key` on the server does that.

use axum::Json;
use axum::extract::State;

use super::error::ApiError;
use super::extract::{Auth, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

/// The instance admin keys (never their secrets).
#[utoipa::path(get, path = "/v1/admin-keys", tag = "admin keys", params(PageQuery),
    responses((status = 200, body = List<TokenOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<TokenOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster.list_admin_keys(Some(&a), q.page()?).await?,
        Into::into,
    )))
}

/// Revokes an instance admin key at once; requests with it fail from then on.
#[utoipa::path(delete, path = "/v1/admin-keys/{token_id}", tag = "admin keys",
    params(("token_id" = String, Path)), responses((status = 200, body = TokenOut), Errors))]
pub async fn revoke(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<TokenOut>, ApiError> {
    Ok(Json(
        s.roster
            .revoke_admin_key(Some(&a), parse(&id)?, &context())
            .await?
            .into(),
    ))
}
