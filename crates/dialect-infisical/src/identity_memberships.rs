//! Project identity memberships (`/api/v1/projects/{projectId}/identity-memberships[/{identityId}]`
//! and its deprecated twins) and the organization's identity memberships.

use axum::Json;
use axum::extract::State;
use roster_core::ids::{IdentityId, OrganizationId, ProjectId};
use roster_http::AppState;
use roster_http::request_id::context;
use serde_json::{Value, json};

use crate::error::InfisicalError;
use crate::extract::{Auth, Body, Path, Query};
use crate::wire::*;

type Reply = Result<Json<Value>, InfisicalError>;

fn ids(project: &str, identity: &str) -> Result<(ProjectId, IdentityId), InfisicalError> {
    Ok((project.parse()?, identity.parse()?))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((project, identity)): Path<(String, String)>,
) -> Reply {
    let (project, identity) = ids(&project, &identity)?;
    let m = s
        .roster
        .identity_project_membership(&a, project, identity)
        .await?;
    Ok(Json(
        json!({ "identityMembership": IdentityMembershipWithRoles::from(m) }),
    ))
}

pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((project, identity)): Path<(String, String)>,
    Body(b): Body<CreateIdentityMembership>,
) -> Reply {
    let (project, identity) = ids(&project, &identity)?;
    let role = match (b.role, b.roles) {
        (role, None) => role,
        (None, Some(roles)) => Some(RoleRequest::single(roles)?),
        (Some(_), Some(_)) => {
            return Err(roster_core::CoreError::invalid(
                "role",
                "give either role or roles, not both",
            )
            .into());
        }
    };
    let m = s
        .roster
        .add_identity_to_project(&a, project, identity, role, &context())
        .await?;
    Ok(Json(
        json!({ "identityMembership": IdentityMembershipWithRoles::from(m) }),
    ))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((project, identity)): Path<(String, String)>,
    Body(b): Body<UpdateIdentityMembership>,
) -> Reply {
    let (project, identity) = ids(&project, &identity)?;
    let role = RoleRequest::single(b.roles)?;
    let m = s
        .roster
        .update_identity_project_role(&a, project, identity, role, &context())
        .await?;
    Ok(Json(json!({ "roles": [MembershipRole::from(&m)] })))
}

/// The seed's project identity removal: only that project membership goes.
pub async fn remove(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((project, identity)): Path<(String, String)>,
) -> Reply {
    let (project, identity) = ids(&project, &identity)?;
    let m = s
        .roster
        .remove_identity_from_project(&a, project, identity, false, &context())
        .await?;
    Ok(Json(
        json!({ "identityMembership": IdentityMembership::from(&m) }),
    ))
}

pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(project): Path<String>,
    Query(q): Query<OffsetQuery>,
) -> Reply {
    let project: ProjectId = project.parse()?;
    let page = s
        .roster
        .list_identity_project_memberships(&a, project, q.page())
        .await?;
    let total = s
        .roster
        .count_identity_project_memberships(&a, project)
        .await?;
    let items: Vec<_> = page
        .items
        .into_iter()
        .map(IdentityMembershipWithRoles::from)
        .collect();
    Ok(Json(
        json!({ "identityMemberships": items, "totalCount": total }),
    ))
}

pub async fn list_in_org(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    Query(q): Query<OffsetQuery>,
) -> Reply {
    let org: OrganizationId = org.parse()?;
    let page = s.roster.list_identities(&a, org, q.page()).await?;
    let total = s.roster.count_identities(&a, org).await?;
    let items: Vec<_> = page
        .items
        .into_iter()
        .map(OrgIdentityMembership::from)
        .collect();
    Ok(Json(
        json!({ "identityMemberships": items, "totalCount": total }),
    ))
}
