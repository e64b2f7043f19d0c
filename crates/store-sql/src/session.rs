//! `Session` implemented once in SQL over any `Conn`.

use std::sync::LazyLock;

use async_trait::async_trait;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::{read_tokens_then_lock, remove_memberships_then_record};
use roster_core::{CoreError, PermissionSet, Session, Timestamp};
use serde_json::Value;
use uuid::Uuid;

use crate::conn::{Arg, Conn, SqlRow};

/// Ids per statement in `IN (…)` lists: well under both backends' parameter limits.
const CHUNK: usize = 1000;

pub struct SqlSession<C: Conn>(pub C);

const ORG_COLS: &str = "id, name, slug, max_allowed_memberships, admin_delete_enabled, public_metadata, \
     private_metadata, created_by, created_at, updated_at";
const USER_COLS: &str =
    "id, email, first_name, last_name, username, image_url, created_at, updated_at";
const ROLE_COLS: &str =
    "id, org_id, role_key, name, description, permissions, built_in, created_at, updated_at";
/// How many columns `ORG_COLS` and `ROLE_COLS` name (a unit test keeps them in step).
const ORG_COLUMNS: usize = 10;
const ROLE_COLUMNS: usize = 9;
/// The role's key is a subquery, not a join: with a join, PostgreSQL working from stale
/// statistics (after a large import, before autovacuum's analyze) hashed the organization's
/// whole membership and sorted it for a first page (6.5 ms at 12,000 members, growing with the
/// organization) instead of reading the first rows of `(org_id, id)` in order (0.13 ms).
const MEMBERSHIP_SELECT: &str = "SELECT m.id, m.org_id, m.user_id, m.invite_email, m.role_id, \
     (SELECT r.role_key FROM roles r WHERE r.id = m.role_id), \
     m.status, m.is_active, m.last_invited_at, m.last_login_auth_method, m.last_login_time, \
     m.project_favorites, m.public_metadata, m.private_metadata, m.created_at, m.updated_at \
     FROM memberships m";
const PROJECT_COLS: &str = "id, org_id, name, slug, created_at, updated_at";
const PM_COLS: &str = "id, org_id, project_id, user_id, role, created_at, updated_at";
const IDENTITY_SELECT: &str = "SELECT i.id, i.org_id, i.name, i.role_id, r.role_key, i.created_at, i.updated_at \
     FROM identities i JOIN roles r ON r.id = i.role_id";
const IPM_COLS: &str = "id, org_id, project_id, identity_id, role, created_at, updated_at";
const TOKEN_COLS: &str = "id, kind, org_id, user_id, identity_id, created_by, name, secret_hash, permissions, expires_at, created_at, created_by_key";
/// How many columns `TOKEN_COLS` names.
const TOKEN_COLUMNS: usize = 12;
const PASSWORD_COLS: &str = "id, org_id, user_id, name, secret_hash, created_at";
const AUDIT_COLS: &str = "id, org_id, actor_kind, actor_id, action, target_kind, target_id, request_id, details, created_at";

fn corrupt(what: &str) -> CoreError {
    CoreError::internal(format!("stored {what} is not valid"))
}

fn metadata(text: &str) -> CoreResult<Metadata> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(corrupt("metadata")),
    }
}

fn json_text(m: &Metadata) -> String {
    Value::Object(m.clone()).to_string()
}

fn ts(t: Timestamp) -> Arg {
    Arg::Int(t.0)
}

fn opt_ts(t: Option<Timestamp>) -> Arg {
    Arg::OptInt(t.map(|t| t.0))
}

/// Arguments per audit event row.
const AUDIT_ARGS: usize = 10;

/// The most arguments `remove_memberships_recording` puts in one statement (PostgreSQL takes
/// up to 65,535); a batch needing more writes table by table.
const ONE_STATEMENT_MAX_ARGS: usize = 30_000;

/// `INSERT INTO audit_events … VALUES …` for `events`, their arguments appended to `args`
/// (numbered after those already there).
fn audit_insert(events: &[AuditEvent], args: &mut Vec<Arg>) -> String {
    let mut values = Vec::with_capacity(events.len());
    for e in events {
        values.push(format!("({})", placeholders(args.len() + 1, AUDIT_ARGS)));
        args.extend([
            Arg::Uuid(e.id.0),
            Arg::OptUuid(e.organization_id.map(|o| o.0)),
            Arg::Text(e.actor_kind.clone()),
            Arg::Text(e.actor_id.clone()),
            Arg::Text(e.action.clone()),
            Arg::Text(e.target_kind.clone()),
            Arg::Text(e.target_id.clone()),
            Arg::OptText(e.request_id.clone()),
            Arg::Text(e.details.to_string()),
            ts(e.created_at),
        ]);
    }
    format!(
        "INSERT INTO audit_events ({AUDIT_COLS}) VALUES {}",
        values.join(", ")
    )
}

/// `$from, $from+1, …` for `n` placeholders.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` AND <col> > $n` when the page has a cursor, and the `ORDER BY … LIMIT` tail.
fn page_sql(col: &str, page: Page, next: usize, args: &mut Vec<Arg>) -> String {
    page_sql_after(None, col, page, next, args)
}

/// `page_sql`, ordered first by the `leading` column (the parent, whose value is always `$1`),
/// and the cursor compared as the row `(leading, col)`: a page of a parent's rows, read from its
/// `(parent, id)` index (see `parent_page_condition`).
fn page_sql_after(
    leading: Option<&str>,
    col: &str,
    page: Page,
    next: usize,
    args: &mut Vec<Arg>,
) -> String {
    let (cmp, order) = if page.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let mut sql = String::new();
    if let Some(after) = page.after {
        match leading {
            Some(lead) => sql.push_str(&format!(" AND ({lead}, {col}) {cmp} ($1, ${next})")),
            None => sql.push_str(&format!(" AND {col} {cmp} ${next}")),
        }
        args.push(Arg::Uuid(after));
    }
    let leading = leading.map_or(String::new(), |c| format!("{c} {order}, "));
    sql.push_str(&format!(
        " ORDER BY {leading}{col} {order} LIMIT {}",
        page.limit
    ));
    if page.offset > 0 {
        sql.push_str(&format!(" OFFSET {}", page.offset));
    }
    sql
}

/// A `%text%` pattern for `LIKE … ESCAPE '!'` that matches `text` literally, lowercased.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('!', "!!")
        .replace('%', "!%")
        .replace('_', "!_");
    format!("%{escaped}%")
}

/// ` AND col IN ($n, …)` for a non-empty list (appending its values to `args`), else nothing.
fn in_list(col: &str, values: Vec<Arg>, args: &mut Vec<Arg>) -> String {
    if values.is_empty() {
        return String::new();
    }
    let sql = format!(
        " AND {col} IN ({})",
        placeholders(args.len() + 1, values.len())
    );
    args.extend(values);
    sql
}

/// The `FROM … WHERE` of a filtered organization query (alias `o`).
fn organization_filter_sql(filter: &OrganizationFilter, args: &mut Vec<Arg>) -> String {
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

/// The `WHERE` of a filtered user query.
fn user_filter_sql(filter: &UserFilter, args: &mut Vec<Arg>) -> String {
    let mut sql = " WHERE 1 = 1".to_owned();
    let emails = filter
        .emails
        .iter()
        .map(|e| Arg::Text(e.to_lowercase()))
        .collect();
    sql.push_str(&in_list("email_normalized", emails, args));
    if let Some(q) = &filter.query {
        args.push(Arg::Text(contains_pattern(q)));
        let n = args.len();
        sql.push_str(&format!(
            " AND (email_normalized LIKE ${n} ESCAPE '!' \
             OR LOWER(COALESCE(first_name, '') || ' ' || COALESCE(last_name, '')) LIKE ${n} ESCAPE '!' \
             OR LOWER(COALESCE(username, '')) LIKE ${n} ESCAPE '!')"
        ));
    }
    sql
}

/// How a membership query names its organization (`$1`): the equality, for every query but a
/// page of memberships.
const ORG_EQUALS: &str = " WHERE m.org_id = $1";

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

/// A list of one parent's rows (an organization's or a project's), paged by id and read from
/// its `(parent, id)` index (`list_page_statement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagedList {
    /// An organization's audit events.
    AuditEvents,
    /// An organization's machine identities, with their role's key.
    Identities,
    /// An organization's projects.
    Projects,
    /// An organization's passwords.
    Passwords,
    /// A project's user memberships.
    ProjectMemberships,
    /// A project's identity memberships.
    IdentityProjectMemberships,
}

impl PagedList {
    /// Every list, for the plan tests.
    pub const ALL: [PagedList; 6] = [
        PagedList::AuditEvents,
        PagedList::Identities,
        PagedList::Projects,
        PagedList::Passwords,
        PagedList::ProjectMemberships,
        PagedList::IdentityProjectMemberships,
    ];

    /// The `SELECT … FROM`, and the parent's and the id's columns as it names them.
    fn parts(self) -> (String, &'static str, &'static str) {
        let from = |cols: &str, table: &str| format!("SELECT {cols} FROM {table}");
        match self {
            PagedList::AuditEvents => (from(AUDIT_COLS, "audit_events"), "org_id", "id"),
            PagedList::Identities => (IDENTITY_SELECT.to_owned(), "i.org_id", "i.id"),
            PagedList::Projects => (from(PROJECT_COLS, "projects"), "org_id", "id"),
            PagedList::Passwords => (from(PASSWORD_COLS, "passwords"), "org_id", "id"),
            PagedList::ProjectMemberships => {
                (from(PM_COLS, "project_memberships"), "project_id", "id")
            }
            PagedList::IdentityProjectMemberships => (
                from(IPM_COLS, "identity_project_memberships"),
                "project_id",
                "id",
            ),
        }
    }
}

/// The statement that reads a page of `list`, the rows of `parent`, and its arguments. Public so
/// that each store's tests can read its plan, as `list_memberships_statement`.
pub fn list_page_statement(list: PagedList, parent: Uuid, page: Page) -> (String, Vec<Arg>) {
    let (select, parent_col, id_col) = list.parts();
    let mut args = vec![Arg::Uuid(parent)];
    let tail = parent_page_tail(parent_col, id_col, page, 2, &mut args);
    let condition = parent_page_condition(parent_col, page);
    (format!("{select}{condition}{tail}"), args)
}

/// The statement that reads a page of audit events, of one organization (read from its
/// `(org_id, id)` index as `list_page_statement` reads it: with no filter, the same statement)
/// or of the whole instance (in id order), with `filter`'s conditions.
pub fn list_audit_events_statement(
    org: Option<OrganizationId>,
    filter: &AuditFilter,
    page: Page,
) -> (String, Vec<Arg>) {
    let (select, parent, id) = PagedList::AuditEvents.parts();
    let mut args = Vec::new();
    let mut sql = match org {
        Some(o) => {
            args.push(Arg::Uuid(o.0));
            format!("{select}{}", parent_page_condition(parent, page))
        }
        None => format!("{select} WHERE 1 = 1"),
    };
    let mut equal = |column: &str, value: &Option<String>| {
        if let Some(v) = value {
            args.push(Arg::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ${}", args.len()));
        }
    };
    equal("action", &filter.action);
    equal("actor_id", &filter.actor_id);
    equal("target_id", &filter.target_id);
    for (compare, at) in [(">=", filter.since), ("<", filter.until)] {
        if let Some(t) = at {
            args.push(ts(t));
            sql.push_str(&format!(" AND created_at {compare} ${}", args.len()));
        }
    }
    let next = args.len() + 1;
    let tail = match org {
        Some(_) => parent_page_tail(parent, id, page, next, &mut args),
        None => page_sql(id, page, next, &mut args),
    };
    sql.push_str(&tail);
    (sql, args)
}

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

/// The `WHERE` of a page of a parent's rows (the parent `$1`, in column `parent`: an
/// organization's or a project's id), read from its `(parent, id)` index. Told here for an
/// organization's rows; a project's are the same with `project_id`. A first page names the
/// organization as a range of one value, and is ordered by `(org_id, id)`: the order keeps
/// `org_id`, and only that index gives it. A page after a cursor is ordered the same way and
/// compares the row `(org_id, id)` with `($1, cursor)` (`parent_page_tail`): both backends start
/// the walk at the cursor, and it ends at the organization's last row (the bound on the other
/// side, here).
///
/// Why: with `org_id = $1` the planner drops `org_id` from the order (it is fixed), and may walk
/// the primary key, filtering by organization. A prepared statement's generic plan did so on
/// PostgreSQL: a first page walked from the lowest id, through every row and dead row of the
/// organizations before this one (after many removals it took 1–6 ms instead of 0.1;
/// measured when this landed; see its commit), and a page after a cursor from the cursor, through
/// every later organization's rows, to the end of the table for a last page. With the range
/// and the scalar cursor `id > $2` instead, SQLite could not start at the cursor (it uses an
/// index's second column only after an equality on its first: a deep page in a
/// 1,000,000-member organization read the 900,000 rows before it). Projects, passwords and a
/// project's memberships had no `(parent, id)` index until migration 0003: a page of a
/// 1,000,000-member project sorted all of its rows on SQLite (117 ms), and on PostgreSQL the
/// first page of a project made after it walked the primary key through them (141 ms). The
/// plans are pinned by tests in both store crates.
fn parent_page_condition(parent: &str, page: Page) -> String {
    match (page.after, page.descending) {
        (None, _) => format!(" WHERE {parent} >= $1 AND {parent} <= $1"),
        (Some(_), false) => format!(" WHERE {parent} <= $1"),
        (Some(_), true) => format!(" WHERE {parent} >= $1"),
    }
}

/// The cursor and order of a page of a parent's rows (see `parent_page_condition`).
fn parent_page_tail(
    parent: &str,
    id: &str,
    page: Page,
    next: usize,
    args: &mut Vec<Arg>,
) -> String {
    page_sql_after(Some(parent), id, page, next, args)
}

/// The `WHERE` (and join) of a filtered membership query over `memberships m`, the organization
/// named by `org_condition` (`ORG_EQUALS`, or `parent_page_condition` for a page) as `$1`,
/// already in `args`.
fn membership_filter_sql(
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
    let users = filter.user_ids.iter().map(|u| Arg::Uuid(u.0)).collect();
    sql.push_str(&in_list("m.user_id", users, args));
    if filter.users_only {
        sql.push_str(" AND m.user_id IS NOT NULL");
    }
    if !filter.emails.is_empty() || filter.query.is_some() {
        join.push_str(" LEFT JOIN users u ON u.id = m.user_id");
    }
    let emails = filter
        .emails
        .iter()
        .map(|e| Arg::Text(e.to_lowercase()))
        .collect();
    sql.push_str(&in_list("u.email_normalized", emails, args));
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

/// `cols` (a `*_COLS` list) with each column taken from `table`, for a join.
fn qualified(table: &str, cols: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{table}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns of a joined row from `.1` on, so that the second table of a join is read by its
/// own row mapping.
struct Columns<'a, R>(&'a R, usize);

impl<R: SqlRow> SqlRow for Columns<'_, R> {
    fn uuid(&self, i: usize) -> CoreResult<Uuid> {
        self.0.uuid(self.1 + i)
    }
    fn opt_uuid(&self, i: usize) -> CoreResult<Option<Uuid>> {
        self.0.opt_uuid(self.1 + i)
    }
    fn int(&self, i: usize) -> CoreResult<i64> {
        self.0.int(self.1 + i)
    }
    fn opt_int(&self, i: usize) -> CoreResult<Option<i64>> {
        self.0.opt_int(self.1 + i)
    }
    fn text(&self, i: usize) -> CoreResult<String> {
        self.0.text(self.1 + i)
    }
    fn opt_text(&self, i: usize) -> CoreResult<Option<String>> {
        self.0.opt_text(self.1 + i)
    }
    fn boolean(&self, i: usize) -> CoreResult<bool> {
        self.0.boolean(self.1 + i)
    }
    fn bytes(&self, i: usize) -> CoreResult<Vec<u8>> {
        self.0.bytes(self.1 + i)
    }
}

fn org_row(r: &impl SqlRow) -> CoreResult<Organization> {
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

fn user_row(r: &impl SqlRow) -> CoreResult<User> {
    Ok(User {
        id: UserId(r.uuid(0)?),
        email: r.text(1)?,
        first_name: r.opt_text(2)?,
        last_name: r.opt_text(3)?,
        username: r.opt_text(4)?,
        image_url: r.opt_text(5)?,
        created_at: Timestamp(r.int(6)?),
        updated_at: Timestamp(r.int(7)?),
    })
}

fn role_row(r: &impl SqlRow) -> CoreResult<Role> {
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

fn membership_row(r: &impl SqlRow) -> CoreResult<Membership> {
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
    })
}

fn membership_args(m: &Membership) -> Vec<Arg> {
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
    ]
}

fn project_row(r: &impl SqlRow) -> CoreResult<Project> {
    Ok(Project {
        id: ProjectId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        name: r.text(2)?,
        slug: r.text(3)?,
        created_at: Timestamp(r.int(4)?),
        updated_at: Timestamp(r.int(5)?),
    })
}

fn pm_row(r: &impl SqlRow) -> CoreResult<ProjectMembership> {
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

fn identity_row(r: &impl SqlRow) -> CoreResult<Identity> {
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

fn ipm_row(r: &impl SqlRow) -> CoreResult<IdentityProjectMembership> {
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

fn token_row(r: &impl SqlRow) -> CoreResult<Token> {
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

fn password_row(r: &impl SqlRow) -> CoreResult<Password> {
    Ok(Password {
        id: PasswordId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        user_id: UserId(r.uuid(2)?),
        name: r.text(3)?,
        secret_hash: r.bytes(4)?,
        created_at: Timestamp(r.int(5)?),
    })
}

fn audit_row(r: &impl SqlRow) -> CoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: AuditEventId(r.uuid(0)?),
        organization_id: r.opt_uuid(1)?.map(OrganizationId),
        actor_kind: r.text(2)?,
        actor_id: r.text(3)?,
        action: r.text(4)?,
        target_kind: r.text(5)?,
        target_id: r.text(6)?,
        request_id: r.opt_text(7)?,
        details: serde_json::from_str(&r.text(8)?).map_err(|_| corrupt("audit details"))?,
        created_at: Timestamp(r.int(9)?),
    })
}

impl<C: Conn> SqlSession<C> {
    async fn all<T>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        map: impl Fn(&C::Row) -> CoreResult<T>,
    ) -> CoreResult<Vec<T>> {
        self.0.fetch_all(sql, args).await?.iter().map(map).collect()
    }

    async fn one<T>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        map: impl Fn(&C::Row) -> CoreResult<T>,
    ) -> CoreResult<Option<T>> {
        Ok(self.all(sql, args, map).await?.into_iter().next())
    }

    async fn count(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<i64> {
        self.one(sql, args, |r| r.int(0))
            .await
            .map(|c| c.unwrap_or(0))
    }

    /// Runs `sql_head` + `IN (…)` over `ids` (each bound as `uuid(id)`) in chunks, after the
    /// fixed `args`; returns the sum of affected rows. The ids are bound a chunk at a time, not
    /// copied whole first: a bulk removal's lists hold 100,000 of them.
    async fn execute_in<I: Copy + Sync>(
        &mut self,
        sql_head: &str,
        args: &[Arg],
        ids: &[I],
        uuid: fn(I) -> Uuid,
        tail: &str,
    ) -> CoreResult<u64> {
        let mut total = 0;
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "{sql_head} ({}){tail}",
                placeholders(args.len() + 1, chunk.len())
            );
            let mut a = Vec::with_capacity(args.len() + chunk.len());
            a.extend_from_slice(args);
            a.extend(chunk.iter().map(|i| Arg::Uuid(uuid(*i))));
            total += self.0.execute(&sql, a).await?;
        }
        Ok(total)
    }

    /// Reads `sql_head` + `IN (…)` over `ids` (each bound as `uuid(id)`) in chunks, after the
    /// fixed `args`, like `execute_in`.
    async fn fetch_in<I: Copy + Sync, T>(
        &mut self,
        sql_head: &str,
        args: &[Arg],
        ids: &[I],
        uuid: fn(I) -> Uuid,
        map: impl Fn(&C::Row) -> CoreResult<T> + Copy,
    ) -> CoreResult<Vec<T>> {
        // Most callers find a row per id at most: one allocation rather than doubling.
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!("{sql_head} ({})", placeholders(args.len() + 1, chunk.len()));
            let mut a = Vec::with_capacity(args.len() + chunk.len());
            a.extend_from_slice(args);
            a.extend(chunk.iter().map(|i| Arg::Uuid(uuid(*i))));
            out.extend(self.all(&sql, a, map).await?);
        }
        Ok(out)
    }
}

#[async_trait]
impl<C: Conn> Session for SqlSession<C> {
    async fn commit(self: Box<Self>) -> CoreResult<()> {
        self.0.commit().await
    }

    async fn savepoint(&mut self) -> CoreResult<()> {
        self.0.execute("SAVEPOINT request", vec![]).await.map(drop)
    }

    async fn release_savepoint(&mut self) -> CoreResult<()> {
        self.0
            .execute("RELEASE SAVEPOINT request", vec![])
            .await
            .map(drop)
    }

    async fn rollback_to_savepoint(&mut self) -> CoreResult<()> {
        // ROLLBACK TO keeps the savepoint open; releasing it too closes it, as the trait says.
        self.0
            .execute("ROLLBACK TO SAVEPOINT request", vec![])
            .await?;
        self.release_savepoint().await
    }

    async fn lock_organization_slug(&mut self, id: OrganizationId) -> CoreResult<Option<String>> {
        self.0.lock_organization_slug(id.0).await
    }

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

    async fn organization_in_context(
        &mut self,
        id: OrganizationId,
    ) -> CoreResult<Option<(Organization, i64, Vec<Role>)>> {
        // A row per role (or one with no role), the organization's columns after the role's.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}, {}, o.member_count FROM organizations o \
                 LEFT JOIN roles r ON r.org_id = o.id WHERE o.id = $1 ORDER BY r.id",
                qualified("r", ROLE_COLS),
                qualified("o", ORG_COLS)
            )
        });
        let rows = self.0.fetch_all(&SQL, vec![Arg::Uuid(id.0)]).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let after_role = Columns(first, ROLE_COLUMNS);
        let organization = org_row(&after_role)?;
        let count = after_role.int(ORG_COLUMNS)?;
        let mut roles = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.opt_uuid(0)?.is_some() {
                roles.push(role_row(r)?);
            }
        }
        Ok(Some((organization, count, roles)))
    }

    async fn count_memberships(&mut self, org: OrganizationId) -> CoreResult<i64> {
        // Kept by triggers (migration 0002), so this is one row, not a scan.
        self.count(
            "SELECT member_count FROM organizations WHERE id = $1",
            vec![Arg::Uuid(org.0)],
        )
        .await
    }

    async fn insert_user(&mut self, u: &User) -> CoreResult<()> {
        self.0
            .execute(
                &format!("INSERT INTO users ({USER_COLS}, email_normalized) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
                vec![
                    Arg::Uuid(u.id.0),
                    Arg::Text(u.email.clone()),
                    Arg::OptText(u.first_name.clone()),
                    Arg::OptText(u.last_name.clone()),
                    Arg::OptText(u.username.clone()),
                    Arg::OptText(u.image_url.clone()),
                    ts(u.created_at),
                    ts(u.updated_at),
                    Arg::Text(u.email.to_lowercase()),
                ],
            )
            .await
            .map(drop)
    }

    async fn user(&mut self, id: UserId) -> CoreResult<Option<User>> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
            vec![Arg::Uuid(id.0)],
            user_row,
        )
        .await
    }

    async fn user_by_email(&mut self, email: &str) -> CoreResult<Option<User>> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE email_normalized = $1"),
            vec![Arg::Text(email.to_lowercase())],
            user_row,
        )
        .await
    }

    async fn users_by_ids(&mut self, ids: &[UserId]) -> CoreResult<Vec<User>> {
        let head = format!("SELECT {USER_COLS} FROM users WHERE id IN");
        self.fetch_in(&head, &[], ids, |u| u.0, user_row).await
    }

    async fn list_users(&mut self, filter: &UserFilter, page: Page) -> CoreResult<Vec<User>> {
        let mut args = Vec::new();
        let mut sql = format!(
            "SELECT {USER_COLS} FROM users{}",
            user_filter_sql(filter, &mut args)
        );
        let next = args.len() + 1;
        sql.push_str(&page_sql("id", page, next, &mut args));
        self.all(&sql, args, user_row).await
    }

    async fn count_users(&mut self, filter: &UserFilter) -> CoreResult<i64> {
        let mut args = Vec::new();
        let sql = format!(
            "SELECT COUNT(*) FROM users{}",
            user_filter_sql(filter, &mut args)
        );
        self.count(&sql, args).await
    }

    async fn update_user(&mut self, u: &User) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE users SET first_name = $2, last_name = $3, username = $4, image_url = $5, updated_at = $6 WHERE id = $1",
                vec![
                    Arg::Uuid(u.id.0),
                    Arg::OptText(u.first_name.clone()),
                    Arg::OptText(u.last_name.clone()),
                    Arg::OptText(u.username.clone()),
                    Arg::OptText(u.image_url.clone()),
                    ts(u.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn delete_user(&mut self, id: UserId) -> CoreResult<()> {
        for sql in [
            "DELETE FROM project_memberships WHERE user_id = $1",
            "DELETE FROM passwords WHERE user_id = $1",
            "DELETE FROM tokens WHERE user_id = $1",
            "DELETE FROM memberships WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            self.0.execute(sql, vec![Arg::Uuid(id.0)]).await?;
        }
        Ok(())
    }

    async fn organizations_of_user(&mut self, user: UserId) -> CoreResult<Vec<OrganizationId>> {
        self.all(
            "SELECT org_id FROM memberships WHERE user_id = $1",
            vec![Arg::Uuid(user.0)],
            |r| r.uuid(0).map(OrganizationId),
        )
        .await
    }

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

    async fn insert_membership(&mut self, m: &Membership) -> CoreResult<()> {
        self.0
            .execute(
                "INSERT INTO memberships (id, org_id, user_id, invite_email, role_id, status, is_active, last_invited_at, \
                 last_login_auth_method, last_login_time, project_favorites, public_metadata, private_metadata, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
        let sql = format!(
            "SELECT COUNT(*) FROM memberships m{}",
            membership_filter_sql(ORG_EQUALS, filter, &mut args)
        );
        self.count(&sql, args).await
    }

    async fn memberships_by_ids(
        &mut self,
        org: OrganizationId,
        ids: &[MembershipId],
    ) -> CoreResult<Vec<Membership>> {
        let head = format!("{MEMBERSHIP_SELECT} WHERE m.org_id = $1 AND m.id IN");
        self.fetch_in(&head, &[Arg::Uuid(org.0)], ids, |i| i.0, membership_row)
            .await
    }

    async fn memberships_by_users(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
    ) -> CoreResult<Vec<Membership>> {
        let head = format!("{MEMBERSHIP_SELECT} WHERE m.org_id = $1 AND m.user_id IN");
        self.fetch_in(&head, &[Arg::Uuid(org.0)], users, |i| i.0, membership_row)
            .await
    }

    async fn update_membership(&mut self, m: &Membership) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE memberships SET org_id = $2, user_id = $3, invite_email = $4, role_id = $5, status = $6, \
                 is_active = $7, last_invited_at = $8, last_login_auth_method = $9, last_login_time = $10, \
                 project_favorites = $11, public_metadata = $12, private_metadata = $13, created_at = $14, \
                 updated_at = $15 WHERE id = $1",
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

    async fn insert_project(&mut self, p: &Project) -> CoreResult<()> {
        self.0
            .execute(
                &format!("INSERT INTO projects ({PROJECT_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"),
                vec![
                    Arg::Uuid(p.id.0),
                    Arg::Uuid(p.organization_id.0),
                    Arg::Text(p.name.clone()),
                    Arg::Text(p.slug.clone()),
                    ts(p.created_at),
                    ts(p.updated_at),
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
                "UPDATE projects SET name = $2, updated_at = $3 WHERE id = $1",
                vec![
                    Arg::Uuid(p.id.0),
                    Arg::Text(p.name.clone()),
                    ts(p.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn delete_project(&mut self, id: ProjectId) -> CoreResult<()> {
        for sql in [
            "DELETE FROM identity_project_memberships WHERE project_id = $1",
            "DELETE FROM project_memberships WHERE project_id = $1",
            "DELETE FROM projects WHERE id = $1",
        ] {
            self.0.execute(sql, vec![Arg::Uuid(id.0)]).await?;
        }
        Ok(())
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
    ) -> CoreResult<u64> {
        self.execute_in(
            "DELETE FROM project_memberships WHERE org_id = $1 AND user_id IN",
            &[Arg::Uuid(org.0)],
            users,
            |u| u.0,
            "",
        )
        .await
    }

    async fn delete_project_memberships_returning_users(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
    ) -> CoreResult<Vec<UserId>> {
        let mut out = Vec::new();
        for chunk in users.chunks(CHUNK) {
            let sql = format!(
                "DELETE FROM project_memberships WHERE org_id = $1 AND user_id IN ({}) RETURNING user_id",
                placeholders(2, chunk.len())
            );
            let mut args = vec![Arg::Uuid(org.0)];
            args.extend(chunk.iter().map(|u| Arg::Uuid(u.0)));
            out.extend(self.all(&sql, args, |r| r.uuid(0).map(UserId)).await?);
        }
        Ok(out)
    }

    async fn remove_memberships_recording(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
        ids: &[MembershipId],
        events: &[AuditEvent],
    ) -> CoreResult<Vec<UserId>> {
        let args_needed = 1 + users.len() + ids.len() + events.len() * AUDIT_ARGS;
        let one_statement = C::WRITES_IN_WITH
            && !users.is_empty()
            && !ids.is_empty()
            && !events.is_empty()
            && args_needed <= ONE_STATEMENT_MAX_ARGS;
        if !one_statement {
            return remove_memberships_then_record(self, org, users, ids, events).await;
        }
        // Statements in `WITH` all run, to completion, whether or not the query reads them.
        let mut args = Vec::with_capacity(args_needed);
        args.push(Arg::Uuid(org.0));
        let user_list = placeholders(args.len() + 1, users.len());
        args.extend(users.iter().map(|u| Arg::Uuid(u.0)));
        let id_list = placeholders(args.len() + 1, ids.len());
        args.extend(ids.iter().map(|m| Arg::Uuid(m.0)));
        let insert = audit_insert(events, &mut args);
        let sql = format!(
            "WITH cascaded AS (DELETE FROM project_memberships \
               WHERE org_id = $1 AND user_id IN ({user_list}) RETURNING user_id), \
             removed AS (DELETE FROM memberships WHERE org_id = $1 AND id IN ({id_list})), \
             recorded AS ({insert}) \
             SELECT user_id FROM cascaded"
        );
        self.all(&sql, args, |r| r.uuid(0).map(UserId)).await
    }

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

    async fn delete_identity(&mut self, id: IdentityId) -> CoreResult<()> {
        for sql in [
            "DELETE FROM identity_project_memberships WHERE identity_id = $1",
            "DELETE FROM tokens WHERE identity_id = $1",
            "DELETE FROM identities WHERE id = $1",
        ] {
            self.0.execute(sql, vec![Arg::Uuid(id.0)]).await?;
        }
        Ok(())
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
        self.fetch_in(&head, &[], ids, |i| i.0, token_row).await
    }

    async fn lock_organization_reading_tokens(
        &mut self,
        id: OrganizationId,
        tokens: &[TokenId],
    ) -> CoreResult<(Option<String>, Vec<Token>)> {
        if !C::WRITES_IN_WITH || tokens.is_empty() || tokens.len() > CHUNK {
            return read_tokens_then_lock(self, id, tokens).await;
        }
        // One row per token found, or one row of nulls if none is: each row also gives the slug
        // of the organization locked, null if there was none to lock (`FOR UPDATE`, as
        // `PgConn::lock_organization_slug`).
        let sql = format!(
            "WITH locked AS (SELECT slug FROM organizations WHERE id = $1 FOR UPDATE) \
             SELECT t.*, (SELECT slug FROM locked) FROM (SELECT 1) AS one \
             LEFT JOIN (SELECT {TOKEN_COLS} FROM tokens WHERE id IN ({})) AS t ON TRUE",
            placeholders(2, tokens.len())
        );
        let mut args = vec![Arg::Uuid(id.0)];
        args.extend(tokens.iter().map(|t| Arg::Uuid(t.0)));
        let rows = self.0.fetch_all(&sql, args).await?;
        let locked = match rows.first() {
            Some(r) => r.opt_text(TOKEN_COLUMNS)?,
            None => return Err(corrupt("organization lock")),
        };
        let mut found = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.opt_uuid(0)?.is_some() {
                found.push(token_row(r)?);
            }
        }
        Ok((locked, found))
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
    ) -> CoreResult<u64> {
        self.execute_in(
            "DELETE FROM tokens WHERE org_id = $1 AND kind = 'service' AND created_by IN",
            &[Arg::Uuid(org.0)],
            users,
            |u| u.0,
            "",
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
    ) -> CoreResult<u64> {
        self.execute_in(
            "DELETE FROM passwords WHERE org_id = $1 AND user_id IN",
            &[Arg::Uuid(org.0)],
            users,
            |u| u.0,
            "",
        )
        .await
    }

    async fn insert_audit_events(&mut self, events: &[AuditEvent]) -> CoreResult<()> {
        // Many rows per statement: a bulk removal writes one event per membership.
        for chunk in events.chunks(100) {
            let mut args = Vec::with_capacity(chunk.len() * 10);
            let sql = audit_insert(chunk, &mut args);
            self.0.execute(&sql, args).await?;
        }
        Ok(())
    }

    async fn list_audit_events(
        &mut self,
        org: Option<OrganizationId>,
        filter: &AuditFilter,
        page: Page,
    ) -> CoreResult<Vec<AuditEvent>> {
        let (sql, args) = list_audit_events_statement(org, filter, page);
        self.all(&sql, args, audit_row).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_column_count_matches_the_token_columns() {
        assert_eq!(TOKEN_COLS.split(',').count(), TOKEN_COLUMNS);
    }

    #[test]
    fn the_organization_and_role_column_counts_match_their_columns() {
        assert_eq!(ORG_COLS.split(',').count(), ORG_COLUMNS);
        assert_eq!(ROLE_COLS.split(',').count(), ROLE_COLUMNS);
    }

    #[test]
    fn qualified_columns_name_their_table_each() {
        assert_eq!(qualified("r", "id, org_id, name"), "r.id, r.org_id, r.name");
    }
}
