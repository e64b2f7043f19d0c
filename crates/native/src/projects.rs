//! Projects, their user memberships and their machine-identity memberships.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::service::{NewProject, ProjectPatch};

use super::error::ApiError;
use super::extract::{Auth, Body, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/projects", tag = "projects",
    params(("organization_id" = String, Path), PageQuery), responses((status = 200, body = List<ProjectOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<ProjectOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster.list_projects(&a, parse(&org)?, q.page()?).await?,
        Into::into,
    )))
}

#[utoipa::path(post, path = "/v1/organizations/{organization_id}/projects", tag = "projects",
    params(("organization_id" = String, Path)), request_body = CreateProject, responses((status = 201, body = ProjectOut), Errors))]
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Body(b): Body<CreateProject>,
) -> Result<(StatusCode, Json<ProjectOut>), ApiError> {
    let p = s
        .roster
        .create_project(
            &a,
            parse(&org)?,
            NewProject {
                name: b.name,
                slug: b.slug,
                external_id: None,
            },
            &context(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

#[utoipa::path(get, path = "/v1/projects/{project_id}", tag = "projects", params(("project_id" = String, Path)),
    responses((status = 200, body = ProjectOut), Errors))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<ProjectOut>, ApiError> {
    Ok(Json(s.roster.project(&a, parse(&id)?).await?.into()))
}

#[utoipa::path(patch, path = "/v1/projects/{project_id}", tag = "projects", params(("project_id" = String, Path)),
    request_body = UpdateProject, responses((status = 200, body = ProjectOut), Errors))]
pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Body(b): Body<UpdateProject>,
) -> Result<Json<ProjectOut>, ApiError> {
    Ok(Json(
        s.roster
            .update_project(&a, parse(&id)?, ProjectPatch { name: b.name }, &context())
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/v1/projects/{project_id}", tag = "projects", params(("project_id" = String, Path)),
    responses((status = 200, body = ProjectOut), Errors))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<ProjectOut>, ApiError> {
    Ok(Json(
        s.roster
            .delete_project(&a, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/v1/projects/{project_id}/memberships", tag = "projects",
    params(("project_id" = String, Path), PageQuery), responses((status = 200, body = List<ProjectMembershipOut>), Errors))]
pub async fn list_members(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<ProjectMembershipOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster
            .list_project_members(&a, parse(&id)?, q.page()?)
            .await?,
        Into::into,
    )))
}

#[utoipa::path(post, path = "/v1/projects/{project_id}/memberships", tag = "projects",
    params(("project_id" = String, Path)), request_body = CreateProjectMembership,
    responses((status = 201, body = ProjectMembershipOut), Errors))]
pub async fn add_member(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Body(b): Body<CreateProjectMembership>,
) -> Result<(StatusCode, Json<ProjectMembershipOut>), ApiError> {
    let m = s
        .roster
        .add_project_member(&a, parse(&id)?, parse(&b.user_id)?, b.role, &context())
        .await?;
    Ok((StatusCode::CREATED, Json(m.into())))
}

#[utoipa::path(delete, path = "/v1/projects/{project_id}/memberships/{project_membership_id}", tag = "projects",
    params(("project_id" = String, Path), ("project_membership_id" = String, Path)),
    responses((status = 200, body = ProjectMembershipOut), Errors))]
pub async fn remove_member(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<ProjectMembershipOut>, ApiError> {
    Ok(Json(
        s.roster
            .remove_project_member(&a, parse(&project)?, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/v1/projects/{project_id}/identity-memberships", tag = "identities",
    params(("project_id" = String, Path), PageQuery), responses((status = 200, body = List<IdentityProjectMembershipOut>), Errors))]
pub async fn list_identities(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<IdentityProjectMembershipOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster
            .list_identity_project_memberships(&a, parse(&id)?, q.page()?)
            .await?,
        Into::into,
    )))
}

#[utoipa::path(post, path = "/v1/projects/{project_id}/identity-memberships", tag = "identities",
    params(("project_id" = String, Path)), request_body = CreateIdentityProjectMembership,
    responses((status = 201, body = IdentityProjectMembershipOut), Errors))]
pub async fn add_identity(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Body(b): Body<CreateIdentityProjectMembership>,
) -> Result<(StatusCode, Json<IdentityProjectMembershipOut>), ApiError> {
    let m = s
        .roster
        .add_identity_to_project(&a, parse(&id)?, parse(&b.identity_id)?, b.role, &context())
        .await?;
    Ok((StatusCode::CREATED, Json(m.into())))
}

#[utoipa::path(get, path = "/v1/projects/{project_id}/identity-memberships/{identity_id}", tag = "identities",
    params(("project_id" = String, Path), ("identity_id" = String, Path)),
    responses((status = 200, body = IdentityProjectMembershipOut), Errors))]
pub async fn get_identity(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((project, identity)): Path<(String, String)>,
) -> Result<Json<IdentityProjectMembershipOut>, ApiError> {
    Ok(Json(
        s.roster
            .identity_project_membership(&a, parse(&project)?, parse(&identity)?)
            .await?
            .into(),
    ))
}

/// Removes a machine identity from the project (only that project membership).
/// Removes a machine identity from the project. `?dry_run=true` answers what it would do
/// (a receipt, as the membership removals give), and does nothing.
#[utoipa::path(delete, path = "/v1/projects/{project_id}/identity-memberships/{identity_id}", tag = "identities",
    params(("project_id" = String, Path), ("identity_id" = String, Path), DryRunQuery),
    responses((status = 200, body = IdentityRemovalOut), Errors))]
pub async fn remove_identity(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((project, identity)): Path<(String, String)>,
    Query(q): Query<DryRunQuery>,
) -> Result<Json<IdentityRemovalOut>, ApiError> {
    let removed = s
        .roster
        .remove_identity_from_project(
            &a,
            parse(&project)?,
            parse(&identity)?,
            q.asked(),
            &context(),
        )
        .await?;
    Ok(Json(if q.asked() {
        IdentityRemovalOut::DryRun(IdentityRemovalReceipt {
            dry_run: true,
            removed: vec![removed.into()],
            cascade: CascadeOut::from(roster_core::model::Cascade::default()),
        })
    } else {
        IdentityRemovalOut::Removed(removed.into())
    }))
}
