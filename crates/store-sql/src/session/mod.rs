//! `Session` implemented once in SQL over any `Conn`, a file per resource (each implementing
//! that resource's rows trait); here the session itself, the helpers every file shares, and
//! what belongs to the transaction (commit, the organization's lock, a batch of
//! removals' writes across tables).

mod audit;
mod credentials;
mod events;
mod former_members;
mod idempotency;
mod identities;
mod memberships;
mod organizations;
mod projects;
mod roles;
mod users;
mod webhooks;

use std::sync::LazyLock;

use async_trait::async_trait;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::{read_tokens_then_lock, remove_memberships_then_cascade};
use roster_core::webhooks::{BornDelivery, DeliveryHandOff};
use roster_core::{CoreError, Session, Timestamp};
use serde_json::Value;
use uuid::Uuid;

use crate::conn::{Arg, Conn, SqlRow};
use audit::*;
pub use credentials::list_tokens_statement;
use credentials::*;
use events::*;
use former_members::*;
use identities::*;
pub use memberships::{
    list_memberships_statement, memberships_by_ids_statement, memberships_by_users_statement,
};
use organizations::*;
use projects::*;
use roles::*;
use webhooks::*;
pub use webhooks::{
    claim_due_deliveries_statement, delete_owed_deliveries_statement, record_deliveries_statement,
};

/// Ids per statement in `IN (…)` lists: well under both backends' parameter limits.
const CHUNK: usize = 1000;

/// A session over a connection, and the events its transaction has written so far (counted
/// into the store's total when it commits, their deliveries claimed at birth handed over).
pub struct SqlSession<C: Conn>(pub C, pub EventTally);

/// What a transaction's events come to when it commits: their count, added to the store's
/// total for `/metrics` (a dry run or a failed request writes nothing that counts), and the
/// deliveries it claimed as it wrote them, handed to this process's delivery worker.
#[derive(Debug, Default)]
pub struct EventTally {
    pending: u64,
    committed: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    hand_off: Option<std::sync::Arc<DeliveryHandOff>>,
    born: Vec<BornDelivery>,
}

impl EventTally {
    /// A tally of a transaction, adding to `total` when it commits, and handing what it claims
    /// to `hand_off` (if the store has one).
    pub fn into_total(
        total: &std::sync::Arc<std::sync::atomic::AtomicU64>,
        hand_off: Option<std::sync::Arc<DeliveryHandOff>>,
    ) -> Self {
        EventTally {
            committed: Some(total.clone()),
            hand_off,
            ..EventTally::default()
        }
    }

    pub(crate) fn wrote(&mut self, n: usize) {
        self.pending += n as u64;
    }

    /// The lease a delivery written now is claimed for, if the worker takes deliveries now.
    pub(crate) fn birth_lease(&self) -> Option<std::time::Duration> {
        self.hand_off.as_ref().and_then(|h| h.lease())
    }

    pub(crate) fn claimed(&mut self, born: impl IntoIterator<Item = BornDelivery>) {
        self.born.extend(born);
    }

    fn committed(self) {
        if let Some(total) = self.committed {
            total.fetch_add(self.pending, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(hand_off) = self.hand_off
            && !self.born.is_empty()
        {
            hand_off.hand_over(self.born);
        }
    }
}

/// The delivery worker's hand-off, once one is registered (`Store::hand_deliveries_to`): a
/// store's write transactions claim the deliveries they write for it.
#[derive(Debug, Default)]
pub struct HandOffSlot(std::sync::RwLock<Option<std::sync::Arc<DeliveryHandOff>>>);

impl HandOffSlot {
    pub fn set(&self, to: std::sync::Arc<DeliveryHandOff>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(to);
    }

    pub fn get(&self) -> Option<std::sync::Arc<DeliveryHandOff>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

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

/// The most arguments `remove_memberships_cascading` puts in one statement (PostgreSQL takes
/// up to 65,535); a batch needing more writes table by table.
const ONE_STATEMENT_MAX_ARGS: usize = 30_000;

/// `$from, $from+1, …` for `n` placeholders.
pub fn placeholders(from: usize, n: usize) -> String {
    // Written into one string: every statement of a request builds its lists here, and a
    // string per placeholder joined afterwards cost a removal some 20,000 instructions.
    use std::fmt::Write as _;
    let mut out = String::with_capacity(n * 6);
    for i in from..from + n {
        if i > from {
            out.push_str(", ");
        }
        let _ = write!(out, "${i}");
    }
    out
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

/// A list of one parent's rows (an organization's or a project's), paged by id and read from
/// its `(parent, id)` index (`list_page_statement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagedList {
    /// An organization's audit events.
    AuditEvents,
    /// An organization's membership events.
    Events,
    /// An organization's webhook endpoints.
    WebhookEndpoints,
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
    pub const ALL: [PagedList; 8] = [
        PagedList::AuditEvents,
        PagedList::Events,
        PagedList::WebhookEndpoints,
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
            PagedList::Events => (from(EVENT_COLS, "events"), "org_id", "id"),
            PagedList::WebhookEndpoints => {
                (from(ENDPOINT_COLS, "webhook_endpoints"), "org_id", "id")
            }
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
            let (sql, a) = in_list_statement(sql_head, args, chunk, uuid, tail);
            total += self.0.execute(&sql, a).await?;
        }
        Ok(total)
    }

    /// Reads `sql_head` + `IN (…)` + `tail` over `ids` (each bound as `uuid(id)`) in chunks,
    /// after the fixed `args`, like `execute_in` (a `DELETE … RETURNING` too).
    async fn fetch_in<I: Copy + Sync, T>(
        &mut self,
        sql_head: &str,
        args: &[Arg],
        ids: &[I],
        uuid: fn(I) -> Uuid,
        tail: &str,
        map: impl Fn(&C::Row) -> CoreResult<T> + Copy,
    ) -> CoreResult<Vec<T>> {
        // Most callers find a row per id at most: one allocation rather than doubling.
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let (sql, a) = in_list_statement(sql_head, args, chunk, uuid, tail);
            out.extend(self.all(&sql, a, map).await?);
        }
        Ok(out)
    }
}

#[async_trait]
impl<C: Conn> Session for SqlSession<C> {
    async fn commit(self: Box<Self>) -> CoreResult<()> {
        let SqlSession(conn, tally) = *self;
        conn.commit().await?;
        tally.committed();
        Ok(())
    }

    async fn lock_users(&mut self, ids: &[UserId]) -> CoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = ids.iter().map(|u| u.0).collect();
        self.0.lock_users(&ids).await
    }

    async fn lock_organization_slugs(
        &mut self,
        ids: &[OrganizationId],
    ) -> CoreResult<Vec<(OrganizationId, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = ids.iter().map(|o| o.0).collect();
        let locked = self.0.lock_organization_slugs(&ids).await?;
        Ok(locked
            .into_iter()
            .map(|(id, slug)| (OrganizationId(id), slug))
            .collect())
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

    async fn remove_memberships_cascading(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
        ids: &[MembershipId],
    ) -> CoreResult<Vec<CascadedProjectMembership>> {
        let args_needed = 1 + users.len() + ids.len();
        let one_statement = C::WRITES_IN_WITH
            && !users.is_empty()
            && !ids.is_empty()
            && args_needed <= ONE_STATEMENT_MAX_ARGS;
        if !one_statement {
            return remove_memberships_then_cascade(self, org, users, ids).await;
        }
        let (sql, args) = remove_memberships_cascading_statement(org, users, ids);
        self.all(&sql, args, cascaded_row).await
    }

    async fn lock_organizations_reading_tokens(
        &mut self,
        ids: &[OrganizationId],
        tokens: &[TokenId],
    ) -> CoreResult<(Vec<(OrganizationId, String)>, Vec<Token>)> {
        if !C::WRITES_IN_WITH || ids.is_empty() || tokens.is_empty() || tokens.len() > CHUNK {
            return read_tokens_then_lock(self, ids, tokens).await;
        }
        // A row per token found, then a row per organization locked (`FOR UPDATE` in id order,
        // as `PgConn::lock_organization_slugs`): a token's row has no organization, an
        // organization's no token. The transaction holds these locks from its `BEGIN`
        // (`Store::begin_locking`), so the statement waits for nobody and its tokens are
        // read as they are once the locks are held.
        let (sql, args) = lock_organizations_reading_tokens_statement(ids, tokens);
        let rows = self.0.fetch_all(&sql, args).await?;
        let (mut locked, mut found) = (Vec::with_capacity(ids.len()), Vec::new());
        for r in &rows {
            match r.opt_uuid(TOKEN_COLUMNS)? {
                Some(org) => locked.push((OrganizationId(org), r.text(TOKEN_COLUMNS + 1)?)),
                None => found.push(token_row(r)?),
            }
        }
        Ok((locked, found))
    }
}

/// `sql_head (…) tail` naming `ids` (each bound as `uuid(id)`) in the list, after the fixed
/// `args`; and all its arguments.
fn in_list_statement<I: Copy>(
    sql_head: &str,
    args: &[Arg],
    ids: &[I],
    uuid: fn(I) -> Uuid,
    tail: &str,
) -> (String, Vec<Arg>) {
    let sql = format!(
        "{sql_head} ({}){tail}",
        placeholders(args.len() + 1, ids.len())
    );
    let mut a = Vec::with_capacity(args.len() + ids.len());
    a.extend_from_slice(args);
    a.extend(ids.iter().map(|i| Arg::Uuid(uuid(*i))));
    (sql, a)
}

/// The statement that deletes the memberships `ids` of `org` and, in its `WITH`, the project
/// memberships in `org` of `users` (theirs), returning those (PostgreSQL; elsewhere two
/// statements). Public for the plan tests of the PostgreSQL store.
pub fn remove_memberships_cascading_statement(
    org: OrganizationId,
    users: &[UserId],
    ids: &[MembershipId],
) -> (String, Vec<Arg>) {
    // Statements in `WITH` all run, to completion, whether or not the query reads them.
    let mut args = Vec::with_capacity(1 + users.len() + ids.len());
    args.push(Arg::Uuid(org.0));
    let user_list = placeholders(args.len() + 1, users.len());
    args.extend(users.iter().map(|u| Arg::Uuid(u.0)));
    let id_list = placeholders(args.len() + 1, ids.len());
    args.extend(ids.iter().map(|m| Arg::Uuid(m.0)));
    let sql = format!(
        "WITH removed AS (DELETE FROM memberships WHERE org_id = $1 AND id IN ({id_list})) \
         DELETE FROM project_memberships WHERE org_id = $1 AND user_id IN ({user_list}) \
         RETURNING {CASCADED_COLS}"
    );
    (sql, args)
}

/// The statement that locks the organizations `ids` and reads the tokens `tokens`: a row per
/// token found, then a row per organization locked (PostgreSQL; elsewhere two statements).
/// Public for the plan tests of the PostgreSQL store.
pub fn lock_organizations_reading_tokens_statement(
    ids: &[OrganizationId],
    tokens: &[TokenId],
) -> (String, Vec<Arg>) {
    let no_token = ["NULL"; TOKEN_COLUMNS].join(", ");
    let sql = format!(
        "WITH locked AS (SELECT id, slug FROM organizations WHERE id IN ({}) \
           ORDER BY id FOR UPDATE) \
         SELECT {TOKEN_COLS}, NULL, NULL FROM tokens WHERE id IN ({}) \
         UNION ALL SELECT {no_token}, id, slug FROM locked",
        placeholders(1, ids.len()),
        placeholders(ids.len() + 1, tokens.len())
    );
    let mut args: Vec<Arg> = ids.iter().map(|o| Arg::Uuid(o.0)).collect();
    args.extend(tokens.iter().map(|t| Arg::Uuid(t.0)));
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_the_first_and_separated_by_commas() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 1), "$1");
        assert_eq!(placeholders(9, 0), "");
    }

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
