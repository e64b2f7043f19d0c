//! `/v1/organizations[/{organization_id}[/metadata]]`.

use axum::Json;
use axum::extract::State;
use roster_core::ids::{OrganizationId, UserId};
use roster_core::model::MetadataUpdate;
use roster_core::service::{NewOrganization, OrganizationPatch};
use roster_core::{Actor, CoreError};
use roster_http::AppState;
use roster_http::request_id::context;
use serde_json::Value;

use crate::error::ClerkError;
use crate::extract::{Auth, Path};
use crate::form::{Form, Params};
use crate::{ids, wire};

type Reply = Result<Json<Value>, ClerkError>;

/// An organization by Clerk id or by slug.
pub async fn resolve(
    s: &AppState,
    a: &Actor,
    id_or_slug: &str,
) -> Result<OrganizationId, ClerkError> {
    match ids::decode(ids::ORGANIZATION, id_or_slug) {
        Some(u) => Ok(OrganizationId(u)),
        None if id_or_slug.starts_with("org_") => Err(ClerkError::not_found("organization")),
        None => Ok(s.roster.organization_by_slug(a, id_or_slug).await?.id),
    }
}

/// A user id given in a body or query parameter.
pub fn user_param(param: &str, raw: &str) -> Result<UserId, ClerkError> {
    ids::decode(ids::USER, raw)
        .map(UserId)
        .ok_or_else(|| ClerkError::param_invalid(param, format!("`{raw}` is not a user id")))
}

pub async fn render(
    s: &AppState,
    a: &Actor,
    id: OrganizationId,
    with_count: bool,
) -> Result<Value, ClerkError> {
    let org = s.roster.organization(a, id).await?;
    let count = if with_count {
        Some(s.roster.member_count(a, id).await?)
    } else {
        None
    };
    Ok(wire::organization(&org, count))
}

pub async fn create(State(s): State<AppState>, Auth(a): Auth, mut f: Form) -> Reply {
    let input = NewOrganization {
        name: f.required_string("name")?,
        slug: f.string("slug")?,
        max_allowed_memberships: f.integer("max_allowed_memberships")?,
        admin_delete_enabled: None,
        public_metadata: f.object("public_metadata")?.unwrap_or_default(),
        private_metadata: f.object("private_metadata")?.unwrap_or_default(),
        created_by: f
            .string("created_by")?
            .map(|u| user_param("created_by", &u))
            .transpose()?,
        // QUIRK(clerk): `created_by` is optional in Clerk's API (clerk-bapi 2026-05-12, POST
        // /organizations: only `name` is required), and an organization made without it has
        // no member. Kept so that Clerk clients work unchanged; the native API refuses it.
        may_start_without_admin: true,
    };
    f.finish()?;
    let org = s
        .roster
        .create_organization(Some(&a), input, &context())
        .await
        .map_err(|e| match e {
            CoreError::NotFound { kind: "user", .. } => ClerkError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "organization_creator_not_found",
                "organization creator not found",
                "The user given as created_by was not found.",
            ),
            other => other.into(),
        })?;
    Ok(Json(wire::organization(&org, None)))
}

pub async fn list(State(s): State<AppState>, Auth(a): Auth, mut q: Params) -> Reply {
    let page = q.page()?;
    let query = q.one("query").filter(|v| !v.is_empty());
    let with_count = q.boolean("include_members_count")?;
    q.finish()?;
    let orgs = s.roster.list_organizations(&a, query.clone(), page).await?;
    let total = s.roster.count_organizations(&a, query).await?;
    let mut data = Vec::with_capacity(orgs.items.len());
    for o in orgs.items {
        let count = if with_count {
            Some(s.roster.member_count(&a, o.id).await?)
        } else {
            None
        };
        data.push(wire::organization(&o, count));
    }
    Ok(Json(wire::list(data, total)))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    mut q: Params,
) -> Reply {
    let with_count = q.boolean("include_members_count")?;
    q.finish()?;
    let id = resolve(&s, &a, &id).await?;
    Ok(Json(render(&s, &a, id, with_count).await?))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    mut f: Form,
) -> Reply {
    let patch = OrganizationPatch {
        name: f.string("name")?,
        slug: f.string("slug")?,
        max_allowed_memberships: f.integer("max_allowed_memberships")?,
        admin_delete_enabled: f.boolean("admin_delete_enabled")?,
        public_metadata: None,
        private_metadata: None,
    };
    f.finish()?;
    let id = resolve(&s, &a, &id).await?;
    let org = s
        .roster
        .update_organization(&a, id, patch, &context())
        .await?;
    Ok(Json(wire::organization(&org, None)))
}

/// Deletes the organization with its memberships.
pub async fn delete(State(s): State<AppState>, Auth(a): Auth, Path(id): Path<String>) -> Reply {
    let id = resolve(&s, &a, &id).await?;
    let org = s.roster.delete_organization(&a, id, &context()).await?;
    Ok(Json(wire::deleted(
        "organization",
        wire::org_id(org.id),
        Some(&org.slug),
    )))
}

async fn metadata(
    s: AppState,
    a: Actor,
    id: String,
    mut f: Form,
    how: fn(roster_core::model::Metadata) -> MetadataUpdate,
) -> Reply {
    let patch = OrganizationPatch {
        public_metadata: f.object("public_metadata")?.map(how),
        private_metadata: f.object("private_metadata")?.map(how),
        ..Default::default()
    };
    f.finish()?;
    let id = resolve(&s, &a, &id).await?;
    let org = s
        .roster
        .update_organization(&a, id, patch, &context())
        .await?;
    Ok(Json(wire::organization(&org, None)))
}

/// PATCH: deep-merges into the metadata (a `null` value removes a key).
pub async fn merge_metadata(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    f: Form,
) -> Reply {
    metadata(s, a, id, f, MetadataUpdate::Merge).await
}

/// PUT: replaces each metadata object given.
pub async fn replace_metadata(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    f: Form,
) -> Reply {
    metadata(s, a, id, f, MetadataUpdate::Replace).await
}
