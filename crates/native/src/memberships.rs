//! `/v1/organizations/{organization_id}/memberships`: adding, inviting, updating, and removing
//! members (one, many, or oneself).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_core::model::{MemberRef, MembershipFilter, MetadataUpdate, RemovalOptions};
use roster_core::service::{MembershipPatch, NewMembership};

use super::error::ApiError;
use super::extract::{Auth, Body, OptionalBody, Path, Presented, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MembershipQuery {
    /// At most this many items (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only memberships holding this role key.
    pub role: Option<String>,
    /// Only this user's membership.
    pub user_id: Option<String>,
    /// Only the membership of the user with this email address (case-insensitive).
    pub email: Option<String>,
    /// Only members whose email or name contains this text (case-insensitive).
    pub q: Option<String>,
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/memberships", tag = "memberships",
    params(("organization_id" = String, Path), MembershipQuery), responses((status = 200, body = List<MemberOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<MembershipQuery>,
) -> Result<Json<List<MemberOut>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    let filter = MembershipFilter {
        role_keys: q.role.into_iter().collect(),
        user_ids: q
            .user_id
            .as_deref()
            .map(parse)
            .transpose()?
            .into_iter()
            .collect(),
        emails: q.email.into_iter().collect(),
        query: q.q,
        ..Default::default()
    };
    Ok(Json(List::from_paged(
        s.roster
            .list_members(&a, parse(&org)?, &filter, page)
            .await?,
        Into::into,
    )))
}

#[utoipa::path(post, path = "/v1/organizations/{organization_id}/memberships", tag = "memberships",
    params(("organization_id" = String, Path)), request_body = CreateMembership,
    responses((status = 201, body = MembershipOut), Errors))]
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Body(b): Body<CreateMembership>,
) -> Result<(StatusCode, Json<MembershipOut>), ApiError> {
    let input = NewMembership {
        user_id: b.user_id.as_deref().map(parse).transpose()?,
        email: b.email,
        role_key: b
            .role
            .unwrap_or_else(|| roster_core::model::ROLE_MEMBER.to_owned()),
        public_metadata: b.public_metadata.unwrap_or_default(),
        private_metadata: b.private_metadata.unwrap_or_default(),
    };
    let m = s
        .roster
        .add_membership(&a, parse(&org)?, input, &context())
        .await?;
    Ok((StatusCode::CREATED, Json(m.into())))
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/memberships/{membership_id}", tag = "memberships",
    params(("organization_id" = String, Path), ("membership_id" = String, Path)), responses((status = 200, body = MembershipOut), Errors))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<MembershipOut>, ApiError> {
    Ok(Json(
        s.roster
            .membership(&a, parse(&org)?, MemberRef::Membership(parse(&id)?))
            .await?
            .into(),
    ))
}

#[utoipa::path(patch, path = "/v1/organizations/{organization_id}/memberships/{membership_id}", tag = "memberships",
    params(("organization_id" = String, Path), ("membership_id" = String, Path)), request_body = UpdateMembership,
    responses((status = 200, body = MembershipOut), Errors))]
pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<UpdateMembership>,
) -> Result<Json<MembershipOut>, ApiError> {
    let patch = MembershipPatch {
        role_key: b.role,
        is_active: b.is_active,
        public_metadata: b.public_metadata.map(MetadataUpdate::Replace),
        private_metadata: b.private_metadata.map(MetadataUpdate::Replace),
        external_id: None,
        directory_user_name: None,
    };
    let target = MemberRef::Membership(parse(&id)?);
    Ok(Json(
        s.roster
            .update_membership(&a, parse(&org)?, target, patch, &context())
            .await?
            .into(),
    ))
}

/// Removes one membership. The body is optional: `{"delete_passwords": true, …}`.
/// `?dry_run=true` answers what it would do, and does nothing.
#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/memberships/{membership_id}", tag = "memberships",
    params(("organization_id" = String, Path), ("membership_id" = String, Path), DryRunQuery),
    request_body(content = RemoveOptions), responses((status = 200, body = RemovalOut), Errors))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Presented,
    path: Result<Path<(String, String)>, ApiError>,
    query: Result<Query<DryRunQuery>, ApiError>,
    body: Result<OptionalBody<RemoveOptions>, ApiError>,
) -> Result<Json<RemovalOut>, ApiError> {
    let parsed = (|| {
        let (Path((org, id)), Query(q), OptionalBody(b)) = (path?, query?, body?);
        let targets = vec![MemberRef::Membership(parse(&id)?)];
        let options = RemovalOptions {
            delete_passwords: b.delete_passwords,
            delete_service_tokens: b.delete_service_tokens,
        };
        Ok((parse(&org)?, targets, options, q.asked()))
    })();
    let (org, targets, options, dry_run) = caller.checked(&s, parsed).await?;
    let mut request = caller.removal(targets, options);
    request.dry_run = dry_run;
    let removal = s.roster.remove(org, request).await?;
    Ok(Json(RemovalOut::new(removal, dry_run)))
}

/// Removes many memberships at once, all or nothing (at most 100,000 ids). `?dry_run=true`
/// answers what it would do (or the error it would get), and does nothing.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/memberships/bulk-remove", tag = "memberships",
    params(("organization_id" = String, Path), DryRunQuery), request_body = BulkRemove,
    responses((status = 200, body = RemovalOut), Errors))]
pub async fn bulk_remove(
    State(s): State<AppState>,
    caller: Presented,
    path: Result<Path<String>, ApiError>,
    query: Result<Query<DryRunQuery>, ApiError>,
    body: Result<Body<BulkRemove>, ApiError>,
) -> Result<Response, ApiError> {
    let parsed = (|| {
        let (Path(org), Query(q), Body(b)) = (path?, query?, body?);
        if b.membership_ids.is_empty() {
            return Err(roster_core::CoreError::invalid(
                "membership_ids",
                "membership_ids must name at least one membership",
            )
            .into());
        }
        let targets = MemberRef::memberships(b.membership_ids)?;
        let options = RemovalOptions {
            delete_passwords: b.delete_passwords,
            delete_service_tokens: b.delete_service_tokens,
        };
        Ok((parse(&org)?, targets, options, q.asked()))
    })();
    let (org, targets, options, dry_run) = caller.checked(&s, parsed).await?;
    let mut request = caller.removal(targets, options);
    request.dry_run = dry_run;
    let removal = s.roster.remove(org, request).await?;
    Ok(RemovalOut::written_in_parts(removal, dry_run).into_response())
}

#[utoipa::path(post, path = "/v1/organizations/{organization_id}/memberships/{membership_id}/accept", tag = "memberships",
    params(("organization_id" = String, Path), ("membership_id" = String, Path)), responses((status = 200, body = MembershipOut), Errors))]
pub async fn accept(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<MembershipOut>, ApiError> {
    Ok(Json(
        s.roster
            .accept_invitation(&a, parse(&org)?, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

/// The caller leaves the organization (refused for its last active admin; a deactivated
/// member is answered 404, as anyone without standing there). `?dry_run=true` answers what
/// leaving would do, and does nothing.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/leave", tag = "memberships",
    params(("organization_id" = String, Path), DryRunQuery), responses((status = 200, body = RemovalOut), Errors))]
pub async fn leave(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<DryRunQuery>,
) -> Result<Json<RemovalOut>, ApiError> {
    let removal = s
        .roster
        .leave_organization(
            &a,
            parse(&org)?,
            RemovalOptions::default(),
            false,
            q.asked(),
            &context(),
        )
        .await?;
    Ok(Json(RemovalOut::new(removal, q.asked())))
}
