//! `/v1/organizations` and their roles and audit events.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::ids::*;
use roster_core::model::MetadataUpdate;
use roster_core::service::{NewOrganization, NewRole, OrganizationPatch, RolePatch};

use super::error::ApiError;
use super::extract::{Auth, Body, Path, Query};
use super::wire::*;
use super::{Errors, parse};
use roster_http::AppState;
use roster_http::request_id::context;

#[utoipa::path(get, path = "/v1/organizations", tag = "organizations", params(PageQuery),
    responses((status = 200, body = List<OrganizationOut>), Errors))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<OrganizationOut>>, ApiError> {
    Ok(Json(List::from_paged(
        s.roster.list_organizations(&a, None, q.page()?).await?,
        Into::into,
    )))
}

#[utoipa::path(post, path = "/v1/organizations", tag = "organizations", request_body = CreateOrganization,
    responses((status = 201, body = OrganizationOut), Errors))]
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Body(b): Body<CreateOrganization>,
) -> Result<(StatusCode, Json<OrganizationOut>), ApiError> {
    let input = NewOrganization {
        name: b.name,
        slug: b.slug,
        max_allowed_memberships: b.max_allowed_memberships,
        admin_delete_enabled: b.admin_delete_enabled,
        public_metadata: b.public_metadata.unwrap_or_default(),
        private_metadata: b.private_metadata.unwrap_or_default(),
        created_by: b.created_by.as_deref().map(parse::<UserId>).transpose()?,
        may_start_without_admin: false,
    };
    let org = s
        .roster
        .create_organization(Some(&a), input, &context())
        .await?;
    Ok((StatusCode::CREATED, Json(org.into())))
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}", tag = "organizations",
    params(("organization_id" = String, Path)), responses((status = 200, body = OrganizationOut), Errors))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<OrganizationOut>, ApiError> {
    Ok(Json(s.roster.organization(&a, parse(&id)?).await?.into()))
}

#[utoipa::path(patch, path = "/v1/organizations/{organization_id}", tag = "organizations",
    params(("organization_id" = String, Path)), request_body = UpdateOrganization,
    responses((status = 200, body = OrganizationOut), Errors))]
pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    Body(b): Body<UpdateOrganization>,
) -> Result<Json<OrganizationOut>, ApiError> {
    let patch = OrganizationPatch {
        name: b.name,
        slug: b.slug,
        max_allowed_memberships: b.max_allowed_memberships,
        admin_delete_enabled: b.admin_delete_enabled,
        public_metadata: b.public_metadata.map(MetadataUpdate::Replace),
        private_metadata: b.private_metadata.map(MetadataUpdate::Replace),
    };
    Ok(Json(
        s.roster
            .update_organization(&a, parse(&id)?, patch, &context())
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/v1/organizations/{organization_id}", tag = "organizations",
    params(("organization_id" = String, Path)), responses((status = 200, body = OrganizationOut), Errors))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> Result<Json<OrganizationOut>, ApiError> {
    Ok(Json(
        s.roster
            .delete_organization(&a, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/roles", tag = "roles",
    params(("organization_id" = String, Path)), responses((status = 200, body = Vec<RoleOut>), Errors))]
pub async fn list_roles(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<RoleOut>>, ApiError> {
    Ok(Json(
        s.roster
            .list_roles(&a, parse(&org)?)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/organizations/{organization_id}/roles", tag = "roles",
    params(("organization_id" = String, Path)), request_body = CreateRole,
    responses((status = 201, body = RoleOut), Errors))]
pub async fn create_role(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Body(b): Body<CreateRole>,
) -> Result<(StatusCode, Json<RoleOut>), ApiError> {
    let input = NewRole {
        key: b.key,
        name: b.name,
        description: b.description,
        permissions: b.permissions,
    };
    let role = s
        .roster
        .create_role(&a, parse(&org)?, input, &context())
        .await?;
    Ok((StatusCode::CREATED, Json(role.into())))
}

#[utoipa::path(get, path = "/v1/organizations/{organization_id}/roles/{role_id}", tag = "roles",
    params(("organization_id" = String, Path), ("role_id" = String, Path)), responses((status = 200, body = RoleOut), Errors))]
pub async fn get_role(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<RoleOut>, ApiError> {
    Ok(Json(
        s.roster.role(&a, parse(&org)?, parse(&id)?).await?.into(),
    ))
}

#[utoipa::path(patch, path = "/v1/organizations/{organization_id}/roles/{role_id}", tag = "roles",
    params(("organization_id" = String, Path), ("role_id" = String, Path)), request_body = UpdateRole,
    responses((status = 200, body = RoleOut), Errors))]
pub async fn update_role(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<UpdateRole>,
) -> Result<Json<RoleOut>, ApiError> {
    let patch = RolePatch {
        name: b.name,
        description: b.description,
        permissions: b.permissions,
    };
    Ok(Json(
        s.roster
            .update_role(&a, parse(&org)?, parse(&id)?, patch, &context())
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/roles/{role_id}", tag = "roles",
    params(("organization_id" = String, Path), ("role_id" = String, Path)), responses((status = 200, body = RoleOut), Errors))]
pub async fn delete_role(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<RoleOut>, ApiError> {
    Ok(Json(
        s.roster
            .delete_role(&a, parse(&org)?, parse(&id)?, &context())
            .await?
            .into(),
    ))
}

/// The organization's audit log, oldest first unless `order=desc`, filtered as asked.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/audit-events", tag = "audit",
    params(("organization_id" = String, Path), AuditQuery), responses((status = 200, body = List<AuditEventOut>), Errors))]
pub async fn audit_events(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<List<AuditEventOut>>, ApiError> {
    let (page, filter) = q.parse()?;
    Ok(Json(List::from_paged(
        s.roster
            .list_audit_events(&a, parse(&org)?, &filter, page)
            .await?,
        Into::into,
    )))
}

/// Every audit event of the instance (organizations', and those of users, their tokens and
/// admin keys, which belong to none): instance admins only.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit",
    params(AuditQuery), responses((status = 200, body = List<AuditEventOut>), Errors))]
pub async fn instance_audit_events(
    State(s): State<AppState>,
    Auth(a): Auth,
    Query(q): Query<AuditQuery>,
) -> Result<Json<List<AuditEventOut>>, ApiError> {
    let (page, filter) = q.parse()?;
    Ok(Json(List::from_paged(
        s.roster
            .list_instance_audit_events(&a, &filter, page)
            .await?,
        Into::into,
    )))
}
