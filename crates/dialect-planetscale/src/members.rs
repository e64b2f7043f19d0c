//! `/v1/organizations/{organization}/members[/{id}]`, `{id}` being the user's id.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::RequestContext;
use roster_core::auth::Caller;
use roster_core::ids::UserId;
use roster_core::model::{MemberRef, MembershipFilter, RemovalOptions};
use roster_core::service::{MembershipPatch, OwnMembership, RemovalRequest};
use roster_http::AppState;
use roster_http::request_id::context;
use serde_json::Value;

use crate::error::PlanetScaleError;
use crate::extract::{Auth, Body, OptionalBody, Path, Presented, Query};
use crate::organization;
use crate::wire::*;

/// A member id that is not a user id names nobody: 404, not 422, so that the CLI falls back to
/// looking the member up by email, as it does against PlanetScale.
fn user_id(id: &str) -> Result<UserId, PlanetScaleError> {
    id.parse().map_err(|_| PlanetScaleError::not_found())
}

pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(&a);
    let pages = q.pagination()?;
    let org = organization(&s, &a, &org).await?;
    let filter = MembershipFilter {
        users_only: true,
        query: q.q.clone(),
        ..Default::default()
    };
    let members = s
        .roster
        .list_members(&a, org.id, &filter, pages.core())
        .await
        .map_err(&err)?;
    let total = s
        .roster
        .count_members(&a, org.id, &filter)
        .await
        .map_err(&err)?;
    let data = members.items.into_iter().map(member).collect();
    Ok(Json(pages.envelope(
        data,
        total,
        &format!("/planetscale/v1/organizations/{}/members", org.slug),
    )))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Value>, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(&a);
    let org = organization(&s, &a, &org).await?;
    let view = s
        .roster
        .member(&a, org.id, MemberRef::User(user_id(&id)?))
        .await
        .map_err(&err)?;
    Ok(Json(member(view)))
}

/// Changes a member's role (`member`, `admin`, or a custom role's key). Nobody changes their own.
pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<UpdateRole>,
) -> Result<Json<Value>, PlanetScaleError> {
    let err = PlanetScaleError::for_actor(&a);
    let org = organization(&s, &a, &org).await?;
    let target = MemberRef::User(user_id(&id)?);
    let patch = MembershipPatch {
        role_key: Some(b.role),
        ..Default::default()
    };
    s.roster
        .update_membership(&a, org.id, target, patch, &context())
        .await
        .map_err(&err)?;
    let view = s.roster.member(&a, org.id, target).await.map_err(&err)?;
    Ok(Json(member(view)))
}

/// The seed `remove_organization_member`: 204. Removing yourself is leaving (refused for your
/// only organization, and with credential flags); removing another member needs admin rights.
///
/// It runs as the other mounts' removals do: the token verified and the access checked in the
/// removal's shared transaction, and the slug checked there too
/// (`Roster::remove_in_organization_named`), so the request joins its batch without a read
/// before it. PlanetScale's own rules are the request's (`removal_of`).
pub async fn remove(
    State(s): State<AppState>,
    caller: Presented,
    path: Result<Path<(String, String)>, PlanetScaleError>,
    query: Result<Query<RemovalFlags>, PlanetScaleError>,
    body: Result<OptionalBody<RemovalFlags>, PlanetScaleError>,
) -> Result<StatusCode, PlanetScaleError> {
    let parsed = (|| {
        let (Path((org, id)), Query(query), OptionalBody(body)) = (path?, query?, body?);
        // A false flag is the same as an absent one, in either place.
        let options = RemovalOptions {
            delete_passwords: query.delete_passwords.unwrap_or(false)
                || body.delete_passwords.unwrap_or(false),
            delete_service_tokens: query.delete_service_tokens.unwrap_or(false)
                || body.delete_service_tokens.unwrap_or(false),
        };
        // An id that is no user's names nobody, as a slug naming nothing does: the same 404,
        // after the token is verified.
        Ok((org, user_id(&id)?, options))
    })();
    let (slug, target, options) = caller.checked(&s, parsed).await?;
    let removal = removal_of(caller.0, target, options, context());
    s.roster
        .remove_in_organization_named(&slug, removal)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A removal of `user` with PlanetScale's rules: removing yourself is leaving, refused for your
/// only organization, and a service token lacking an access is told the organization is not
/// there (the table in `error.rs`). roster-bench's direct unit builds the same request.
pub fn removal_of(
    caller: Caller,
    user: UserId,
    options: RemovalOptions,
    ctx: RequestContext,
) -> RemovalRequest {
    let mut request = RemovalRequest::new(caller, vec![MemberRef::User(user)], options, ctx);
    request.own_membership = OwnMembership::Leaves {
        refuse_only_organization: true,
    };
    request.forbidden_to_service_tokens_is_not_found = true;
    request
}
