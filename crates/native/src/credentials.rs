//! Organization service tokens and member-owned passwords.

use crate::idempotency::ShownOnce;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use roster_core::service::NewServiceToken;

use super::error::ApiError;
use super::extract::{Auth, Body, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/service-tokens", tag = "tokens",
    params(("organization_id" = String, Path), PageQuery), responses((status = 200, body = List<TokenOut>), Errors))]
pub async fn list_service_tokens(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<TokenOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster
            .list_service_tokens(&a, parse(&org)?, q.page()?)
            .await?,
        Into::into,
    )))
}

/// Creates a service token with explicit permissions; the secret is in this response only.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/service-tokens", tag = "tokens",
    params(("organization_id" = String, Path)), request_body = CreateServiceToken,
    responses((status = 201, body = CreatedTokenOut), Errors))]
pub async fn create_service_token(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Body(b): Body<CreateServiceToken>,
) -> Result<(StatusCode, Extension<ShownOnce>, Json<CreatedTokenOut>), ApiError> {
    let input = NewServiceToken {
        name: b.name,
        permissions: b.permissions,
        ttl_seconds: b.ttl,
    };
    Ok((
        StatusCode::CREATED,
        Extension(CreatedTokenOut::SHOWN_ONCE),
        Json(
            s.roster
                .create_service_token(&a, parse(&org)?, input, &context())
                .await?
                .into(),
        ),
    ))
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/service-tokens/{token_id}", tag = "tokens",
    params(("organization_id" = String, Path), ("token_id" = String, Path)), responses((status = 200, body = TokenOut), Errors))]
pub async fn get_service_token(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<TokenOut>, ApiError> {
    Ok(Json(
        s.roster
            .service_token(&a, parse(&org)?, parse(&id)?)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/service-tokens/{token_id}", tag = "tokens",
    params(("organization_id" = String, Path), ("token_id" = String, Path)), responses((status = 200, body = TokenOut), Errors))]
pub async fn delete_service_token(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<TokenOut>, ApiError> {
    Ok(Json(
        s.roster
            .delete_service_token(&a, parse(&org)?, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/passwords", tag = "passwords",
    params(("organization_id" = String, Path), PageQuery), responses((status = 200, body = List<PasswordOut>), Errors))]
pub async fn list_passwords(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<PasswordOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster.list_passwords(&a, parse(&org)?, q.page()?).await?,
        Into::into,
    )))
}

/// Creates a password owned by a member; the plain text is in this response only.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/passwords", tag = "passwords",
    params(("organization_id" = String, Path)), request_body = CreatePassword,
    responses((status = 201, body = CreatedPasswordOut), Errors))]
pub async fn create_password(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Body(b): Body<CreatePassword>,
) -> Result<(StatusCode, Extension<ShownOnce>, Json<CreatedPasswordOut>), ApiError> {
    let owner = b.user_id.as_deref().map(parse).transpose()?;
    let created = s
        .roster
        .create_password(&a, parse(&org)?, &b.name, owner, &context())
        .await?;
    let plain_text = created.secret.expose().to_owned();
    Ok((
        StatusCode::CREATED,
        Extension(CreatedPasswordOut::SHOWN_ONCE),
        Json(CreatedPasswordOut {
            password: created.password.into(),
            plain_text,
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/passwords/{password_id}", tag = "passwords",
    params(("organization_id" = String, Path), ("password_id" = String, Path)), responses((status = 200, body = PasswordOut), Errors))]
pub async fn delete_password(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<PasswordOut>, ApiError> {
    Ok(Json(
        s.roster
            .delete_password(&a, parse(&org)?, parse(&id)?, &context())
            .await?
            .into(),
    ))
}
