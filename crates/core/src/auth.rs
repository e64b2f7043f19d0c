//! Authentication (credentials → `Actor`) and authorization (what an actor may do in one
//! organization, read from the memberships as they are now: nothing is cached, so a removed
//! member's token stops working for that organization at its very next request).

use std::fmt;

use crate::error::{AuthFailure, CoreError, CoreResult};
use crate::ids::{OrganizationId, TokenId};
use crate::model::{Token, TokenKind};
use crate::permissions::{Actor, Permission, PermissionSet, Principal};
use crate::secrets::{Credentials, hash_secret, hashes_match};
use crate::store::{Session, Store};
use crate::timestamp::Timestamp;

/// Resolves presented credentials to an actor; every failure is the same 401 so that a probe
/// learns nothing about which token ids exist.
pub async fn authenticate(store: &dyn Store, credentials: Credentials) -> CoreResult<Actor> {
    Caller::presenting(credentials)?.authenticate(store).await
}

/// A token as presented, reduced to what verifying it needs: its id and the hash of its secret
/// (the secret itself is not kept, so a claim waiting in a queue holds nothing usable).
#[derive(Clone)]
pub struct TokenClaim {
    pub id: TokenId,
    secret_hash: Vec<u8>,
}

impl fmt::Debug for TokenClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenClaim({}, <redacted>)", self.id)
    }
}

impl TokenClaim {
    /// The actor `token` (the stored row of `self.id`, if there is one) stands for, if the
    /// claim's secret is its secret and it has not expired.
    pub fn verify(&self, token: Option<&Token>) -> CoreResult<Actor> {
        let invalid = || CoreError::Unauthenticated(AuthFailure::Invalid);
        let token = token.filter(|t| t.id == self.id).ok_or_else(invalid)?;
        if !hashes_match(&token.secret_hash, &self.secret_hash) {
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
}

/// Who makes a request: an actor already authenticated, or a token claim still to be verified.
/// A removal verifies its claim inside its own transaction, where the token is read in the
/// same query as the other removals' tokens, instead of in a session of its own first.
#[derive(Clone, Debug)]
pub enum Caller {
    Authenticated(Actor),
    Presenting(TokenClaim),
}

impl Caller {
    /// The caller presenting `credentials`: missing or unrecognized credentials fail here, as
    /// they need no read to be refused.
    pub fn presenting(credentials: Credentials) -> CoreResult<Caller> {
        match credentials {
            Credentials::Token(t) => Ok(Caller::Presenting(TokenClaim {
                id: t.id,
                secret_hash: hash_secret(&t.secret),
            })),
            Credentials::Missing => Err(CoreError::Unauthenticated(AuthFailure::Missing)),
            Credentials::Unrecognized => Err(CoreError::Unauthenticated(AuthFailure::Invalid)),
        }
    }

    /// The token a verification inside a transaction has to read, if any.
    pub fn claim(&self) -> Option<&TokenClaim> {
        match self {
            Caller::Authenticated(_) => None,
            Caller::Presenting(claim) => Some(claim),
        }
    }

    /// Verifies the caller in a session of its own (a claim is read and checked; an actor is
    /// already verified).
    pub async fn authenticate(&self, store: &dyn Store) -> CoreResult<Actor> {
        match self {
            Caller::Authenticated(actor) => Ok(actor.clone()),
            Caller::Presenting(claim) => {
                let token = store.read().await?.token(claim.id).await?;
                claim.verify(token.as_ref())
            }
        }
    }
}

/// The permissions `actor` holds in `org`, or `None` if it may not see the organization at all
/// (which callers must answer exactly like a missing organization). One that holds no
/// permission there (a service token made with none, a role granting none) may not see it
/// either: a 403 would tell it that what it names exists. For an instance admin the caller
/// checks that the organization exists.
pub async fn permissions_in(
    session: &mut dyn Session,
    actor: &Actor,
    org: OrganizationId,
) -> CoreResult<Option<PermissionSet>> {
    let held = match &actor.principal {
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
    };
    Ok(held.filter(|held| *held != PermissionSet::EMPTY))
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
