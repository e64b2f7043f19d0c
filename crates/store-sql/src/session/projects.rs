//! Projects and their user memberships, and the removal cascade over them.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const PROJECT_COLS: &str = "id, org_id, name, slug, created_at, updated_at, external_id";

pub(super) const PM_COLS: &str = "id, org_id, project_id, user_id, role, created_at, updated_at";

pub(super) fn project_row(r: &impl SqlRow) -> CoreResult<Project> {
    Ok(Project {
        id: ProjectId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        name: r.text(2)?,
        slug: r.text(3)?,
        created_at: Timestamp(r.int(4)?),
        updated_at: Timestamp(r.int(5)?),
        external_id: r.opt_text(6)?,
    })
}

pub(super) fn pm_row(r: &impl SqlRow) -> CoreResult<ProjectMembership> {
    Ok(ProjectMembership {
        id: ProjectMembershipId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        project_id: ProjectId(r.uuid(2)?),
        user_id: UserId(r.uuid(3)?),
        role: r.text(4)?,
        created_at: Timestamp(r.int(5)?),
        updated_at: Timestamp(r.int(6)?),
    })
}

/// The columns a removal's cascade returns of each project membership it deletes.
pub(super) const CASCADED_COLS: &str = "id, project_id, user_id, role";

pub(super) fn cascaded_row(r: &impl SqlRow) -> CoreResult<CascadedProjectMembership> {
    Ok(CascadedProjectMembership {
        id: ProjectMembershipId(r.uuid(0)?),
        project_id: ProjectId(r.uuid(1)?),
        user_id: UserId(r.uuid(2)?),
        role: r.text(3)?,
    })
}

#[async_trait]
impl<C: Conn> ProjectRows for SqlSession<C> {
    async fn insert_project(&mut self, p: &Project) -> CoreResult<()> {
        self.0
            .execute(
                &format!(
                    "INSERT INTO projects ({PROJECT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ),
                vec![
                    Arg::Uuid(p.id.0),
                    Arg::Uuid(p.organization_id.0),
                    Arg::Text(p.name.clone()),
                    Arg::Text(p.slug.clone()),
                    ts(p.created_at),
                    ts(p.updated_at),
                    Arg::OptText(p.external_id.clone()),
                ],
            )
            .await
            .map(drop)
    }

    async fn project(&mut self, id: ProjectId) -> CoreResult<Option<Project>> {
        self.one(
            &format!("SELECT {PROJECT_COLS} FROM projects WHERE id = $1"),
            vec![Arg::Uuid(id.0)],
            project_row,
        )
        .await
    }

    async fn list_projects(&mut self, org: OrganizationId, page: Page) -> CoreResult<Vec<Project>> {
        let (sql, args) = list_page_statement(PagedList::Projects, org.0, page);
        self.all(&sql, args, project_row).await
    }

    async fn update_project(&mut self, p: &Project) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE projects SET name = $2, updated_at = $3, external_id = $4 WHERE id = $1",
                vec![
                    Arg::Uuid(p.id.0),
                    Arg::Text(p.name.clone()),
                    ts(p.updated_at),
                    Arg::OptText(p.external_id.clone()),
                ],
            )
            .await
            .map(drop)
    }

    async fn delete_project(
        &mut self,
        id: ProjectId,
    ) -> CoreResult<Vec<IdentityProjectMembership>> {
        let removed = self
            .all(
                &format!(
                    "DELETE FROM identity_project_memberships WHERE project_id = $1 \
                     RETURNING {IPM_COLS}"
                ),
                vec![Arg::Uuid(id.0)],
                ipm_row,
            )
            .await?;
        for sql in [
            "DELETE FROM project_memberships WHERE project_id = $1",
            "DELETE FROM projects WHERE id = $1",
        ] {
            self.0.execute(sql, vec![Arg::Uuid(id.0)]).await?;
        }
        Ok(removed)
    }

    async fn insert_project_membership(&mut self, pm: &ProjectMembership) -> CoreResult<()> {
        self.0
            .execute(
                &format!("INSERT INTO project_memberships ({PM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
                vec![
                    Arg::Uuid(pm.id.0),
                    Arg::Uuid(pm.organization_id.0),
                    Arg::Uuid(pm.project_id.0),
                    Arg::Uuid(pm.user_id.0),
                    Arg::Text(pm.role.clone()),
                    ts(pm.created_at),
                    ts(pm.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn project_membership(
        &mut self,
        project: ProjectId,
        id: ProjectMembershipId,
    ) -> CoreResult<Option<ProjectMembership>> {
        self.one(
            &format!("SELECT {PM_COLS} FROM project_memberships WHERE project_id = $1 AND id = $2"),
            vec![Arg::Uuid(project.0), Arg::Uuid(id.0)],
            pm_row,
        )
        .await
    }

    async fn list_project_memberships(
        &mut self,
        project: ProjectId,
        page: Page,
    ) -> CoreResult<Vec<ProjectMembership>> {
        let (sql, args) = list_page_statement(PagedList::ProjectMemberships, project.0, page);
        self.all(&sql, args, pm_row).await
    }

    async fn delete_project_membership(
        &mut self,
        project: ProjectId,
        id: ProjectMembershipId,
    ) -> CoreResult<()> {
        self.0
            .execute(
                "DELETE FROM project_memberships WHERE project_id = $1 AND id = $2",
                vec![Arg::Uuid(project.0), Arg::Uuid(id.0)],
            )
            .await
            .map(drop)
    }

    async fn delete_project_memberships_of_users(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
    ) -> CoreResult<Vec<CascadedProjectMembership>> {
        let returning = format!(" RETURNING {CASCADED_COLS}");
        self.fetch_in(
            "DELETE FROM project_memberships WHERE org_id = $1 AND user_id IN",
            &[Arg::Uuid(org.0)],
            users,
            |u| u.0,
            &returning,
            cascaded_row,
        )
        .await
    }
}
