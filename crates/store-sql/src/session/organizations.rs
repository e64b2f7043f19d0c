//! Organizations: their rows, filters and the member count kept with each.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const ORG_COLS: &str = "id, name, slug, max_allowed_memberships, admin_delete_enabled, public_metadata, \
     private_metadata, created_by, created_at, updated_at";

/// How many columns `ORG_COLS` and `ROLE_COLS` name (a unit test keeps them in step).
pub(super) const ORG_COLUMNS: usize = 10;

/// The `FROM … WHERE` of a filtered organization query (alias `o`).
pub(super) fn organization_filter_sql(filter: &OrganizationFilter, args: &mut Vec<Arg>) -> String {
    let mut sql = " FROM organizations o".to_owned();
    if let Some(u) = filter.member {
        args.push(Arg::Uuid(u.0));
        sql.push_str(&format!(
            " JOIN memberships m ON m.org_id = o.id AND m.user_id = ${} AND m.status = 'accepted'",
            args.len()
        ));
    }
    sql.push_str(" WHERE 1 = 1");
    if let Some(o) = filter.only {
        args.push(Arg::Uuid(o.0));
        sql.push_str(&format!(" AND o.id = ${}", args.len()));
    }
    if let Some(q) = &filter.query {
        args.push(Arg::Text(contains_pattern(q)));
        let n = args.len();
        sql.push_str(&format!(
            " AND (LOWER(o.name) LIKE ${n} ESCAPE '!' OR o.slug LIKE ${n} ESCAPE '!')"
        ));
    }
    sql
}

pub(super) fn org_row(r: &impl SqlRow) -> CoreResult<Organization> {
    Ok(Organization {
        id: OrganizationId(r.uuid(0)?),
        name: r.text(1)?,
        slug: r.text(2)?,
        max_allowed_memberships: r.int(3)?,
        admin_delete_enabled: r.boolean(4)?,
        public_metadata: metadata(&r.text(5)?)?,
        private_metadata: metadata(&r.text(6)?)?,
        created_by: r.opt_uuid(7)?.map(UserId),
        created_at: Timestamp(r.int(8)?),
        updated_at: Timestamp(r.int(9)?),
    })
}

#[async_trait]
impl<C: Conn> OrganizationRows for SqlSession<C> {
    async fn insert_organization(&mut self, o: &Organization) -> CoreResult<()> {
        self.0
            .execute(
                &format!("INSERT INTO organizations ({ORG_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
                vec![
                    Arg::Uuid(o.id.0),
                    Arg::Text(o.name.clone()),
                    Arg::Text(o.slug.clone()),
                    Arg::Int(o.max_allowed_memberships),
                    Arg::Bool(o.admin_delete_enabled),
                    Arg::Text(json_text(&o.public_metadata)),
                    Arg::Text(json_text(&o.private_metadata)),
                    Arg::OptUuid(o.created_by.map(|u| u.0)),
                    ts(o.created_at),
                    ts(o.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn organization(&mut self, id: OrganizationId) -> CoreResult<Option<Organization>> {
        self.one(
            &format!("SELECT {ORG_COLS} FROM organizations WHERE id = $1"),
            vec![Arg::Uuid(id.0)],
            org_row,
        )
        .await
    }

    async fn organization_by_slug(&mut self, slug: &str) -> CoreResult<Option<Organization>> {
        self.one(
            &format!("SELECT {ORG_COLS} FROM organizations WHERE slug = $1"),
            vec![Arg::Text(slug.to_owned())],
            org_row,
        )
        .await
    }

    async fn list_organizations(
        &mut self,
        filter: &OrganizationFilter,
        page: Page,
    ) -> CoreResult<Vec<Organization>> {
        let cols = ORG_COLS
            .split(", ")
            .map(|c| format!("o.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut args = Vec::new();
        let mut sql = format!(
            "SELECT {cols}{}",
            organization_filter_sql(filter, &mut args)
        );
        let next = args.len() + 1;
        sql.push_str(&page_sql("o.id", page, next, &mut args));
        self.all(&sql, args, org_row).await
    }

    async fn count_organizations(&mut self, filter: &OrganizationFilter) -> CoreResult<i64> {
        let mut args = Vec::new();
        let sql = format!(
            "SELECT COUNT(*){}",
            organization_filter_sql(filter, &mut args)
        );
        self.count(&sql, args).await
    }

    async fn update_organization(&mut self, o: &Organization) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE organizations SET name = $2, slug = $3, max_allowed_memberships = $4, admin_delete_enabled = $5, \
                 public_metadata = $6, private_metadata = $7, updated_at = $8 WHERE id = $1",
                vec![
                    Arg::Uuid(o.id.0),
                    Arg::Text(o.name.clone()),
                    Arg::Text(o.slug.clone()),
                    Arg::Int(o.max_allowed_memberships),
                    Arg::Bool(o.admin_delete_enabled),
                    Arg::Text(json_text(&o.public_metadata)),
                    Arg::Text(json_text(&o.private_metadata)),
                    ts(o.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn delete_organization(&mut self, id: OrganizationId) -> CoreResult<()> {
        // Children first, explicitly: the order does not depend on each backend's cascade rules.
        for table in [
            "identity_project_memberships",
            "project_memberships",
            "passwords",
            "tokens",
            "identities",
            "projects",
            "memberships",
            "roles",
            // Nothing can be reinstated into an organization that is gone.
            "former_members",
        ] {
            self.0
                .execute(
                    &format!("DELETE FROM {table} WHERE org_id = $1"),
                    vec![Arg::Uuid(id.0)],
                )
                .await?;
        }
        self.0
            .execute(
                "DELETE FROM organizations WHERE id = $1",
                vec![Arg::Uuid(id.0)],
            )
            .await
            .map(drop)
    }

    async fn count_memberships(&mut self, org: OrganizationId) -> CoreResult<i64> {
        // Kept by triggers (migration 0002), so this is one row, not a scan.
        self.count(
            "SELECT member_count FROM organizations WHERE id = $1",
            vec![Arg::Uuid(org.0)],
        )
        .await
    }
}
