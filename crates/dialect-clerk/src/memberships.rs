//! `/v1/organizations/{organization_id}/memberships[/{user_id}[/metadata]]`: memberships are
//! addressed by their user's id, as in Clerk.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use roster_core::Actor;
use roster_core::auth::Caller;
use roster_core::ids::{OrganizationId, UserId};
use roster_core::model::{MemberRef, MembershipFilter, MetadataUpdate, Removal, RemovalOptions};
use roster_core::service::{MembershipPatch, NewMembership};
use roster_http::AppState;
use roster_http::request_id::context;
use serde_json::Value;

use crate::error::ClerkError;
use crate::extract::{Auth, Path, Presented};
use crate::form::{Form, Params};
use crate::organizations::{render, resolve, user_param};
use crate::{ids, wire};

type Reply = Result<Json<Value>, ClerkError>;

fn path_user(raw: &str) -> Result<UserId, ClerkError> {
    ids::decode(ids::USER, raw)
        .map(UserId)
        .ok_or_else(|| ClerkError::not_found("user"))
}

fn role_param(f: &mut Form) -> Result<String, ClerkError> {
    let role = f.required_string("role")?;
    wire::role_key(&role).map(str::to_owned).ok_or_else(|| {
        ClerkError::param_invalid(
            "role",
            format!("`{role}` is not a role: use org:admin, org:member or org:<key>"),
        )
    })
}

/// The membership of `user` in `org`, rendered with its organization and user.
async fn rendered(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    user: UserId,
) -> Result<Value, ClerkError> {
    let it = s
        .roster
        .member_in_context(a, org, MemberRef::User(user))
        .await?;
    let u = it
        .member
        .user
        .ok_or_else(|| ClerkError::not_found("user"))?;
    Ok(wire::membership(
        &it.member.membership,
        wire::organization(&it.organization, None),
        &u,
        &wire::role_book(it.roles),
    ))
}

pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    mut f: Form,
) -> Reply {
    let user = user_param("user_id", &f.required_string("user_id")?)?;
    let input = NewMembership {
        user_id: Some(user),
        email: None,
        role_key: role_param(&mut f)?,
        public_metadata: f.object("public_metadata")?.unwrap_or_default(),
        private_metadata: f.object("private_metadata")?.unwrap_or_default(),
    };
    f.finish()?;
    let org = resolve(&s, &a, &org).await?;
    s.roster.add_membership(&a, org, input, &context()).await?;
    Ok(Json(rendered(&s, &a, org, user).await?))
}

pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    mut q: Params,
) -> Reply {
    let page = q.page()?;
    let user_ids = q
        .all("user_id")
        .iter()
        .map(|u| user_param("user_id", u))
        .collect::<Result<Vec<_>, _>>()?;
    let role_keys = q
        .all("role")
        .iter()
        .map(|r| {
            wire::role_key(r)
                .map(str::to_owned)
                .ok_or_else(|| ClerkError::param_invalid("role", format!("`{r}` is not a role")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let filter = MembershipFilter {
        role_keys,
        user_ids,
        emails: q.all("email_address"),
        users_only: true,
        query: q.one("query").filter(|v| !v.is_empty()),
        ..Default::default()
    };
    q.finish()?;
    let org = resolve(&s, &a, &org).await?;
    let members = s.roster.list_members(&a, org, &filter, page).await?;
    let total = s.roster.count_members(&a, org, &filter).await?;
    let organization = render(&s, &a, org, false).await?;
    let roles = wire::role_book(s.roster.list_roles(&a, org).await?);
    let data = members
        .items
        .iter()
        .filter_map(|v| {
            v.user
                .as_ref()
                .map(|u| wire::membership(&v.membership, organization.clone(), u, &roles))
        })
        .collect();
    Ok(Json(wire::list(data, total)))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, user)): Path<(String, String)>,
    mut f: Form,
) -> Reply {
    let patch = MembershipPatch {
        role_key: Some(role_param(&mut f)?),
        ..Default::default()
    };
    f.finish()?;
    let (org, user) = (resolve(&s, &a, &org).await?, path_user(&user)?);
    s.roster
        .update_membership(&a, org, MemberRef::User(user), patch, &context())
        .await?;
    Ok(Json(rendered(&s, &a, org, user).await?))
}

/// Deep-merges into the membership's metadata.
pub async fn merge_metadata(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, user)): Path<(String, String)>,
    mut f: Form,
) -> Reply {
    let patch = MembershipPatch {
        public_metadata: f.object("public_metadata")?.map(MetadataUpdate::Merge),
        private_metadata: f.object("private_metadata")?.map(MetadataUpdate::Merge),
        ..Default::default()
    };
    f.finish()?;
    let (org, user) = (resolve(&s, &a, &org).await?, path_user(&user)?);
    s.roster
        .update_membership(&a, org, MemberRef::User(user), patch, &context())
        .await?;
    Ok(Json(rendered(&s, &a, org, user).await?))
}

/// The seed's `deleteOrganizationMembership`: 200 with the removed membership, its organization
/// (with the member count after the removal) and its user.
pub async fn delete(
    State(s): State<AppState>,
    caller: Presented,
    path: Result<Path<(String, String)>, ClerkError>,
) -> Result<Response, ClerkError> {
    let Path((org, user)) = caller.checked(&s, path).await?;
    // An organization id needs no read; a slug is resolved by an authenticated caller.
    let (org, caller) = match ids::decode(ids::ORGANIZATION, &org) {
        Some(id) => (OrganizationId(id), caller),
        None => {
            let a = caller.0.authenticate(s.roster.store()).await?;
            let org = resolve(&s, &a, &org).await?;
            (org, Presented(Caller::Authenticated(a)))
        }
    };
    let user = caller.checked(&s, path_user(&user)).await?;
    // The user, the organization (its member count after the removal) and the roles are read
    // in the removal's own transaction: only this mount renders them.
    let mut request = caller.removal(vec![MemberRef::User(user)], RemovalOptions::default());
    request.include_context = true;
    let Removal {
        removed, context, ..
    } = s.roster.remove(org, request).await?;
    let (m, it) = removed
        .first()
        .zip(context)
        .ok_or_else(|| ClerkError::not_found("organization membership"))?;
    let u = it
        .users
        .iter()
        .find(|u| m.user_id == Some(u.id))
        .ok_or_else(|| ClerkError::not_found("user"))?;
    // Typed all the way: the answer is serialized from the model with no `Value` in between.
    let organization = wire::OrganizationOut::new(&it.organization, Some(it.member_count));
    let roles = wire::role_book(it.roles);
    let answer = wire::MembershipOut::new(&m, organization, u, &roles);
    Ok(Json(answer).into_response())
}
