//! Organization memberships: their rows and filtered pages, the active-admin count and the permissions they give.

use async_trait::async_trait;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;
use roster_core::{PermissionSet, Timestamp};

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

/// The role's key is a subquery, not a join: with a join, PostgreSQL working from stale
/// statistics (after a large import, before autovacuum's analyze) hashed the organization's
/// whole membership and sorted it for a first page (6.5 ms at 12,000 members, growing with the
/// organization) instead of reading the first rows of `(org_id, id)` in order (0.13 ms).
pub(super) const MEMBERSHIP_SELECT: &str = "SELECT m.id, m.org_id, m.user_id, m.invite_email, m.role_id, \
     (SELECT r.role_key FROM roles r WHERE r.id = m.role_id), \
     m.status, m.is_active, m.last_invited_at, m.last_login_auth_method, m.last_login_time, \
     m.project_favorites, m.public_metadata, m.private_metadata, m.created_at, m.updated_at, \
     m.external_id, m.directory_user_name FROM memberships m";

/// How a membership query names its organization (`$1`): the equality, for every query but a
/// page of memberships.
pub(super) const ORG_EQUALS: &str = " WHERE m.org_id = $1";

/// The statement that reads a page of an organization's memberships, and its arguments
/// (`Session::list_memberships`). Public so that each store's tests can read its plan: a page
/// must walk the `(org_id, id)` index from where it starts, at any depth
/// (`parent_page_condition`).
pub fn list_memberships_statement(
    org: OrganizationId,
    filter: &MembershipFilter,
    page: Page,
) -> (String, Vec<Arg>) {
    let mut args = vec![Arg::Uuid(org.0)];
    let mut sql = format!(
        "{MEMBERSHIP_SELECT}{}",
        membership_filter_sql(&parent_page_condition("m.org_id", page), filter, &mut args)
    );
    let next = args.len() + 1;
    sql.push_str(&parent_page_tail("m.org_id", "m.id", page, next, &mut args));
    (sql, args)
}

/// The `WHERE` (and join) of a filtered membership query over `memberships m`, the organization
/// named by `org_condition` (`ORG_EQUALS`, or `parent_page_condition` for a page) as `$1`,
/// already in `args`.
pub(super) fn membership_filter_sql(
    org_condition: &str,
    filter: &MembershipFilter,
    args: &mut Vec<Arg>,
) -> String {
    let mut join = String::new();
    let mut sql = org_condition.to_owned();
    let roles = filter
        .role_keys
        .iter()
        .map(|k| Arg::Text(k.clone()))
        .collect();
    let roles = in_list("r.role_key", roles, args);
    if !roles.is_empty() {
        sql.push_str(&format!(
            " AND m.role_id IN (SELECT r.id FROM roles r WHERE r.org_id = $1{roles})"
        ));
    }
    let ids = filter
        .membership_ids
        .iter()
        .map(|m| Arg::Uuid(m.0))
        .collect();
    sql.push_str(&in_list("m.id", ids, args));
    let users = filter.user_ids.iter().map(|u| Arg::Uuid(u.0)).collect();
    sql.push_str(&in_list("m.user_id", users, args));
    let external = filter
        .external_ids
        .iter()
        .map(|e| Arg::Text(e.clone()))
        .collect();
    sql.push_str(&in_list("m.external_id", external, args));
    if filter.users_only {
        sql.push_str(" AND m.user_id IS NOT NULL");
    }
    if !filter.emails.is_empty()
        || filter.query.is_some()
        || !filter.directory_user_names.is_empty()
    {
        join.push_str(" LEFT JOIN users u ON u.id = m.user_id");
    }
    let emails = filter
        .emails
        .iter()
        .map(|e| Arg::Text(e.to_lowercase()))
        .collect();
    sql.push_str(&in_list("u.email_normalized", emails, args));
    let names = filter
        .directory_user_names
        .iter()
        .map(|n| Arg::Text(n.to_lowercase()))
        .collect();
    sql.push_str(&in_list(
        "COALESCE(LOWER(m.directory_user_name), u.email_normalized)",
        names,
        args,
    ));
    if let Some(q) = &filter.query {
        // LOWER on both sides: PostgreSQL's LIKE is case-sensitive, SQLite's is not.
        args.push(Arg::Text(contains_pattern(q)));
        let n = args.len();
        sql.push_str(&format!(
            " AND (u.email_normalized LIKE ${n} ESCAPE '!' \
             OR LOWER(COALESCE(u.first_name, '') || ' ' || COALESCE(u.last_name, '')) LIKE ${n} ESCAPE '!' \
             OR LOWER(COALESCE(m.invite_email, '')) LIKE ${n} ESCAPE '!')"
        ));
    }
    join + &sql
}

pub(super) fn membership_row(r: &impl SqlRow) -> CoreResult<Membership> {
    Ok(Membership {
        id: MembershipId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        user_id: r.opt_uuid(2)?.map(UserId),
        invite_email: r.opt_text(3)?,
        role_id: RoleId(r.uuid(4)?),
        role_key: r.text(5)?,
        status: MembershipStatus::parse(&r.text(6)?).ok_or_else(|| corrupt("membership status"))?,
        is_active: r.boolean(7)?,
        last_invited_at: r.opt_int(8)?.map(Timestamp),
        last_login_auth_method: r.opt_text(9)?,
        last_login_time: r.opt_int(10)?.map(Timestamp),
        project_favorites: match r.opt_text(11)? {
            Some(t) => Some(serde_json::from_str(&t).map_err(|_| corrupt("project favorites"))?),
            None => None,
        },
        public_metadata: metadata(&r.text(12)?)?,
        private_metadata: metadata(&r.text(13)?)?,
        created_at: Timestamp(r.int(14)?),
        updated_at: Timestamp(r.int(15)?),
        external_id: r.opt_text(16)?,
        directory_user_name: r.opt_text(17)?,
    })
}

pub(super) fn membership_args(m: &Membership) -> Vec<Arg> {
    vec![
        Arg::Uuid(m.id.0),
        Arg::Uuid(m.organization_id.0),
        Arg::OptUuid(m.user_id.map(|u| u.0)),
        Arg::OptText(m.invite_email.clone()),
        Arg::Uuid(m.role_id.0),
        Arg::Text(m.status.as_str().to_owned()),
        Arg::Bool(m.is_active),
        opt_ts(m.last_invited_at),
        Arg::OptText(m.last_login_auth_method.clone()),
        opt_ts(m.last_login_time),
        Arg::OptText(
            m.project_favorites
                .as_ref()
                .map(|f| serde_json::to_string(f).unwrap_or_default()),
        ),
        Arg::Text(json_text(&m.public_metadata)),
        Arg::Text(json_text(&m.private_metadata)),
        ts(m.created_at),
        ts(m.updated_at),
        Arg::OptText(m.external_id.clone()),
        Arg::OptText(m.directory_user_name.clone()),
    ]
}

#[async_trait]
impl<C: Conn> MembershipRows for SqlSession<C> {
    async fn insert_membership(&mut self, m: &Membership) -> CoreResult<()> {
        self.0
            .execute(
                "INSERT INTO memberships (id, org_id, user_id, invite_email, role_id, status, is_active, last_invited_at, \
                 last_login_auth_method, last_login_time, project_favorites, public_metadata, private_metadata, \
                 created_at, updated_at, external_id, directory_user_name) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                membership_args(m),
            )
            .await
            .map(drop)
    }

    async fn membership(
        &mut self,
        org: OrganizationId,
        id: MembershipId,
    ) -> CoreResult<Option<Membership>> {
        self.one(
            &format!("{MEMBERSHIP_SELECT} WHERE m.org_id = $1 AND m.id = $2"),
            vec![Arg::Uuid(org.0), Arg::Uuid(id.0)],
            membership_row,
        )
        .await
    }

    async fn membership_by_user(
        &mut self,
        org: OrganizationId,
        user: UserId,
    ) -> CoreResult<Option<Membership>> {
        self.one(
            &format!("{MEMBERSHIP_SELECT} WHERE m.org_id = $1 AND m.user_id = $2"),
            vec![Arg::Uuid(org.0), Arg::Uuid(user.0)],
            membership_row,
        )
        .await
    }

    async fn pending_invitation(
        &mut self,
        org: OrganizationId,
        email: &str,
    ) -> CoreResult<Option<Membership>> {
        // The unique index of pending invitations (migration 0005) answers it.
        self.one(
            &format!(
                "{MEMBERSHIP_SELECT} WHERE m.org_id = $1 AND m.status = 'invited' \
                 AND LOWER(m.invite_email) = $2"
            ),
            vec![Arg::Uuid(org.0), Arg::Text(email.to_lowercase())],
            membership_row,
        )
        .await
    }

    async fn list_memberships(
        &mut self,
        org: OrganizationId,
        filter: &MembershipFilter,
        page: Page,
    ) -> CoreResult<Vec<Membership>> {
        let (sql, args) = list_memberships_statement(org, filter, page);
        self.all(&sql, args, membership_row).await
    }

    async fn count_matching_memberships(
        &mut self,
        org: OrganizationId,
        filter: &MembershipFilter,
    ) -> CoreResult<i64> {
        let mut args = vec![Arg::Uuid(org.0)];
        // Every membership, or every user's: the organization's kept counts (migrations 0002 and
        // 0014), memberships less invitations by email. Counting them one by one read the whole
        // organization for every page a Clerk, SCIM or PlanetScale client asked for (a Clerk
        // page of 20 at 130,000 members: 9.9 ms on SQLite, 15.4 ms on PostgreSQL).
        let plain = MembershipFilter {
            users_only: filter.users_only,
            ..Default::default()
        };
        if *filter == plain {
            let kept = if filter.users_only {
                "member_count - invitation_count"
            } else {
                "member_count"
            };
            let sql =
                format!("SELECT COALESCE((SELECT {kept} FROM organizations WHERE id = $1), 0)");
            return self.count(&sql, args).await;
        }
        let sql = format!(
            "SELECT COUNT(*) FROM memberships m{}",
            membership_filter_sql(ORG_EQUALS, filter, &mut args)
        );
        self.count(&sql, args).await
    }

    async fn memberships_by_ids(
        &mut self,
        orgs: &[OrganizationId],
        ids: &[MembershipId],
    ) -> CoreResult<Vec<Membership>> {
        let (head, args) = in_organizations("m.id", orgs);
        self.fetch_in(&head, &args, ids, |i| i.0, "", membership_row)
            .await
    }

    async fn memberships_by_users(
        &mut self,
        orgs: &[OrganizationId],
        users: &[UserId],
    ) -> CoreResult<Vec<Membership>> {
        let (head, args) = in_organizations("m.user_id", orgs);
        self.fetch_in(&head, &args, users, |i| i.0, "", membership_row)
            .await
    }

    async fn update_membership(&mut self, m: &Membership) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE memberships SET org_id = $2, user_id = $3, invite_email = $4, role_id = $5, status = $6, \
                 is_active = $7, last_invited_at = $8, last_login_auth_method = $9, last_login_time = $10, \
                 project_favorites = $11, public_metadata = $12, private_metadata = $13, created_at = $14, \
                 updated_at = $15, external_id = $16, directory_user_name = $17 WHERE id = $1",
                membership_args(m),
            )
            .await
            .map(drop)
    }

    async fn delete_memberships(
        &mut self,
        org: OrganizationId,
        ids: &[MembershipId],
    ) -> CoreResult<u64> {
        self.execute_in(
            "DELETE FROM memberships WHERE org_id = $1 AND id IN",
            &[Arg::Uuid(org.0)],
            ids,
            |i| i.0,
            "",
        )
        .await
    }

    async fn count_active_admins(&mut self, org: OrganizationId) -> CoreResult<i64> {
        self.count(
            "SELECT COUNT(*) FROM memberships m JOIN roles r ON r.id = m.role_id \
             WHERE m.org_id = $1 AND r.org_id = $1 AND r.role_key = 'admin' AND m.user_id IS NOT NULL \
             AND m.status = 'accepted' AND m.is_active = TRUE",
            vec![Arg::Uuid(org.0)],
        )
        .await
    }

    async fn user_permissions(
        &mut self,
        org: OrganizationId,
        user: UserId,
    ) -> CoreResult<Option<PermissionSet>> {
        self.one(
            "SELECT r.permissions FROM memberships m JOIN roles r ON r.id = m.role_id \
             WHERE m.org_id = $1 AND m.user_id = $2 AND m.status = 'accepted' AND m.is_active = TRUE",
            vec![Arg::Uuid(org.0), Arg::Uuid(user.0)],
            |r| r.text(0).map(|t| PermissionSet::from_storage(&t)),
        )
        .await
    }

    async fn identity_permissions(
        &mut self,
        org: OrganizationId,
        identity: IdentityId,
    ) -> CoreResult<Option<PermissionSet>> {
        self.one(
            "SELECT r.permissions FROM identities i JOIN roles r ON r.id = i.role_id WHERE i.org_id = $1 AND i.id = $2",
            vec![Arg::Uuid(org.0), Arg::Uuid(identity.0)],
            |r| r.text(0).map(|t| PermissionSet::from_storage(&t)),
        )
        .await
    }
}

/// The read of the memberships `ids` (at most `CHUNK`) in any of `orgs`, as a removal reads its
/// targets. Public for the plan tests of the PostgreSQL store.
pub fn memberships_by_ids_statement(
    orgs: &[OrganizationId],
    ids: &[MembershipId],
) -> (String, Vec<Arg>) {
    let (head, args) = in_organizations("m.id", orgs);
    in_list_statement(&head, &args, ids, |i| i.0, "")
}

/// The read of the memberships of `users` (at most `CHUNK`) in any of `orgs`, as a removal
/// reads the members it names by user. Public for the plan tests of the PostgreSQL store.
pub fn memberships_by_users_statement(
    orgs: &[OrganizationId],
    users: &[UserId],
) -> (String, Vec<Arg>) {
    let (head, args) = in_organizations("m.user_id", orgs);
    in_list_statement(&head, &args, users, |u| u.0, "")
}

/// The head of a read of memberships in any of `orgs` whose `column` is in a list that follows
/// (`fetch_in`), and its arguments.
fn in_organizations(column: &str, orgs: &[OrganizationId]) -> (String, Vec<Arg>) {
    let head = format!(
        "{MEMBERSHIP_SELECT} WHERE m.org_id IN ({}) AND {column} IN",
        placeholders(1, orgs.len())
    );
    (head, orgs.iter().map(|o| Arg::Uuid(o.0)).collect())
}
