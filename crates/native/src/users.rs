//! `/v1/users` and users' own tokens.

use crate::idempotency::ShownOnce;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use roster_core::model::UserFilter;
use roster_core::service::{NewUser, UserPatch};

use super::error::ApiError;
use super::extract::{Auth, Body, OptionalBody, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

#[utoipa::path(get, path = "/v1/users", tag = "users", params(PageQuery), responses((status = 200, body = List<UserOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<UserOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster
            .list_users(&a, &UserFilter::default(), q.page()?)
            .await?,
        Into::into,
    )))
}

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUser, responses((status = 201, body = UserOut), Errors))]
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Body(b): Body<CreateUser>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    let input = NewUser {
        email: b.email,
        first_name: b.first_name,
        last_name: b.last_name,
        username: b.username,
        image_url: b.image_url,
    };
    Ok((
        StatusCode::CREATED,
        Json(
            s.roster
                .create_user(Some(&a), input, &context())
                .await?
                .into(),
        ),
    ))
}

#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "users", params(("user_id" = String, Path)), responses((status = 200, body = UserOut), Errors))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<UserOut>, ApiError> {
    Ok(Json(s.roster.user(&a, parse(&id)?).await?.into()))
}

#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = "users", params(("user_id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = UserOut), Errors))]
pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Body(b): Body<UpdateUser>,
) -> Result<Json<UserOut>, ApiError> {
    let patch = UserPatch {
        first_name: b.first_name,
        last_name: b.last_name,
        username: b.username,
        image_url: b.image_url,
    };
    Ok(Json(
        s.roster
            .update_user(&a, parse(&id)?, patch, &context())
            .await?
            .into(),
    ))
}

/// Deletes a user and their memberships (refused while they are an organization's last admin).
#[utoipa::path(delete, path = "/v1/users/{user_id}", tag = "users", params(("user_id" = String, Path)), responses((status = 200, body = UserOut), Errors))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<UserOut>, ApiError> {
    Ok(Json(
        s.roster
            .delete_user(&a, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

/// Offboards a person from everything at once (instance admins): every membership in every
/// organization, each with its guards and cascade, all or nothing, and every token of the
/// user's own revoked. `?dry_run=true` answers what it would do, and does nothing.
#[utoipa::path(post, path = "/v1/users/{user_id}/offboard", tag = "users",
    params(("user_id" = String, Path), DryRunQuery), request_body(content = RemoveOptions),
    responses((status = 200, body = OffboardingOut), Errors))]
pub async fn offboard(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Query(q): Query<DryRunQuery>,
    OptionalBody(b): OptionalBody<RemoveOptions>,
) -> Result<Json<OffboardingOut>, ApiError> {
    let options = roster_core::model::RemovalOptions {
        delete_passwords: b.delete_passwords,
        delete_service_tokens: b.delete_service_tokens,
    };
    let done = s
        .roster
        .offboard_user(&a, parse(&id)?, options, q.asked(), &context())
        .await?;
    Ok(Json(OffboardingOut::new(done, q.asked())))
}

#[utoipa::path(get, path = "/v1/users/{user_id}/tokens", tag = "tokens", params(("user_id" = String, Path), PageQuery),
    responses((status = 200, body = List<TokenOut>), Errors))]
pub async fn list_tokens(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<TokenOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster
            .list_user_tokens(&a, parse(&id)?, q.page()?)
            .await?,
        Into::into,
    )))
}

/// Creates a token for the user; the secret is in this response only.
#[utoipa::path(post, path = "/v1/users/{user_id}/tokens", tag = "tokens", params(("user_id" = String, Path)), request_body = CreateToken,
    responses((status = 201, body = CreatedTokenOut), Errors))]
pub async fn create_token(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Body(b): Body<CreateToken>,
) -> Result<(StatusCode, Extension<ShownOnce>, Json<CreatedTokenOut>), ApiError> {
    let created = s
        .roster
        .create_user_token(&a, parse(&id)?, &b.name, b.ttl, &context())
        .await?;
    Ok((
        StatusCode::CREATED,
        Extension(CreatedTokenOut::SHOWN_ONCE),
        Json(created.into()),
    ))
}

#[utoipa::path(delete, path = "/v1/users/{user_id}/tokens/{token_id}", tag = "tokens",
    params(("user_id" = String, Path), ("token_id" = String, Path)), responses((status = 200, body = TokenOut), Errors))]
pub async fn delete_token(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<TokenOut>, ApiError> {
    Ok(Json(
        s.roster
            .delete_user_token(&a, parse(&user)?, parse(&id)?, &context())
            .await?
            .into(),
    ))
}
