//! PlanetScale's wire shapes: snake_case, RFC 3339 timestamps with milliseconds, the paginated
//! `{"type": "list", …}` envelope, and the service-token accesses.

use roster_core::model::*;
use roster_core::{Permission, PermissionSet, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::PlanetScaleError;

fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// `?page=&per_page=` (page from 1; per_page 1 to 100, default 25).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub page: Option<u64>,
    pub per_page: Option<u32>,
    /// Members only: a name or email to search for.
    pub q: Option<String>,
}

/// A page as the core reads it, and the page number and size to render.
pub struct Pagination {
    pub page: u64,
    pub per_page: u32,
}

impl PageQuery {
    pub fn pagination(&self) -> Result<Pagination, PlanetScaleError> {
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(25);
        if page == 0 {
            return Err(PlanetScaleError::unprocessable("page must be 1 or more"));
        }
        if !(1..=100).contains(&per_page) {
            return Err(PlanetScaleError::unprocessable(
                "per_page must be between 1 and 100",
            ));
        }
        Ok(Pagination { page, per_page })
    }
}

impl Pagination {
    pub fn core(&self) -> Page {
        Page {
            after: None,
            offset: (self.page - 1) * u64::from(self.per_page),
            limit: self.per_page,
            descending: false,
        }
    }

    /// The envelope every PlanetScale list uses; `path` is this list's own path, for the page URLs.
    pub fn envelope(&self, data: Vec<Value>, total: i64, path: &str) -> Value {
        let per_page = u64::from(self.per_page);
        let total_pages = (total.max(0) as u64).div_ceil(per_page);
        let next_page = (self.page < total_pages).then_some(self.page + 1);
        let prev_page = (self.page > 1).then_some(self.page - 1);
        let url = |p: u64| format!("{path}?page={p}&per_page={per_page}");
        json!({
            "type": "list",
            "current_page": self.page,
            "per_page": per_page,
            "next_page": next_page,
            "next_page_url": next_page.map(url),
            "prev_page": prev_page,
            "prev_page_url": prev_page.map(url),
            "total_count": total,
            "total_pages": total_pages,
            "data": data,
        })
    }
}

/// An organization membership, keyed in paths by its user's id.
pub fn member(v: MemberView) -> Value {
    let m = v.membership;
    let user = v.user.map(|u| {
        let full = [u.first_name.as_deref(), u.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let name = if full.is_empty() {
            u.email.clone()
        } else {
            full
        };
        json!({
            "id": u.id.to_string(),
            "display_name": name,
            "name": name,
            "email": u.email,
            "avatar_url": u.image_url.unwrap_or_default(),
            "created_at": time(u.created_at),
            "updated_at": time(u.updated_at),
            "two_factor_auth_configured": false,
            "sso": false,
            "managed": false,
            "directory_managed": false,
            "email_verified": true,
        })
    });
    json!({
        "id": m.id.to_string(),
        "role": m.role_key,
        "user": user,
        "created_at": time(m.created_at),
        "updated_at": time(m.updated_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    pub role: String,
}

/// The credential flags of a removal, as query parameters or (older clients) a JSON body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RemovalFlags {
    pub delete_passwords: Option<bool>,
    pub delete_service_tokens: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceToken {
    pub name: Option<String>,
    pub ttl: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessChange {
    /// The database the accesses are for; empty or absent means the organization.
    #[serde(default)]
    pub database: Option<String>,
    pub access: Vec<String>,
}

/// PlanetScale's organization-level accesses and the roster permissions each stands for.
pub const ACCESSES: &[(&str, &str, &[Permission])] = &[
    (
        "read_organization",
        "Read organization and its members",
        &[Permission::OrganizationRead, Permission::MembersRead],
    ),
    (
        "write_organization",
        "Update the organization and manage its members",
        &[
            Permission::OrganizationWrite,
            Permission::MembersWrite,
            Permission::MembersDelete,
        ],
    ),
    (
        "delete_organization",
        "Delete the organization",
        &[Permission::OrganizationDelete],
    ),
    (
        "write_members",
        "Invite members",
        &[Permission::MembersWrite],
    ),
    (
        "read_service_tokens",
        "Read service tokens",
        &[Permission::ServiceTokensRead],
    ),
    (
        "write_service_tokens",
        "Create and manage service tokens",
        &[Permission::ServiceTokensWrite],
    ),
    (
        "delete_service_tokens",
        "Delete service tokens",
        &[Permission::ServiceTokensWrite],
    ),
    (
        "read_audit_logs",
        "Read the audit log",
        &[Permission::AuditRead],
    ),
];

/// The permissions of a list of access names; an unknown name is refused.
pub fn permissions_of(names: &[String]) -> Result<PermissionSet, PlanetScaleError> {
    let mut set = PermissionSet::EMPTY;
    for n in names {
        let (_, _, perms) = ACCESSES
            .iter()
            .find(|(name, _, _)| name == n)
            .ok_or_else(|| PlanetScaleError::unprocessable(format!("unknown access `{n}`")))?;
        perms.iter().for_each(|p| set.insert(*p));
    }
    Ok(set)
}

/// The access names to show for a permission set: those it fully covers, leaving out any whose
/// permissions another shown access already includes (`write_members` under
/// `write_organization`; of two with the same permissions, the first in `ACCESSES`).
pub fn accesses_of(set: PermissionSet) -> Vec<(&'static str, &'static str)> {
    let covered: Vec<_> = ACCESSES
        .iter()
        .filter(|(_, _, perms)| !perms.is_empty() && perms.iter().all(|p| set.contains(*p)))
        .collect();
    let within = |a: &[Permission], b: &[Permission]| a.iter().all(|p| b.contains(p));
    covered
        .iter()
        .enumerate()
        .filter(|(i, (_, _, mine))| {
            !covered.iter().enumerate().any(|(j, (_, _, other))| {
                j != *i && within(mine, other) && (!within(other, mine) || j < *i)
            })
        })
        .map(|(_, (n, d, _))| (*n, *d))
        .collect()
}

fn resource(org: &Organization) -> Value {
    json!({"id": org.id.to_string(), "name": org.slug, "created_at": time(org.created_at),
           "updated_at": time(org.updated_at), "deleted_at": null})
}

pub fn service_token(t: &Token, org: &Organization, plain: Option<String>) -> Value {
    let accesses: Vec<Value> = accesses_of(t.permissions)
        .into_iter()
        .map(|(access, description)| {
            json!({"id": format!("{}-{access}", t.id), "access": access, "description": description,
                   "resource_name": org.slug, "resource_id": org.id.to_string(), "resource_type": "Organization",
                   "resource": resource(org)})
        })
        .collect();
    let mut v = json!({
        "id": t.id.to_string(),
        "type": "ServiceToken",
        "name": t.name,
        "display_name": t.name,
        "avatar_url": "",
        "created_at": time(t.created_at),
        "updated_at": time(t.created_at),
        "expires_at": t.expires_at.map(time),
        "last_used_at": null,
        "actor_id": t.created_by.map(|u| u.to_string()),
        "actor_display_name": null,
        "actor_type": t.created_by.map(|_| "User"),
        "service_token_accesses": accesses,
    });
    if let Some(p) = plain {
        v["token"] = Value::String(p);
    }
    v
}

/// The CLI's `/access` list: one `DatabaseAccess` entry per organization-level access.
pub fn access_list(t: &Token, org: &Organization) -> Value {
    let data: Vec<Value> = accesses_of(t.permissions)
        .into_iter()
        .map(|(access, _)| json!({"id": format!("{}-{access}", t.id), "type": "DatabaseAccess", "resource": resource(org), "access": access}))
        .collect();
    let total = data.len() as i64;
    Pagination {
        page: 1,
        per_page: 100,
    }
    .envelope(
        data,
        total,
        &format!(
            "/planetscale/v1/organizations/{}/service-tokens/{}/access",
            org.slug, t.id
        ),
    )
}
