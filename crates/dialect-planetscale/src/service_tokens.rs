//! `/v1/organizations/{organization}/service-tokens[/{id}[/access]]`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::PermissionSet;
use roster_core::ids::TokenId;
use roster_core::service::NewServiceToken;
use roster_http::AppState;
use roster_http::request_id::context;
use serde_json::Value;

use crate::error::PlanetScaleError;
use crate::extract::{Auth, Body, OptionalBody, Path, Query};
use crate::organization;
use crate::wire::*;

fn token_id(id: &str) -> Result<TokenId, PlanetScaleError> {
    id.parse().map_err(|_| PlanetScaleError::not_found())
}

pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(&a);
    if q.q.is_some() {
        return Err(PlanetScaleError::unprocessable(
            "q is not a parameter of this list",
        ));
    }
    let pages = q.pagination()?;
    let org = organization(&s, &a, &org).await?;
    let tokens = s
        .roster
        .list_service_tokens(&a, org.id, pages.core())
        .await
        .map_err(&err)?;
    let total = s
        .roster
        .count_service_tokens(&a, org.id)
        .await
        .map_err(&err)?;
    let data = tokens
        .items
        .iter()
        .map(|t| service_token(t, &org, None))
        .collect();
    Ok(Json(pages.envelope(
        data,
        total,
        &format!("/planetscale/v1/organizations/{}/service-tokens", org.slug),
    )))
}

/// Creates a service token with no access yet (grant them with `POST …/access`); the plain
/// token is in this response only.
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    OptionalBody(b): OptionalBody<CreateServiceToken>,
) -> Result<Json<Value>, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(&a);
    let org = organization(&s, &a, &org).await?;
    let input = NewServiceToken {
        name: b.name,
        permissions: Vec::new(),
        ttl_seconds: b.ttl,
    };
    let created = s
        .roster
        .create_service_token(&a, org.id, input, &context())
        .await
        .map_err(&err)?;
    let plain = created.secret.expose().to_owned();
    Ok(Json(service_token(&created.token, &org, Some(plain))))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Value>, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(&a);
    let org = organization(&s, &a, &org).await?;
    let t = s
        .roster
        .service_token(&a, org.id, token_id(&id)?)
        .await
        .map_err(&err)?;
    Ok(Json(service_token(&t, &org, None)))
}

pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(&a);
    let org = organization(&s, &a, &org).await?;
    s.roster
        .delete_service_token(&a, org.id, token_id(&id)?, &context())
        .await
        .map_err(&err)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_access(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Value>, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(&a);
    let org = organization(&s, &a, &org).await?;
    let t = s
        .roster
        .service_token(&a, org.id, token_id(&id)?)
        .await
        .map_err(&err)?;
    Ok(Json(access_list(&t, &org)))
}

async fn change_access(
    s: &AppState,
    a: &roster_core::Actor,
    org: &str,
    id: &str,
    change: AccessChange,
    grant: bool,
) -> Result<Json<Value>, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(a);
    if change.database.as_deref().is_some_and(|d| !d.is_empty()) {
        return Err(PlanetScaleError::unprocessable(
            "database-level accesses are not supported; use organization accesses",
        ));
    }
    let changed = permissions_of(&change.access)?;
    let org = organization(s, a, org).await?;
    let id = token_id(id)?;
    let current = s
        .roster
        .service_token(a, org.id, id)
        .await
        .map_err(&err)?
        .permissions;
    let next = if grant {
        PermissionSet::from_iter(current.iter().chain(changed.iter()))
    } else {
        PermissionSet::from_iter(current.iter().filter(|p| !changed.contains(*p)))
    };
    let t = s
        .roster
        .set_service_token_permissions(a, org.id, id, next, &context())
        .await
        .map_err(&err)?;
    Ok(Json(access_list(&t, &org)))
}

/// Grants organization accesses (`{"database": "", "access": ["read_organization", …]}`).
pub async fn add_access(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<AccessChange>,
) -> Result<Json<Value>, PlanetScaleError> {
    change_access(&s, &a, &org, &id, b, true).await
}

/// Revokes accesses; the same JSON body, on a DELETE (as the official clients send it).
pub async fn remove_access(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<AccessChange>,
) -> Result<Json<Value>, PlanetScaleError> {
    change_access(&s, &a, &org, &id, b, false).await
}
