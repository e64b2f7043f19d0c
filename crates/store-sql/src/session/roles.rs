//! Roles: each organization's, by id or key.

use async_trait::async_trait;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;
use roster_core::{PermissionSet, Timestamp};

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const ROLE_COLS: &str =
    "id, org_id, role_key, name, description, permissions, built_in, created_at, updated_at";

pub(super) const ROLE_COLUMNS: usize = 9;

pub(super) fn role_row(r: &impl SqlRow) -> CoreResult<Role> {
    Ok(Role {
        id: RoleId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        key: r.text(2)?,
        name: r.text(3)?,
        description: r.opt_text(4)?,
        permissions: PermissionSet::from_storage(&r.text(5)?),
        built_in: r.boolean(6)?,
        created_at: Timestamp(r.int(7)?),
        updated_at: Timestamp(r.int(8)?),
    })
}

#[async_trait]
impl<C: Conn> RoleRows for SqlSession<C> {
    async fn insert_role(&mut self, r: &Role) -> CoreResult<()> {
        self.0
            .execute(
                &format!(
                    "INSERT INTO roles ({ROLE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                vec![
                    Arg::Uuid(r.id.0),
                    Arg::Uuid(r.organization_id.0),
                    Arg::Text(r.key.clone()),
                    Arg::Text(r.name.clone()),
                    Arg::OptText(r.description.clone()),
                    Arg::Text(r.permissions.to_storage()),
                    Arg::Bool(r.built_in),
                    ts(r.created_at),
                    ts(r.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn role(&mut self, org: OrganizationId, id: RoleId) -> CoreResult<Option<Role>> {
        self.one(
            &format!("SELECT {ROLE_COLS} FROM roles WHERE org_id = $1 AND id = $2"),
            vec![Arg::Uuid(org.0), Arg::Uuid(id.0)],
            role_row,
        )
        .await
    }

    async fn role_by_key(&mut self, org: OrganizationId, key: &str) -> CoreResult<Option<Role>> {
        self.one(
            &format!("SELECT {ROLE_COLS} FROM roles WHERE org_id = $1 AND role_key = $2"),
            vec![Arg::Uuid(org.0), Arg::Text(key.to_owned())],
            role_row,
        )
        .await
    }

    async fn list_roles(&mut self, org: OrganizationId) -> CoreResult<Vec<Role>> {
        self.all(
            &format!("SELECT {ROLE_COLS} FROM roles WHERE org_id = $1 ORDER BY id"),
            vec![Arg::Uuid(org.0)],
            role_row,
        )
        .await
    }

    async fn update_role(&mut self, r: &Role) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE roles SET name = $3, description = $4, permissions = $5, updated_at = $6 WHERE org_id = $1 AND id = $2",
                vec![
                    Arg::Uuid(r.organization_id.0),
                    Arg::Uuid(r.id.0),
                    Arg::Text(r.name.clone()),
                    Arg::OptText(r.description.clone()),
                    Arg::Text(r.permissions.to_storage()),
                    ts(r.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn delete_role(&mut self, org: OrganizationId, id: RoleId) -> CoreResult<()> {
        self.0
            .execute(
                "DELETE FROM roles WHERE org_id = $1 AND id = $2",
                vec![Arg::Uuid(org.0), Arg::Uuid(id.0)],
            )
            .await
            .map(drop)
    }

    async fn role_in_use(&mut self, org: OrganizationId, id: RoleId) -> CoreResult<bool> {
        let args = vec![Arg::Uuid(org.0), Arg::Uuid(id.0)];
        let n = self
            .count(
                "SELECT (SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role_id = $2) \
                 + (SELECT COUNT(*) FROM identities WHERE org_id = $1 AND role_id = $2)",
                args,
            )
            .await?;
        Ok(n > 0)
    }
}
