//! Projects of an organization and the users in them.

use serde_json::json;

use super::{RequestContext, Roster, audit_event, paged, probe, validate};
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission};
use crate::service::idempotency::commit;
use crate::store::Session;
use crate::timestamp::Timestamp;

#[derive(Clone, Debug, Default)]
pub struct NewProject {
    pub name: String,
    pub slug: Option<String>,
    /// Its id in an identity provider's directory.
    pub external_id: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
}

/// A change of a project's name and of which users are in it, made at once (a SCIM Group's
/// PATCH or PUT): `replace` sets the members (then `add` and `remove` apply to that), `add`
/// puts users in (with the role `member`; one already in stays as they are), `remove` takes
/// them out (one not in is no matter).
#[derive(Clone, Debug, Default)]
pub struct ProjectMembersChange {
    pub name: Option<String>,
    /// `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
    pub replace: Option<Vec<UserId>>,
    pub add: Vec<UserId>,
    pub remove: Vec<UserId>,
}

/// A project and every user in it.
#[derive(Clone, Debug)]
pub struct ProjectWithMembers {
    pub project: Project,
    pub members: Vec<ProjectMembership>,
}

pub(super) fn project_role(role: Option<String>, default: &str) -> CoreResult<String> {
    let role = role.unwrap_or_else(|| default.to_owned());
    if PROJECT_ROLES.contains(&role.as_str()) {
        Ok(role)
    } else {
        Err(CoreError::invalid(
            "role",
            format!(
                "`{role}` is not a project role (one of {})",
                PROJECT_ROLES.join(", ")
            ),
        ))
    }
}

impl Roster {
    /// Finds a project's organization without telling a caller who may not see it that it exists.
    pub(super) async fn project_org(
        &self,
        s: &mut dyn Session,
        id: ProjectId,
    ) -> CoreResult<Project> {
        s.project(id)
            .await?
            .ok_or_else(|| CoreError::not_found("project", id))
    }

    /// Maps "organization not found" to "project not found" so a project id probe learns nothing.
    pub(super) fn hide_org(id: ProjectId) -> impl Fn(CoreError) -> CoreError {
        move |e| match e {
            CoreError::NotFound {
                kind: "organization",
                ..
            } => CoreError::not_found("project", id),
            other => other,
        }
    }

    /// A write transaction on a project's organization, in which `actor` holds `permission`;
    /// a caller who may not see the organization is told the project does not exist.
    pub(super) async fn write_in_project(
        &self,
        actor: &Actor,
        project: ProjectId,
        permission: Permission,
    ) -> CoreResult<(Box<dyn Session>, OrganizationId)> {
        let org = self
            .project_org(&mut *self.store.read().await?, project)
            .await?
            .organization_id;
        let (tx, _) = self
            .write_in(actor, org, permission)
            .await
            .map_err(Self::hide_org(project))?;
        Ok((tx, org))
    }

    /// The read counterpart of `write_in_project`.
    pub(super) async fn read_in_project(
        &self,
        actor: &Actor,
        project: ProjectId,
        permission: Permission,
    ) -> CoreResult<Box<dyn Session>> {
        let org = self
            .project_org(&mut *self.store.read().await?, project)
            .await?
            .organization_id;
        self.read_in(actor, org, permission)
            .await
            .map_err(Self::hide_org(project))
    }

    pub async fn create_project(
        &self,
        actor: &Actor,
        org: OrganizationId,
        input: NewProject,
        ctx: &RequestContext,
    ) -> CoreResult<Project> {
        let (mut tx, _) = self.write_in(actor, org, Permission::ProjectsWrite).await?;
        let project = insert_new_project(&mut *tx, actor, org, input, ctx).await?;
        commit(tx).await?;
        Ok(project)
    }

    /// A new project with `members` in it (role `member`), in one transaction.
    pub async fn create_project_with_members(
        &self,
        actor: &Actor,
        org: OrganizationId,
        input: NewProject,
        members: Vec<UserId>,
        ctx: &RequestContext,
    ) -> CoreResult<ProjectWithMembers> {
        let (mut tx, _) = self.write_in(actor, org, Permission::ProjectsWrite).await?;
        let project = insert_new_project(&mut *tx, actor, org, input, ctx).await?;
        let change = ProjectMembersChange {
            add: members,
            ..Default::default()
        };
        let members = change_members_in(&mut *tx, actor, &project, change, ctx).await?;
        commit(tx).await?;
        Ok(ProjectWithMembers { project, members })
    }

    /// A project and every user in it.
    pub async fn project_with_members(
        &self,
        actor: &Actor,
        id: ProjectId,
    ) -> CoreResult<ProjectWithMembers> {
        let mut s = self
            .read_in_project(actor, id, Permission::ProjectsRead)
            .await?;
        let project = self.project_org(&mut *s, id).await?;
        let members = all_members(&mut *s, id).await?;
        Ok(ProjectWithMembers { project, members })
    }

    /// Renames a project and changes who is in it (`ProjectMembersChange`), all in one
    /// transaction: a user named who is not a member of the organization refuses the whole.
    pub async fn change_project_members(
        &self,
        actor: &Actor,
        id: ProjectId,
        change: ProjectMembersChange,
        ctx: &RequestContext,
    ) -> CoreResult<ProjectWithMembers> {
        let (mut tx, org) = self
            .write_in_project(actor, id, Permission::ProjectsWrite)
            .await?;
        let mut project = tx
            .project(id)
            .await?
            .ok_or_else(|| CoreError::not_found("project", id))?;
        let mut renamed = project.clone();
        if let Some(name) = &change.name {
            renamed.name = validate::name("name", name)?;
        }
        if let Some(external_id) = change.external_id.clone() {
            renamed.external_id = validate::optional_text("external_id", external_id)?;
        }
        {
            if renamed != project {
                project = renamed;
                project.updated_at = Timestamp::now();
                tx.update_project(&project).await?;
                tx.insert_audit_events(&[audit_event(
                    ctx,
                    Some(actor),
                    Some(org),
                    "project.updated",
                    ("project", id.to_string()),
                    json!({}),
                )])
                .await?;
            }
        }
        let members = change_members_in(&mut *tx, actor, &project, change, ctx).await?;
        commit(tx).await?;
        Ok(ProjectWithMembers { project, members })
    }

    pub async fn project(&self, actor: &Actor, id: ProjectId) -> CoreResult<Project> {
        let p = self.project_org(&mut *self.store.read().await?, id).await?;
        self.read_in(actor, p.organization_id, Permission::ProjectsRead)
            .await
            .map_err(Self::hide_org(id))?;
        Ok(p)
    }

    pub async fn list_projects(
        &self,
        actor: &Actor,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Paged<Project>> {
        let mut s = self.read_in(actor, org, Permission::ProjectsRead).await?;
        let rows = s.list_projects(org, probe(page)?).await?;
        Ok(paged(rows, page, |p| p.id.0))
    }

    pub async fn update_project(
        &self,
        actor: &Actor,
        id: ProjectId,
        patch: ProjectPatch,
        ctx: &RequestContext,
    ) -> CoreResult<Project> {
        let (mut tx, org) = self
            .write_in_project(actor, id, Permission::ProjectsWrite)
            .await?;
        let mut p = tx
            .project(id)
            .await?
            .ok_or_else(|| CoreError::not_found("project", id))?;
        if let Some(name) = patch.name {
            p.name = validate::name("name", &name)?;
        }
        p.updated_at = Timestamp::now();
        tx.update_project(&p).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "project.updated",
            ("project", id.to_string()),
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(p)
    }

    pub async fn delete_project(
        &self,
        actor: &Actor,
        id: ProjectId,
        ctx: &RequestContext,
    ) -> CoreResult<Project> {
        let (mut tx, org) = self
            .write_in_project(actor, id, Permission::ProjectsWrite)
            .await?;
        let p = tx
            .project(id)
            .await?
            .ok_or_else(|| CoreError::not_found("project", id))?;
        let removed = tx.delete_project(id).await?;
        tx.insert_events(&super::identities::removed_from_projects(
            ctx, actor, removed,
        ))
        .await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "project.deleted",
            ("project", id.to_string()),
            json!({"slug": p.slug}),
        )])
        .await?;
        commit(tx).await?;
        Ok(p)
    }

    /// Adds an organization member to a project.
    pub async fn add_project_member(
        &self,
        actor: &Actor,
        project: ProjectId,
        user: UserId,
        role: Option<String>,
        ctx: &RequestContext,
    ) -> CoreResult<ProjectMembership> {
        let (mut tx, org) = self
            .write_in_project(actor, project, Permission::ProjectsWrite)
            .await?;
        tx.project(project)
            .await?
            .ok_or_else(|| CoreError::not_found("project", project))?;
        let role = project_role(role, "member")?;
        if tx.membership_by_user(org, user).await?.is_none() {
            return Err(CoreError::invalid(
                "user_id",
                format!("user {user} is not a member of the project's organization"),
            ));
        }
        let now = Timestamp::now();
        let pm = ProjectMembership {
            id: ProjectMembershipId::new(),
            organization_id: org,
            project_id: project,
            user_id: user,
            role,
            created_at: now,
            updated_at: now,
        };
        tx.insert_project_membership(&pm).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "project_membership.created",
            ("project_membership", pm.id.to_string()),
            json!({"project_id": project, "user_id": user, "role": pm.role}),
        )])
        .await?;
        commit(tx).await?;
        Ok(pm)
    }

    pub async fn list_project_members(
        &self,
        actor: &Actor,
        project: ProjectId,
        page: Page,
    ) -> CoreResult<Paged<ProjectMembership>> {
        self.project(actor, project).await?;
        let mut s = self.store.read().await?;
        let rows = s.list_project_memberships(project, probe(page)?).await?;
        Ok(paged(rows, page, |m| m.id.0))
    }

    pub async fn remove_project_member(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: ProjectMembershipId,
        ctx: &RequestContext,
    ) -> CoreResult<ProjectMembership> {
        let (mut tx, org) = self
            .write_in_project(actor, project, Permission::ProjectsWrite)
            .await?;
        let pm = tx
            .project_membership(project, id)
            .await?
            .ok_or_else(|| CoreError::not_found("project membership", id))?;
        tx.delete_project_membership(project, id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "project_membership.removed",
            ("project_membership", id.to_string()),
            json!({"project_id": project, "user_id": pm.user_id}),
        )])
        .await?;
        commit(tx).await?;
        Ok(pm)
    }
}

/// Writes a new project and its audit event.
async fn insert_new_project(
    tx: &mut dyn Session,
    actor: &Actor,
    org: OrganizationId,
    input: NewProject,
    ctx: &RequestContext,
) -> CoreResult<Project> {
    let name = validate::name("name", &input.name)?;
    let slug = match input.slug {
        Some(s) => validate::slug("slug", &s)?,
        None => validate::slug_from_name(&name),
    };
    let now = Timestamp::now();
    let project = Project {
        id: ProjectId::new(),
        organization_id: org,
        name,
        slug,
        created_at: now,
        updated_at: now,
        external_id: validate::optional_text("external_id", input.external_id)?,
    };
    tx.insert_project(&project).await?;
    tx.insert_audit_events(&[audit_event(
        ctx,
        Some(actor),
        Some(org),
        "project.created",
        ("project", project.id.to_string()),
        json!({"slug": project.slug}),
    )])
    .await?;
    Ok(project)
}

/// Every user in project `id`.
async fn all_members(s: &mut dyn Session, id: ProjectId) -> CoreResult<Vec<ProjectMembership>> {
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let page = Page {
            after,
            offset: 0,
            limit: Page::MAX_LIMIT,
            descending: false,
        };
        let rows = s.list_project_memberships(id, page).await?;
        let full = rows.len() == Page::MAX_LIMIT as usize;
        after = rows.last().map(|m| m.id.0);
        members.extend(rows);
        if !full {
            return Ok(members);
        }
    }
}

/// Applies `change`'s members to `project` in `tx`: who is in it afterwards.
async fn change_members_in(
    tx: &mut dyn Session,
    actor: &Actor,
    project: &Project,
    change: ProjectMembersChange,
    ctx: &RequestContext,
) -> CoreResult<Vec<ProjectMembership>> {
    let org = project.organization_id;
    let mut members = all_members(tx, project.id).await?;
    let mut wanted: Vec<UserId> = match change.replace {
        Some(users) => users,
        None => members.iter().map(|m| m.user_id).collect(),
    };
    wanted.extend(change.add);
    wanted.retain(|u| !change.remove.contains(u));
    let mut seen = std::collections::HashSet::new();
    wanted.retain(|u| seen.insert(*u));
    let mut audit = Vec::new();
    for gone in members.iter().filter(|m| !wanted.contains(&m.user_id)) {
        tx.delete_project_membership(project.id, gone.id).await?;
        audit.push(audit_event(
            ctx,
            Some(actor),
            Some(org),
            "project_membership.removed",
            ("project_membership", gone.id.to_string()),
            json!({"project_id": project.id, "user_id": gone.user_id}),
        ));
    }
    members.retain(|m| wanted.contains(&m.user_id));
    let now = Timestamp::now();
    for user in wanted {
        if members.iter().any(|m| m.user_id == user) {
            continue;
        }
        if tx.membership_by_user(org, user).await?.is_none() {
            return Err(CoreError::invalid(
                "user_id",
                format!("user {user} is not a member of the project's organization"),
            ));
        }
        let pm = ProjectMembership {
            id: ProjectMembershipId::new(),
            organization_id: org,
            project_id: project.id,
            user_id: user,
            role: "member".to_owned(),
            created_at: now,
            updated_at: now,
        };
        tx.insert_project_membership(&pm).await?;
        audit.push(audit_event(
            ctx,
            Some(actor),
            Some(org),
            "project_membership.created",
            ("project_membership", pm.id.to_string()),
            json!({"project_id": project.id, "user_id": user, "role": pm.role}),
        ));
        members.push(pm);
    }
    if !audit.is_empty() {
        tx.insert_audit_events(&audit).await?;
    }
    Ok(members)
}
