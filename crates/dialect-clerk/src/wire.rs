//! Clerk's objects, as `@clerk/backend` reads them: an `object` field on each, prefixed ids,
//! Unix-millisecond timestamps, `org:`-prefixed role keys and `org:sys_*` permissions.

use std::collections::HashMap;

use roster_core::model::*;
use roster_core::{Permission, PermissionSet};
use serde_json::{Value, json};

use crate::ids;

pub fn org_id(id: roster_core::ids::OrganizationId) -> String {
    ids::encode(ids::ORGANIZATION, id.0)
}

pub fn user_id(id: roster_core::ids::UserId) -> String {
    ids::encode(ids::USER, id.0)
}

/// `org:admin`, `org:member`, `org:<custom key>`.
pub fn role(key: &str) -> String {
    format!("org:{key}")
}

/// The role key of a Clerk role (`org:admin` → `admin`).
pub fn role_key(clerk_role: &str) -> Option<&str> {
    clerk_role.strip_prefix("org:").filter(|k| !k.is_empty())
}

/// Clerk's system permissions for roster's.
pub fn permissions(set: PermissionSet) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (p, clerk) in [
        (Permission::OrganizationWrite, "org:sys_profile:manage"),
        (Permission::OrganizationDelete, "org:sys_profile:delete"),
        (Permission::MembersRead, "org:sys_memberships:read"),
        (Permission::MembersWrite, "org:sys_memberships:manage"),
    ] {
        if set.contains(p) {
            out.push(clerk);
        }
    }
    out
}

/// Names and permissions of an organization's roles, by key.
pub type RoleBook = HashMap<String, (String, PermissionSet)>;

/// A membership that is only an invitation, as Clerk's `organization_invitation`, in
/// `status` (`pending`, `accepted` or `revoked`). `inviter` is the inviting user, where a user
/// invited. QUIRK(clerk): roster's invitations carry no link and do not expire, so `url` and
/// `expires_at` are null; the inviter's public data is not at hand, so it is null too.
pub fn invitation(
    m: &Membership,
    status: &str,
    inviter: Option<roster_core::ids::UserId>,
    roles: &RoleBook,
) -> Value {
    let role_name = roles
        .get(&m.role_key)
        .map_or_else(|| m.role_key.clone(), |(name, _)| name.clone());
    json!({
        "object": "organization_invitation",
        "id": ids::encode(ids::INVITATION, m.id.0),
        "email_address": m.invite_email,
        "role": role(&m.role_key),
        "role_name": role_name,
        "organization_id": org_id(m.organization_id),
        "inviter_id": inviter.map(user_id),
        "public_inviter_data": null,
        "status": status,
        "public_metadata": m.public_metadata,
        "private_metadata": m.private_metadata,
        "url": null,
        "expires_at": null,
        "created_at": m.created_at.millis(),
        "updated_at": m.updated_at.millis(),
    })
}

pub fn role_book(roles: Vec<Role>) -> RoleBook {
    roles
        .into_iter()
        .map(|r| (r.key, (r.name, r.permissions)))
        .collect()
}

pub fn organization(o: &Organization, members_count: Option<i64>) -> Value {
    json!(OrganizationOut::new(o, members_count))
}

/// An organization, serialized straight from the model: a removal's answer is rendered without
/// a `Value` in between (the other routes take it as one, through `organization`).
#[derive(serde::Serialize)]
pub struct OrganizationOut<'a> {
    object: &'static str,
    id: String,
    name: &'a str,
    slug: &'a str,
    image_url: &'static str,
    has_image: bool,
    max_allowed_memberships: i64,
    admin_delete_enabled: bool,
    public_metadata: &'a Metadata,
    private_metadata: &'a Metadata,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    members_count: Option<i64>,
}

impl<'a> OrganizationOut<'a> {
    pub fn new(o: &'a Organization, members_count: Option<i64>) -> Self {
        OrganizationOut {
            object: "organization",
            id: org_id(o.id),
            name: &o.name,
            slug: &o.slug,
            image_url: "",
            has_image: false,
            max_allowed_memberships: o.max_allowed_memberships,
            admin_delete_enabled: o.admin_delete_enabled,
            public_metadata: &o.public_metadata,
            private_metadata: &o.private_metadata,
            created_by: o.created_by.map(user_id),
            created_at: o.created_at.millis(),
            updated_at: o.updated_at.millis(),
            members_count,
        }
    }
}

/// `{"object", "id", "slug"?, "deleted": true}`: the SDK turns it into a `DeletedObject`.
pub fn deleted(object: &str, id: String, slug: Option<&str>) -> Value {
    let mut v = json!({"object": object, "id": id, "deleted": true});
    if let Some(s) = slug {
        v["slug"] = json!(s);
    }
    v
}

#[derive(serde::Serialize)]
pub struct PublicUserData<'a> {
    user_id: String,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    profile_image_url: &'a str,
    image_url: &'a str,
    has_image: bool,
    identifier: &'a str,
    username: Option<&'a str>,
    banned: bool,
    deprovisioned: bool,
}

pub fn public_user_data(u: &User) -> PublicUserData<'_> {
    let image = u.image_url.as_deref();
    PublicUserData {
        user_id: user_id(u.id),
        first_name: u.first_name.as_deref(),
        last_name: u.last_name.as_deref(),
        profile_image_url: image.unwrap_or_default(),
        image_url: image.unwrap_or_default(),
        has_image: image.is_some(),
        identifier: &u.email,
        username: u.username.as_deref(),
        banned: false,
        deprovisioned: false,
    }
}

/// A membership with its organization and user, as `OrganizationMembership.fromJSON` needs
/// them (both present, never null).
pub fn membership(m: &Membership, organization: Value, user: &User, roles: &RoleBook) -> Value {
    json!(MembershipOut::new(m, organization, user, roles))
}

/// A membership, serialized straight from the model (see `OrganizationOut`); `O` is the
/// organization, typed or as a `Value`.
#[derive(serde::Serialize)]
pub struct MembershipOut<'a, O> {
    object: &'static str,
    id: String,
    role: String,
    role_name: String,
    permissions: Vec<&'static str>,
    public_metadata: &'a Metadata,
    private_metadata: &'a Metadata,
    organization: O,
    public_user_data: PublicUserData<'a>,
    created_at: i64,
    updated_at: i64,
}

impl<'a, O> MembershipOut<'a, O> {
    pub fn new(m: &'a Membership, organization: O, user: &'a User, roles: &RoleBook) -> Self {
        let (role_name, perms) = roles
            .get(&m.role_key)
            .cloned()
            .unwrap_or_else(|| (m.role_key.clone(), PermissionSet::EMPTY));
        MembershipOut {
            object: "organization_membership",
            id: ids::encode(ids::MEMBERSHIP, m.id.0),
            role: role(&m.role_key),
            role_name,
            permissions: permissions(perms),
            public_metadata: &m.public_metadata,
            private_metadata: &m.private_metadata,
            organization,
            public_user_data: public_user_data(user),
            created_at: m.created_at.millis(),
            updated_at: m.updated_at.millis(),
        }
    }
}

/// A user with every field the spec requires (`additionalProperties: false`); what roster does
/// not keep (phones, passwords, MFA, external accounts) is empty or null.
pub fn user(u: &User) -> Value {
    let email_id = ids::encode(ids::EMAIL, u.id.0);
    let (created, updated) = (u.created_at.millis(), u.updated_at.millis());
    json!({
        "id": user_id(u.id),
        "object": "user",
        "external_id": null,
        "primary_email_address_id": email_id,
        "primary_phone_number_id": null,
        "primary_web3_wallet_id": null,
        "username": u.username,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "locale": null,
        "profile_image_url": u.image_url.clone().unwrap_or_default(),
        "image_url": u.image_url.clone().unwrap_or_default(),
        "has_image": u.image_url.is_some(),
        "public_metadata": {},
        "private_metadata": {},
        "unsafe_metadata": {},
        "email_addresses": [{
            "id": email_id,
            "object": "email_address",
            "email_address": u.email,
            "reserved": false,
            // Provisioned by an administrator, as Clerk marks addresses created through BAPI.
            "verification": {"object": "verification_admin", "status": "verified", "strategy": "admin",
                             "attempts": null, "expire_at": null},
            "linked_to": [],
            "matches_sso_connection": false,
            "created_at": created,
            "updated_at": updated,
        }],
        "phone_numbers": [],
        "web3_wallets": [],
        "passkeys": [],
        "password_enabled": false,
        "two_factor_enabled": false,
        "totp_enabled": false,
        "backup_code_enabled": false,
        "mfa_enabled_at": null,
        "mfa_disabled_at": null,
        "password_last_updated_at": null,
        "external_accounts": [],
        "saml_accounts": [],
        "enterprise_accounts": [],
        "last_sign_in_at": null,
        "banned": false,
        "locked": false,
        "deprovisioned": false,
        "lockout_expires_in_seconds": null,
        "verification_attempts_remaining": null,
        "updated_at": updated,
        "created_at": created,
        "delete_self_enabled": true,
        "create_organization_enabled": true,
        "create_organizations_limit": null,
        "last_active_at": null,
        "legal_accepted_at": null,
        "bypass_client_trust": false,
    })
}

/// `{data, total_count}`: without `total_count` the SDK would hand back a bare array.
pub fn list(data: Vec<Value>, total: i64) -> Value {
    json!({"data": data, "total_count": total})
}
