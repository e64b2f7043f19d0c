//! Authentication (credentials → `Actor`) and authorization (what an actor may do in one
//! organization, read from the memberships as they are now: nothing is cached, so a removed
//! member's token stops working for that organization at its very next request).

use crate::error::{AuthFailure, CoreError, CoreResult};
use crate::ids::OrganizationId;
use crate::model::TokenKind;
use crate::permissions::{Actor, Permission, PermissionSet, Principal};
use crate::secrets::{Credentials, hash_secret, hashes_match};
use crate::store::{Session, Store};
use crate::timestamp::Timestamp;

/// Resolves presented credentials to an actor; every failure is the same 401 so that a probe
/// learns nothing about which token ids exist.
pub async fn authenticate(store: &dyn Store, credentials: Credentials) -> CoreResult<Actor> {
    let presented = match credentials {
        Credentials::Token(t) => t,
        Credentials::Missing => return Err(CoreError::Unauthenticated(AuthFailure::Missing)),
        Credentials::Unrecognized => return Err(CoreError::Unauthenticated(AuthFailure::Invalid)),
    };
    let invalid = || CoreError::Unauthenticated(AuthFailure::Invalid);
    let mut session = store.read().await?;
    let token = session.token(presented.id).await?.ok_or_else(invalid)?;
    if !hashes_match(&token.secret_hash, &hash_secret(&presented.secret)) {
        return Err(invalid());
    }
    if token.expires_at.is_some_and(|at| at <= Timestamp::now()) {
        return Err(invalid());
    }
    let principal = match token.kind {
        TokenKind::InstanceAdmin => Principal::InstanceAdmin,
        TokenKind::User => Principal::User(token.user_id.ok_or_else(invalid)?),
        TokenKind::Identity => Principal::Identity {
            identity_id: token.identity_id.ok_or_else(invalid)?,
            organization_id: token.organization_id.ok_or_else(invalid)?,
        },
        TokenKind::Service => Principal::ServiceToken {
            organization_id: token.organization_id.ok_or_else(invalid)?,
            permissions: token.permissions,
            created_by: token.created_by,
        },
    };
    Ok(Actor {
        token_id: token.id,
        principal,
    })
}

/// The permissions `actor` holds in `org`, or `None` if it may not see the organization at all
/// (which callers must answer exactly like a missing organization). For an instance admin the
/// caller checks that the organization exists.
pub async fn permissions_in(
    session: &mut dyn Session,
    actor: &Actor,
    org: OrganizationId,
) -> CoreResult<Option<PermissionSet>> {
    Ok(match &actor.principal {
        Principal::InstanceAdmin => Some(PermissionSet::all()),
        Principal::User(user) => session.user_permissions(org, *user).await?,
        Principal::Identity {
            identity_id,
            organization_id,
        } if *organization_id == org => session.identity_permissions(org, *identity_id).await?,
        Principal::ServiceToken {
            organization_id,
            permissions,
            ..
        } if *organization_id == org => Some(*permissions),
        Principal::Identity { .. } | Principal::ServiceToken { .. } => None,
    })
}

/// Requires `permission` in `org`: invisible → 404 as for a missing organization, visible but
/// lacking → 403. Returns everything the actor holds there.
pub async fn require(
    session: &mut dyn Session,
    actor: &Actor,
    org: OrganizationId,
    permission: Permission,
) -> CoreResult<PermissionSet> {
    let held = permissions_in(session, actor, org)
        .await?
        .ok_or_else(|| CoreError::not_found("organization", org))?;
    if held.contains(permission) {
        Ok(held)
    } else {
        Err(CoreError::Forbidden {
            permission: permission.key(),
        })
    }
}
