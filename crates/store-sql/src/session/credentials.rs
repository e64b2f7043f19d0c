//! Tokens (user, identity, service, admin keys) and passwords.

use async_trait::async_trait;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;
use roster_core::{PermissionSet, Timestamp};

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const TOKEN_COLS: &str = "id, kind, org_id, user_id, identity_id, created_by, name, secret_hash, permissions, expires_at, created_at, created_by_key";

/// How many columns `TOKEN_COLS` names.
pub(super) const TOKEN_COLUMNS: usize = 12;

pub(super) const PASSWORD_COLS: &str = "id, org_id, user_id, name, secret_hash, created_at";

/// The statement that reads a page of tokens of one kind, of an organization or a user, and its
/// arguments (`Session::list_tokens`); public for the plan tests, as `list_memberships_statement`.
/// With both named by equality, the `(org_id, kind, id)` and `(user_id, kind, id)` indexes
/// (migration 0004) give the order and start at the cursor, on both backends.
pub fn list_tokens_statement(
    kind: TokenKind,
    org: Option<OrganizationId>,
    user: Option<UserId>,
    page: Page,
) -> (String, Vec<Arg>) {
    let mut args = vec![Arg::Text(kind.as_str().to_owned())];
    let mut sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE kind = $1");
    if let Some(o) = org {
        args.push(Arg::Uuid(o.0));
        sql.push_str(&format!(" AND org_id = ${}", args.len()));
    }
    if let Some(u) = user {
        args.push(Arg::Uuid(u.0));
        sql.push_str(&format!(" AND user_id = ${}", args.len()));
    }
    let next = args.len() + 1;
    sql.push_str(&page_sql("id", page, next, &mut args));
    (sql, args)
}

pub(super) fn token_row(r: &impl SqlRow) -> CoreResult<Token> {
    Ok(Token {
        id: TokenId(r.uuid(0)?),
        kind: TokenKind::parse(&r.text(1)?).ok_or_else(|| corrupt("token kind"))?,
        organization_id: r.opt_uuid(2)?.map(OrganizationId),
        user_id: r.opt_uuid(3)?.map(UserId),
        identity_id: r.opt_uuid(4)?.map(IdentityId),
        created_by: r.opt_uuid(5)?.map(UserId),
        name: r.text(6)?,
        secret_hash: r.bytes(7)?,
        permissions: PermissionSet::from_storage(&r.text(8)?),
        expires_at: r.opt_int(9)?.map(Timestamp),
        created_at: Timestamp(r.int(10)?),
        created_by_key: r.opt_uuid(11)?.map(TokenId),
    })
}

pub(super) fn password_row(r: &impl SqlRow) -> CoreResult<Password> {
    Ok(Password {
        id: PasswordId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        user_id: UserId(r.uuid(2)?),
        name: r.text(3)?,
        secret_hash: r.bytes(4)?,
        created_at: Timestamp(r.int(5)?),
    })
}

#[async_trait]
impl<C: Conn> CredentialRows for SqlSession<C> {
    async fn insert_token(&mut self, t: &Token) -> CoreResult<()> {
        self.0
            .execute(
                &format!("INSERT INTO tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
                vec![
                    Arg::Uuid(t.id.0),
                    Arg::Text(t.kind.as_str().to_owned()),
                    Arg::OptUuid(t.organization_id.map(|o| o.0)),
                    Arg::OptUuid(t.user_id.map(|u| u.0)),
                    Arg::OptUuid(t.identity_id.map(|i| i.0)),
                    Arg::OptUuid(t.created_by.map(|u| u.0)),
                    Arg::Text(t.name.clone()),
                    Arg::Bytes(t.secret_hash.clone()),
                    Arg::Text(t.permissions.to_storage()),
                    opt_ts(t.expires_at),
                    ts(t.created_at),
                    Arg::OptUuid(t.created_by_key.map(|k| k.0)),
                ],
            )
            .await
            .map(drop)
    }

    async fn token(&mut self, id: TokenId) -> CoreResult<Option<Token>> {
        self.one(
            &format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = $1"),
            vec![Arg::Uuid(id.0)],
            token_row,
        )
        .await
    }

    async fn tokens_by_ids(&mut self, ids: &[TokenId]) -> CoreResult<Vec<Token>> {
        let head = format!("SELECT {TOKEN_COLS} FROM tokens WHERE id IN");
        self.fetch_in(&head, &[], ids, |i| i.0, "", token_row).await
    }

    async fn list_tokens(
        &mut self,
        kind: TokenKind,
        org: Option<OrganizationId>,
        user: Option<UserId>,
        page: Page,
    ) -> CoreResult<Vec<Token>> {
        let (sql, args) = list_tokens_statement(kind, org, user, page);
        self.all(&sql, args, token_row).await
    }

    async fn count_tokens(&mut self, kind: TokenKind, org: OrganizationId) -> CoreResult<i64> {
        self.count(
            "SELECT COUNT(*) FROM tokens WHERE kind = $1 AND org_id = $2",
            vec![Arg::Text(kind.as_str().to_owned()), Arg::Uuid(org.0)],
        )
        .await
    }

    async fn delete_token(&mut self, id: TokenId) -> CoreResult<()> {
        self.0
            .execute("DELETE FROM tokens WHERE id = $1", vec![Arg::Uuid(id.0)])
            .await
            .map(drop)
    }

    async fn delete_user_tokens(&mut self, user: UserId) -> CoreResult<Vec<TokenId>> {
        self.all(
            "DELETE FROM tokens WHERE user_id = $1 AND kind = $2 RETURNING id",
            vec![
                Arg::Uuid(user.0),
                Arg::Text(TokenKind::User.as_str().to_owned()),
            ],
            |r| Ok(TokenId(r.uuid(0)?)),
        )
        .await
    }

    async fn update_token_permissions(
        &mut self,
        id: TokenId,
        permissions: PermissionSet,
    ) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE tokens SET permissions = $2 WHERE id = $1",
                vec![Arg::Uuid(id.0), Arg::Text(permissions.to_storage())],
            )
            .await
            .map(drop)
    }

    async fn delete_service_tokens_created_by(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
    ) -> CoreResult<Vec<OwnedBy<TokenId>>> {
        self.fetch_in(
            "DELETE FROM tokens WHERE org_id = $1 AND kind = 'service' AND created_by IN",
            &[Arg::Uuid(org.0)],
            users,
            |u| u.0,
            " RETURNING id, created_by",
            |r| {
                Ok(OwnedBy {
                    id: TokenId(r.uuid(0)?),
                    user_id: UserId(r.uuid(1)?),
                })
            },
        )
        .await
    }

    async fn insert_password(&mut self, p: &Password) -> CoreResult<()> {
        self.0
            .execute(
                &format!("INSERT INTO passwords ({PASSWORD_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"),
                vec![
                    Arg::Uuid(p.id.0),
                    Arg::Uuid(p.organization_id.0),
                    Arg::Uuid(p.user_id.0),
                    Arg::Text(p.name.clone()),
                    Arg::Bytes(p.secret_hash.clone()),
                    ts(p.created_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn password(
        &mut self,
        org: OrganizationId,
        id: PasswordId,
    ) -> CoreResult<Option<Password>> {
        self.one(
            &format!("SELECT {PASSWORD_COLS} FROM passwords WHERE org_id = $1 AND id = $2"),
            vec![Arg::Uuid(org.0), Arg::Uuid(id.0)],
            password_row,
        )
        .await
    }

    async fn list_passwords(
        &mut self,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Vec<Password>> {
        let (sql, args) = list_page_statement(PagedList::Passwords, org.0, page);
        self.all(&sql, args, password_row).await
    }

    async fn delete_password(&mut self, org: OrganizationId, id: PasswordId) -> CoreResult<()> {
        self.0
            .execute(
                "DELETE FROM passwords WHERE org_id = $1 AND id = $2",
                vec![Arg::Uuid(org.0), Arg::Uuid(id.0)],
            )
            .await
            .map(drop)
    }

    async fn delete_passwords_of_users(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
    ) -> CoreResult<Vec<OwnedBy<PasswordId>>> {
        self.fetch_in(
            "DELETE FROM passwords WHERE org_id = $1 AND user_id IN",
            &[Arg::Uuid(org.0)],
            users,
            |u| u.0,
            " RETURNING id, user_id",
            |r| {
                Ok(OwnedBy {
                    id: PasswordId(r.uuid(0)?),
                    user_id: UserId(r.uuid(1)?),
                })
            },
        )
        .await
    }
}
