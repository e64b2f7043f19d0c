//! Machine identities of an organization, and their tokens.

use crate::idempotency::ShownOnce;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use roster_core::service::{IdentityPatch, NewIdentity};

use super::error::ApiError;
use super::extract::{Auth, Body, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/identities", tag = "identities",
    params(("organization_id" = String, Path), PageQuery), responses((status = 200, body = List<IdentityOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<IdentityOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster
            .list_identities(&a, parse(&org)?, q.page()?)
            .await?,
        Into::into,
    )))
}

#[utoipa::path(post, path = "/v1/organizations/{organization_id}/identities", tag = "identities",
    params(("organization_id" = String, Path)), request_body = CreateIdentity, responses((status = 201, body = IdentityOut), Errors))]
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Body(b): Body<CreateIdentity>,
) -> Result<(StatusCode, Json<IdentityOut>), ApiError> {
    let i = s
        .roster
        .create_identity(
            &a,
            parse(&org)?,
            NewIdentity {
                name: b.name,
                role_key: b.role,
            },
            &context(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(i.into())))
}

#[utoipa::path(get, path = "/v1/identities/{identity_id}", tag = "identities", params(("identity_id" = String, Path)),
    responses((status = 200, body = IdentityOut), Errors))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<IdentityOut>, ApiError> {
    Ok(Json(s.roster.identity(&a, parse(&id)?).await?.into()))
}

#[utoipa::path(patch, path = "/v1/identities/{identity_id}", tag = "identities", params(("identity_id" = String, Path)),
    request_body = UpdateIdentity, responses((status = 200, body = IdentityOut), Errors))]
pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Body(b): Body<UpdateIdentity>,
) -> Result<Json<IdentityOut>, ApiError> {
    let patch = IdentityPatch {
        name: b.name,
        role_key: b.role,
    };
    Ok(Json(
        s.roster
            .update_identity(&a, parse(&id)?, patch, &context())
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/v1/identities/{identity_id}", tag = "identities", params(("identity_id" = String, Path)),
    responses((status = 200, body = IdentityOut), Errors))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<IdentityOut>, ApiError> {
    Ok(Json(
        s.roster
            .delete_identity(&a, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

/// Creates an access token for the identity; the secret is in this response only.
#[utoipa::path(post, path = "/v1/identities/{identity_id}/tokens", tag = "tokens", params(("identity_id" = String, Path)),
    request_body = CreateToken, responses((status = 201, body = CreatedTokenOut), Errors))]
pub async fn create_token(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Body(b): Body<CreateToken>,
) -> Result<(StatusCode, Extension<ShownOnce>, Json<CreatedTokenOut>), ApiError> {
    if b.ttl.is_some() {
        return Err(roster_core::CoreError::invalid(
            "ttl",
            "identity tokens do not expire; omit ttl",
        )
        .into());
    }
    Ok((
        StatusCode::CREATED,
        Extension(CreatedTokenOut::SHOWN_ONCE),
        Json(
            s.roster
                .create_identity_token(&a, parse(&id)?, &b.name, &context())
                .await?
                .into(),
        ),
    ))
}
