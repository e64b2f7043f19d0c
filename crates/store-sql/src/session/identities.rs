//! Machine identities and their project memberships.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const IDENTITY_SELECT: &str = "SELECT i.id, i.org_id, i.name, i.role_id, r.role_key, i.created_at, i.updated_at \
     FROM identities i JOIN roles r ON r.id = i.role_id";

pub(super) const IPM_COLS: &str =
    "id, org_id, project_id, identity_id, role, created_at, updated_at";

pub(super) fn identity_row(r: &impl SqlRow) -> CoreResult<Identity> {
    Ok(Identity {
        id: IdentityId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        name: r.text(2)?,
        role_id: RoleId(r.uuid(3)?),
        role_key: r.text(4)?,
        created_at: Timestamp(r.int(5)?),
        updated_at: Timestamp(r.int(6)?),
    })
}

pub(super) fn ipm_row(r: &impl SqlRow) -> CoreResult<IdentityProjectMembership> {
    Ok(IdentityProjectMembership {
        id: IdentityProjectMembershipId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        project_id: ProjectId(r.uuid(2)?),
        identity_id: IdentityId(r.uuid(3)?),
        role: r.text(4)?,
        created_at: Timestamp(r.int(5)?),
        updated_at: Timestamp(r.int(6)?),
    })
}

#[async_trait]
impl<C: Conn> IdentityRows for SqlSession<C> {
    async fn insert_identity(&mut self, i: &Identity) -> CoreResult<()> {
        self.0
            .execute(
                "INSERT INTO identities (id, org_id, name, role_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    Arg::Uuid(i.id.0),
                    Arg::Uuid(i.organization_id.0),
                    Arg::Text(i.name.clone()),
                    Arg::Uuid(i.role_id.0),
                    ts(i.created_at),
                    ts(i.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn identity(&mut self, id: IdentityId) -> CoreResult<Option<Identity>> {
        self.one(
            &format!("{IDENTITY_SELECT} WHERE i.id = $1"),
            vec![Arg::Uuid(id.0)],
            identity_row,
        )
        .await
    }

    async fn list_identities(
        &mut self,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Vec<Identity>> {
        let (sql, args) = list_page_statement(PagedList::Identities, org.0, page);
        self.all(&sql, args, identity_row).await
    }

    async fn update_identity(&mut self, i: &Identity) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE identities SET name = $2, role_id = $3, updated_at = $4 WHERE id = $1",
                vec![
                    Arg::Uuid(i.id.0),
                    Arg::Text(i.name.clone()),
                    Arg::Uuid(i.role_id.0),
                    ts(i.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn delete_identity(
        &mut self,
        id: IdentityId,
    ) -> CoreResult<Vec<IdentityProjectMembership>> {
        let removed = self
            .all(
                &format!(
                    "DELETE FROM identity_project_memberships WHERE identity_id = $1 \
                     RETURNING {IPM_COLS}"
                ),
                vec![Arg::Uuid(id.0)],
                ipm_row,
            )
            .await?;
        for sql in [
            "DELETE FROM tokens WHERE identity_id = $1",
            "DELETE FROM identities WHERE id = $1",
        ] {
            self.0.execute(sql, vec![Arg::Uuid(id.0)]).await?;
        }
        Ok(removed)
    }

    async fn insert_identity_project_membership(
        &mut self,
        m: &IdentityProjectMembership,
    ) -> CoreResult<()> {
        self.0
            .execute(
                &format!("INSERT INTO identity_project_memberships ({IPM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
                vec![
                    Arg::Uuid(m.id.0),
                    Arg::Uuid(m.organization_id.0),
                    Arg::Uuid(m.project_id.0),
                    Arg::Uuid(m.identity_id.0),
                    Arg::Text(m.role.clone()),
                    ts(m.created_at),
                    ts(m.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn identity_project_membership(
        &mut self,
        project: ProjectId,
        identity: IdentityId,
    ) -> CoreResult<Option<IdentityProjectMembership>> {
        self.one(
            &format!("SELECT {IPM_COLS} FROM identity_project_memberships WHERE project_id = $1 AND identity_id = $2"),
            vec![Arg::Uuid(project.0), Arg::Uuid(identity.0)],
            ipm_row,
        )
        .await
    }

    async fn list_identity_project_memberships(
        &mut self,
        project: ProjectId,
        page: Page,
    ) -> CoreResult<Vec<IdentityProjectMembership>> {
        let (sql, args) =
            list_page_statement(PagedList::IdentityProjectMemberships, project.0, page);
        self.all(&sql, args, ipm_row).await
    }

    async fn count_identity_project_memberships(&mut self, project: ProjectId) -> CoreResult<i64> {
        self.count(
            "SELECT COUNT(*) FROM identity_project_memberships WHERE project_id = $1",
            vec![Arg::Uuid(project.0)],
        )
        .await
    }

    async fn count_identities(&mut self, org: OrganizationId) -> CoreResult<i64> {
        self.count(
            "SELECT COUNT(*) FROM identities WHERE org_id = $1",
            vec![Arg::Uuid(org.0)],
        )
        .await
    }

    async fn update_identity_project_membership(
        &mut self,
        m: &IdentityProjectMembership,
    ) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE identity_project_memberships SET role = $2, updated_at = $3 WHERE id = $1",
                vec![
                    Arg::Uuid(m.id.0),
                    Arg::Text(m.role.clone()),
                    ts(m.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn delete_identity_project_membership(
        &mut self,
        id: IdentityProjectMembershipId,
    ) -> CoreResult<()> {
        self.0
            .execute(
                "DELETE FROM identity_project_memberships WHERE id = $1",
                vec![Arg::Uuid(id.0)],
            )
            .await
            .map(drop)
    }
}
