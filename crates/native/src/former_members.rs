//! `/v1/organizations/{organization_id}/former-members`: what removals kept for the retention
//! window, reinstatement under the old membership id, and purging a record at once.

use axum::Json;
use axum::extract::State;
use roster_core::model::{FormerMember, FormerMemberFilter};
use roster_core::service::Reinstatement;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::events::EventActorOut;
use super::extract::{Auth, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

/// A removed member, as the removal left them.
#[derive(Serialize, ToSchema)]
pub struct FormerMemberOut {
    /// The membership as it was; its `id` is the one a reinstatement brings back.
    pub membership: MembershipOut,
    /// Its project memberships, with their roles.
    pub project_memberships: Vec<CascadedProjectMembershipOut>,
    /// Credentials the removal deleted: gone for good, named here only.
    pub passwords_deleted: Vec<String>,
    pub service_tokens_deleted: Vec<String>,
    pub removed_by: EventActorOut,
    pub request_id: Option<String>,
    pub removed_at: String,
    /// When the record is purged (and reinstatement no longer possible).
    pub expires_at: String,
}

impl From<FormerMember> for FormerMemberOut {
    fn from(f: FormerMember) -> Self {
        FormerMemberOut {
            membership: f.membership.into(),
            project_memberships: f
                .project_memberships
                .into_iter()
                .map(|p| CascadedProjectMembershipOut {
                    id: p.id.to_string(),
                    project_id: p.project_id.to_string(),
                    role: p.role,
                })
                .collect(),
            passwords_deleted: f.passwords.iter().map(ToString::to_string).collect(),
            service_tokens_deleted: f.service_tokens.iter().map(ToString::to_string).collect(),
            removed_by: EventActorOut {
                kind: f.removed_by.kind,
                id: f.removed_by.id,
            },
            request_id: f.request_id,
            removed_at: f.removed_at.to_rfc3339(),
            expires_at: f.expires_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReinstatementOut {
    /// The membership, back under its old id.
    pub membership: MembershipOut,
    /// `true` when the role it had no longer exists and it came back as `member`.
    pub role_fell_back: bool,
    /// Its project memberships, in the projects that still exist.
    pub project_memberships: Vec<ProjectMembershipOut>,
}

impl From<Reinstatement> for ReinstatementOut {
    fn from(r: Reinstatement) -> Self {
        ReinstatementOut {
            membership: r.membership.into(),
            role_fell_back: r.role_fell_back,
            project_memberships: r.project_memberships.into_iter().map(Into::into).collect(),
        }
    }
}

/// `?limit=&cursor=&user_id=&email=` of the former members list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormerMemberQuery {
    /// At most this many records (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this user's records.
    pub user_id: Option<String>,
    /// Only the records of this address (the user's, or an invitation's), in any case.
    pub email: Option<String>,
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/former-members", tag = "former members",
    params(("organization_id" = String, Path), FormerMemberQuery),
    responses((status = 200, body = List<FormerMemberOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<FormerMemberQuery>,
) -> Result<Json<List<FormerMemberOut>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    let filter = FormerMemberFilter {
        user_id: q.user_id.as_deref().map(parse).transpose()?,
        email: q.email,
    };
    Ok(Json(List::from_paged(
        s.roster
            .list_former_members(&a, parse(&org)?, &filter, page)
            .await?,
        Into::into,
    )))
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/former-members/{membership_id}", tag = "former members",
    params(("organization_id" = String, Path), ("membership_id" = String, Path)),
    responses((status = 200, body = FormerMemberOut), Errors))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<FormerMemberOut>, ApiError> {
    Ok(Json(
        s.roster
            .former_member(&a, parse(&org)?, parse(&id)?)
            .await?
            .into(),
    ))
}

/// Forgets the record at once: it can no longer be reinstated.
#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/former-members/{membership_id}", tag = "former members",
    params(("organization_id" = String, Path), ("membership_id" = String, Path)),
    responses((status = 200, body = FormerMemberOut), Errors))]
pub async fn purge(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<FormerMemberOut>, ApiError> {
    Ok(Json(
        s.roster
            .purge_former_member(&a, parse(&org)?, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

/// Brings the member back under the old membership id, with their role (or `member`, said in
/// the answer, if it was deleted) and their project memberships in projects that still exist.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/former-members/{membership_id}/reinstate", tag = "former members",
    params(("organization_id" = String, Path), ("membership_id" = String, Path)),
    responses((status = 200, body = ReinstatementOut), Errors))]
pub async fn reinstate(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<ReinstatementOut>, ApiError> {
    Ok(Json(
        s.roster
            .reinstate_former_member(&a, parse(&org)?, parse(&id)?, &context())
            .await?
            .into(),
    ))
}
