//! roster's `Store` on SQLite, the embedded default. The statements are the shared ones of
//! `roster-store-sql`; this crate supplies the connections, the schema and the locking: one
//! writer connection whose transactions start with `BEGIN IMMEDIATE` (so every write
//! transaction holds the database's write lock from its first statement, which serialises
//! changes to an organization), and a few read-only connections. WAL mode with
//! `synchronous = FULL`: a committed change survives a power cut (but for a transaction begun
//! by `begin_lazily`, which the caller can afford to lose).
//!
//! Statements run on the calling task's thread, with the connection held for the session's
//! length, rather than on a separate worker thread: a removal is about eight short statements,
//! and a thread hand-off per statement cost more than the statements themselves (see
//! `docs/benchmarks.md`). That includes what may take a while (a commit's fsync, a bulk
//! removal's statements over a thousand ids): there is one writer connection, so at most one
//! async worker waits on the writer at any time and the others serve every other request. Run
//! under `block_in_place` instead, each of those moved the worker's queue to another thread; the
//! extra threads bought no throughput and, each allocating in an arena of its own, kept about
//! 20 MiB more of the server's memory over a benchmark run.
//!
//! It must not depend on HTTP or on any dialect.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use roster_core::error::CoreResult;
use roster_core::{CoreError, Session, Store};
use roster_store_sql::{
    Arg, Conn, EventTally, HandOffSlot, Migration, SqlRow, SqlSession, constraint_error,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

/// The schema, version by version: this backend's SQL for each migration of the one list.
pub const MIGRATIONS: &[Migration] = roster_store_sql::schema_migrations!();

#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    /// Whether the writer's last transaction was begun by `begin_lazily`.
    writer_lazy: Arc<AtomicBool>,
    readers: Arc<Vec<Arc<Mutex<Connection>>>>,
    next_reader: Arc<AtomicUsize>,
    /// The events committed through this store (`EventTally`).
    events_written: Arc<std::sync::atomic::AtomicU64>,
    /// The delivery worker's hand-off, for the deliveries write transactions claim.
    hand_off: Arc<HandOffSlot>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.readers.len())
            .finish()
    }
}

fn open(path: &Path, flags: OpenFlags) -> CoreResult<Connection> {
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        CoreError::Unavailable(format!(
            "cannot open the SQLite database {}: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(db_error)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`, without migrating.
    pub async fn open(path: &Path, readers: u32) -> CoreResult<Self> {
        let writer = open(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // temp_store = MEMORY: a statement inside a transaction that may have to be undone alone
        // (a multi-row write, a savepoint) keeps the pages it may restore in a statement
        // journal; in a temporary file that was ≈10% of a removal's time when group commit
        // gave each removal a savepoint (profiled), in memory it is a copy. The transaction
        // bounds its size.
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA temp_store = MEMORY;",
            )
            .map_err(db_error)?;
        let readers = (0..readers.max(1))
            .map(|_| {
                open(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map(|c| Arc::new(Mutex::new(c)))
            })
            .collect::<CoreResult<Vec<_>>>()?;
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(writer)),
            writer_lazy: Arc::new(AtomicBool::new(false)),
            readers: Arc::new(readers),
            next_reader: Arc::default(),
            events_written: Arc::default(),
            hand_off: Arc::default(),
        })
    }

    pub async fn migrate(&self) -> CoreResult<Vec<roster_store_sql::Migration>> {
        roster_store_sql::migrations::apply(self.transaction().await?, MIGRATIONS).await
    }

    /// The writer, in a transaction that holds the database's write lock.
    async fn transaction(&self) -> CoreResult<SqliteConn> {
        self.writer_in(true).await
    }

    /// The writer in a transaction, its commit synced to the disk or (not `durable`) only
    /// appended to the log, which in WAL mode is `synchronous = NORMAL`: the next durable
    /// commit's sync covers it too. The level can only change between transactions; it is
    /// changed only when the writer's last transaction asked for the other.
    async fn writer_in(&self, durable: bool) -> CoreResult<SqliteConn> {
        let guard = self.writer.clone().lock_owned().await;
        // Read and written only under the writer's lock.
        if self.writer_lazy.load(Ordering::Relaxed) == durable {
            let level = if durable { "FULL" } else { "NORMAL" };
            guard
                .execute_batch(&format!("PRAGMA synchronous = {level}"))
                .map_err(db_error)?;
            self.writer_lazy.store(!durable, Ordering::Relaxed);
        }
        guard.execute_batch("BEGIN IMMEDIATE").map_err(db_error)?;
        Ok(SqliteConn {
            guard,
            in_transaction: true,
        })
    }

    /// A free reader if there is one, else the next in turn.
    async fn reader(&self) -> SqliteConn {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(guard) = self.readers[(start + i) % n].clone().try_lock_owned() {
                return SqliteConn {
                    guard,
                    in_transaction: false,
                };
            }
        }
        SqliteConn {
            guard: self.readers[start % n].clone().lock_owned().await,
            in_transaction: false,
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn events_written(&self) -> u64 {
        self.events_written
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn hand_deliveries_to(&self, to: Arc<roster_core::webhooks::DeliveryHandOff>) {
        self.hand_off.set(to);
    }

    async fn read(&self) -> CoreResult<Box<dyn Session>> {
        Ok(Box::new(SqlSession(
            self.reader().await,
            EventTally::default(),
        )))
    }

    async fn begin(&self) -> CoreResult<Box<dyn Session>> {
        Ok(Box::new(SqlSession(
            self.transaction().await?,
            EventTally::into_total(&self.events_written, self.hand_off.get()),
        )))
    }

    async fn begin_lazily(&self) -> CoreResult<Box<dyn Session>> {
        Ok(Box::new(SqlSession(
            self.writer_in(false).await?,
            EventTally::into_total(&self.events_written, None),
        )))
    }

    async fn ping(&self) -> CoreResult<()> {
        self.reader()
            .await
            .guard
            .execute_batch("SELECT 1")
            .map_err(db_error)
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

/// A connection held for a session: a reader, or the writer in a transaction (rolled back if
/// dropped without `commit`).
pub struct SqliteConn {
    guard: OwnedMutexGuard<Connection>,
    in_transaction: bool,
}

impl Drop for SqliteConn {
    fn drop(&mut self) {
        if self.in_transaction {
            // Nothing half-done: an abandoned transaction leaves no trace.
            let _ = self.guard.execute_batch("ROLLBACK");
        }
    }
}

fn value(arg: &Arg) -> Value {
    let uuid = |u: &Uuid| Value::Blob(u.as_bytes().to_vec());
    match arg {
        Arg::Uuid(u) => uuid(u),
        Arg::OptUuid(u) => u.as_ref().map_or(Value::Null, uuid),
        Arg::Int(i) => Value::Integer(*i),
        Arg::OptInt(i) => i.map_or(Value::Null, Value::Integer),
        Arg::Text(s) => Value::Text(s.clone()),
        Arg::OptText(s) => s.clone().map_or(Value::Null, Value::Text),
        Arg::Bool(b) => Value::Integer(i64::from(*b)),
        Arg::Bytes(b) => Value::Blob(b.clone()),
    }
}

/// Prepares `sql` (cached) and binds `args` by number: `$1` is the first argument wherever it
/// stands in the text. The statements are written with `$N` for both backends; here each is
/// read as SQLite's `?N`, whose parameter index is N itself. (Bound by name instead, each
/// parameter's name is found by a walk of the statement's list of names: a statement of a
/// thousand parameters, a hundred audit events, took a million steps to bind.)
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    args: &[Arg],
) -> CoreResult<rusqlite::CachedStatement<'c>> {
    let mut stmt = conn
        .prepare_cached(&numbered_parameters(sql))
        .map_err(db_error)?;
    let count = stmt.parameter_count();
    if count > args.len() {
        return Err(CoreError::internal(format!(
            "sqlite: the statement's parameter {count} names no argument given"
        )));
    }
    for (index, arg) in (1..=count).zip(args) {
        stmt.raw_bind_parameter(index, value(arg))
            .map_err(db_error)?;
    }
    Ok(stmt)
}

/// `sql` with each `$N` written `?N`, outside quoted literals.
fn numbered_parameters(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '$' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out.into()
}

/// Maps a database error: SQLite names the violated columns in its message
/// ("UNIQUE constraint failed: organizations.slug"), which the shared table recognises. A full
/// disk is the service's state, not the request's fault, and passes when space returns: a 503,
/// like a database that cannot be reached, not a 500.
pub fn db_error(e: rusqlite::Error) -> CoreError {
    if let rusqlite::Error::SqliteFailure(_, Some(message)) = &e
        && let Some(mapped) = constraint_error(message)
    {
        return mapped;
    }
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        return CoreError::Unavailable(format!("sqlite: {e}"));
    }
    CoreError::internal(format!("sqlite: {e}"))
}

#[async_trait]
impl Conn for SqliteConn {
    type Row = Row;

    const WRITES_IN_WITH: bool = false;
    const SKIP_LOCKED: &'static str = "";

    async fn execute_script(&mut self, sql: &str) -> CoreResult<()> {
        self.guard.execute_batch(sql).map_err(db_error)
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<u64> {
        let mut stmt = prepare(&self.guard, sql, &args)?;
        stmt.raw_execute().map(|n| n as u64).map_err(db_error)
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<Vec<Row>> {
        let mut stmt = prepare(&self.guard, sql, &args)?;
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(db_error)? {
            out.push(Row((0..columns)
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<_, _>>()
                .map_err(db_error)?));
        }
        Ok(out)
    }

    async fn commit(mut self) -> CoreResult<()> {
        if self.in_transaction {
            self.guard.execute_batch("COMMIT").map_err(db_error)?;
            self.in_transaction = false;
        }
        Ok(())
    }

    async fn lock_organization_slugs(&mut self, ids: &[Uuid]) -> CoreResult<Vec<(Uuid, String)>> {
        // The transaction began IMMEDIATE: it already holds the database's write lock.
        let sql = format!(
            "SELECT id, slug FROM organizations WHERE id IN ({}) ORDER BY id",
            roster_store_sql::placeholders(1, ids.len())
        );
        let rows = self
            .fetch_all(&sql, ids.iter().map(|id| Arg::Uuid(*id)).collect())
            .await?;
        rows.iter().map(|r| Ok((r.uuid(0)?, r.text(1)?))).collect()
    }

    async fn lock_users(&mut self, _ids: &[Uuid]) -> CoreResult<()> {
        // The transaction began IMMEDIATE: it already holds the database's write lock.
        Ok(())
    }
}

/// A result row, its values owned.
pub struct Row(Vec<Value>);

fn wrong(i: usize, want: &str) -> CoreError {
    CoreError::internal(format!("sqlite column {i}: not {want}"))
}

impl Row {
    fn at(&self, i: usize) -> CoreResult<&Value> {
        self.0.get(i).ok_or_else(|| wrong(i, "present"))
    }
}

impl SqlRow for Row {
    fn uuid(&self, i: usize) -> CoreResult<Uuid> {
        self.opt_uuid(i)?.ok_or_else(|| wrong(i, "a uuid"))
    }
    fn opt_uuid(&self, i: usize) -> CoreResult<Option<Uuid>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Blob(b) => Uuid::from_slice(b)
                .map(Some)
                .map_err(|_| wrong(i, "a uuid")),
            _ => Err(wrong(i, "a uuid")),
        }
    }
    fn int(&self, i: usize) -> CoreResult<i64> {
        self.opt_int(i)?.ok_or_else(|| wrong(i, "an integer"))
    }
    fn opt_int(&self, i: usize) -> CoreResult<Option<i64>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Integer(n) => Ok(Some(*n)),
            _ => Err(wrong(i, "an integer")),
        }
    }
    fn text(&self, i: usize) -> CoreResult<String> {
        self.opt_text(i)?.ok_or_else(|| wrong(i, "text"))
    }
    fn opt_text(&self, i: usize) -> CoreResult<Option<String>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            _ => Err(wrong(i, "text")),
        }
    }
    fn boolean(&self, i: usize) -> CoreResult<bool> {
        self.int(i).map(|n| n != 0)
    }
    fn bytes(&self, i: usize) -> CoreResult<Vec<u8>> {
        match self.at(i)? {
            Value::Blob(b) => Ok(b.clone()),
            _ => Err(wrong(i, "bytes")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_is_written_as_sqlites_numbered_one_outside_quotes() {
        assert_eq!(
            numbered_parameters("SELECT $1, '$2', $12 WHERE a = 'x$3'"),
            "SELECT ?1, '$2', ?12 WHERE a = 'x$3'"
        );
        assert_eq!(numbered_parameters("SELECT $"), "SELECT $");
    }

    #[test]
    fn arguments_are_bound_by_their_number_wherever_the_parameters_stand() {
        let conn = Connection::open_in_memory().unwrap();
        let args = [Arg::Int(1), Arg::Text("two".into())];
        let mut stmt = prepare(&conn, "SELECT $2, $1, $2", &args).unwrap();
        let mut rows = stmt.raw_query();
        let row = rows.next().unwrap().unwrap();
        let got: (String, i64, String) = (
            row.get(0).unwrap(),
            row.get(1).unwrap(),
            row.get(2).unwrap(),
        );
        assert_eq!(got, ("two".to_owned(), 1, "two".to_owned()));
    }

    #[tokio::test]
    async fn a_lazy_transaction_leaves_the_next_durable_one_synced() {
        let path = std::env::temp_dir().join(format!("roster-lazy-{}.db", Uuid::now_v7()));
        let store = SqliteStore::open(&path, 1).await.unwrap();
        let level = |c: &SqliteConn| {
            c.guard
                .query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        const NORMAL: i64 = 1;
        const FULL: i64 = 2;
        assert_eq!(level(&store.transaction().await.unwrap()), FULL);
        let lazy = store.writer_in(false).await.unwrap();
        assert_eq!(level(&lazy), NORMAL);
        lazy.commit().await.unwrap();
        assert_eq!(level(&store.writer_in(false).await.unwrap()), NORMAL);
        // Committed or dropped, a lazy transaction leaves the next durable one synced.
        assert_eq!(level(&store.transaction().await.unwrap()), FULL);
        drop(store.writer_in(false).await.unwrap());
        let durable = store.transaction().await.unwrap();
        assert_eq!(level(&durable), FULL);
        durable.commit().await.unwrap();
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn a_full_database_is_unavailable_not_an_internal_error() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB); PRAGMA max_page_count = 4;")
            .unwrap();
        let full = (0..100)
            .find_map(|_| {
                conn.execute("INSERT INTO t VALUES (zeroblob(4096))", [])
                    .err()
            })
            .expect("the database fills up");
        assert!(
            matches!(db_error(full), CoreError::Unavailable(ref m) if m.contains("full")),
            "a full database must be a 503"
        );
    }

    /// One organization of those `seeded` makes: its id, its one project's, and the ids of its
    /// rows in order.
    struct Seeded {
        org: Uuid,
        project: Uuid,
        ids: Vec<Uuid>,
    }

    /// An in-memory database at the current schema, with `orgs` organizations of `per_org`
    /// rows in each list paged by id (invitations, audit events, identities, projects,
    /// passwords, memberships of the organization's one project, service tokens, and personal
    /// tokens of its first user, beside as many tokens of another kind), their rows interleaved
    /// in id order with the other organizations' (as organizations that grow at the same time
    /// are), and its statistics gathered. The i-th row of each list has the i-th of `ids`, but
    /// for the organization's one project (made first) and the tokens of the other kinds.
    fn seeded(orgs: usize, per_org: usize) -> (Connection, Vec<Seeded>) {
        let conn = Connection::open_in_memory().unwrap();
        for m in MIGRATIONS {
            conn.execute_batch(m.sql).unwrap();
        }
        let mut seeded = Vec::new();
        for o in 0..orgs {
            let (org, role, project) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
            conn.execute(
                "INSERT INTO organizations (id, name, slug, created_at, updated_at) \
                 VALUES (?1, 'Org', ?2, 0, 0)",
                rusqlite::params![org.as_bytes(), format!("org-{o}")],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO roles (id, org_id, role_key, name, permissions, built_in, \
                 created_at, updated_at) VALUES (?1, ?2, 'member', 'Member', '[]', 1, 0, 0)",
                rusqlite::params![role.as_bytes(), org.as_bytes()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO projects (id, org_id, name, slug, created_at, updated_at) \
                 VALUES (?1, ?2, 'P', 'p', 0, 0)",
                rusqlite::params![project.as_bytes(), org.as_bytes()],
            )
            .unwrap();
            seeded.push((
                role,
                Seeded {
                    org,
                    project,
                    ids: Vec::with_capacity(per_org),
                },
            ));
        }
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..per_org {
            for (role, Seeded { org, project, ids }) in &mut seeded {
                let id = Uuid::now_v7();
                let (id_, org_, role_, project_) = (
                    id.as_bytes(),
                    org.as_bytes(),
                    role.as_bytes(),
                    project.as_bytes(),
                );
                conn.execute(
                    "INSERT INTO memberships (id, org_id, invite_email, role_id, status, \
                     is_active, public_metadata, private_metadata, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, 'invited', 1, '{}', '{}', 0, 0)",
                    rusqlite::params![id_, org_, format!("{i}@{}.example", org.simple()), role_],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO audit_events (id, org_id, actor_kind, actor_id, action, \
                     target_kind, target_id, details, created_at) \
                     VALUES (?1, ?2, 'user', 'u', 'membership.added', 'membership', 'm', '{}', 0)",
                    rusqlite::params![id_, org_],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO events (id, org_id, event_type, data, created_at) \
                     VALUES (?1, ?2, 'membership.created', '{}', 0)",
                    rusqlite::params![id_, org_],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO webhook_endpoints (id, org_id, url, event_types, format, \
                     secret, disabled, created_at, updated_at) \
                     VALUES (?1, ?2, 'https://h.example', '', 'native', 's', 0, 0, 0)",
                    rusqlite::params![id_, org_],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO identities (id, org_id, name, role_id, created_at, updated_at) \
                     VALUES (?1, ?2, 'i', ?3, 0, 0)",
                    rusqlite::params![id_, org_, role_],
                )
                .unwrap();
                if i > 0 {
                    conn.execute(
                        "INSERT INTO projects (id, org_id, name, slug, created_at, updated_at) \
                         VALUES (?1, ?2, 'P', ?3, 0, 0)",
                        rusqlite::params![id_, org_, format!("p-{i}")],
                    )
                    .unwrap();
                }
                conn.execute(
                    "INSERT INTO users (id, email, email_normalized, created_at, updated_at) \
                     VALUES (?1, ?2, ?2, 0, 0)",
                    rusqlite::params![id_, format!("{i}@{}.example", org.simple())],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO passwords (id, org_id, user_id, name, secret_hash, created_at) \
                     VALUES (?1, ?2, ?1, 'p', x'00', 0)",
                    rusqlite::params![id_, org_],
                )
                .unwrap();
                for table in [
                    "project_memberships (id, org_id, project_id, user_id",
                    "identity_project_memberships (id, org_id, project_id, identity_id",
                ] {
                    conn.execute(
                        &format!(
                            "INSERT INTO {table}, role, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?1, 'member', 0, 0)"
                        ),
                        rusqlite::params![id_, org_, project_],
                    )
                    .unwrap();
                }
                // Tokens of three kinds: a service token of the organization, an identity's
                // token in it, and a personal token of the organization's first user.
                let owner = *ids.first().unwrap_or(&id);
                for (token, kind, org, user, identity) in [
                    (id, "service", Some(org_), None, None),
                    (Uuid::now_v7(), "identity", Some(org_), None, Some(id_)),
                    (Uuid::now_v7(), "user", None, Some(owner.as_bytes()), None),
                ] {
                    conn.execute(
                        "INSERT INTO tokens (id, kind, org_id, user_id, identity_id, created_by, \
                         name, secret_hash, permissions, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 't', x'00', '[]', 0)",
                        rusqlite::params![token.as_bytes(), kind, org, user, identity, id_],
                    )
                    .unwrap();
                }
                ids.push(id);
            }
        }
        conn.execute_batch("COMMIT; ANALYZE").unwrap();
        let seeded = seeded.into_iter().map(|(_, s)| s).collect();
        (conn, seeded)
    }

    /// `EXPLAIN QUERY PLAN` of the statement, one line per step.
    fn plan(conn: &Connection, (sql, args): (String, Vec<Arg>)) -> Vec<String> {
        let mut stmt = prepare(conn, &format!("EXPLAIN QUERY PLAN {sql}"), &args).unwrap();
        let mut rows = stmt.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps
    }

    /// A first page and a page after `deep`, each oldest and newest first, of 50: (what, page).
    fn pages(deep: Uuid) -> [(&'static str, roster_core::model::Page); 4] {
        let page = |after, descending| roster_core::model::Page {
            after,
            offset: 0,
            limit: 50,
            descending,
        };
        [
            ("first page", page(None, false)),
            ("first page, newest first", page(None, true)),
            ("deep page", page(Some(deep), false)),
            ("deep page, newest first", page(Some(deep), true)),
        ]
    }

    /// Asserts that the plan of `statement` has the step `walk` (a search of an index, bounded
    /// where the page starts) and sorts nothing.
    fn assert_walks(conn: &Connection, what: &str, statement: (String, Vec<Arg>), walk: &str) {
        let steps = plan(conn, statement);
        assert!(
            steps.iter().any(|s| s == walk),
            "{what}: the walk starts where the page does ({walk}); the plan: {steps:#?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "{what}: no sort, the index gives the order; the plan: {steps:#?}"
        );
    }

    #[test]
    fn a_page_of_a_parents_rows_walks_its_index_from_where_it_starts() {
        use roster_core::model::MembershipFilter;
        use roster_store_sql::{PagedList, list_memberships_statement, list_page_statement};

        let (conn, seeded) = seeded(3, 2000);
        let Seeded { org, project, ids } = &seeded[1];
        for (what, page) in pages(ids[1500]) {
            let mut statements = vec![(
                list_memberships_statement(
                    roster_core::OrganizationId(*org),
                    &MembershipFilter::default(),
                    page,
                ),
                "m USING INDEX memberships_org_id",
                "org_id",
            )];
            // Users' memberships alone, as the vendor mounts list them: the partial index.
            let users_only = MembershipFilter {
                users_only: true,
                ..Default::default()
            };
            statements.push((
                list_memberships_statement(roster_core::OrganizationId(*org), &users_only, page),
                "m USING INDEX memberships_users_org_id",
                "org_id",
            ));
            for list in PagedList::ALL {
                let (parent, walk, column) = match list {
                    PagedList::AuditEvents => {
                        (org, "audit_events USING INDEX audit_events_org", "org_id")
                    }
                    PagedList::Events => (org, "events USING INDEX events_org", "org_id"),
                    PagedList::WebhookEndpoints => (
                        org,
                        "webhook_endpoints USING INDEX webhook_endpoints_org",
                        "org_id",
                    ),
                    PagedList::Identities => (org, "i USING INDEX identities_org", "org_id"),
                    PagedList::Projects => (org, "projects USING INDEX projects_org_id", "org_id"),
                    PagedList::Passwords => {
                        (org, "passwords USING INDEX passwords_org_id", "org_id")
                    }
                    PagedList::ProjectMemberships => (
                        project,
                        "project_memberships USING INDEX project_memberships_project_id",
                        "project_id",
                    ),
                    PagedList::IdentityProjectMemberships => (
                        project,
                        "identity_project_memberships USING INDEX \
                         identity_project_memberships_project_id",
                        "project_id",
                    ),
                };
                statements.push((list_page_statement(list, *parent, page), walk, column));
            }
            for (statement, walk, p) in statements {
                let bounded_by = match (page.after, page.descending) {
                    (None, _) => format!("({p}>? AND {p}<?)"),
                    (Some(_), false) => format!("(({p},id)>(?,?) AND {p}<?)"),
                    (Some(_), true) => format!("({p}>? AND ({p},id)<(?,?))"),
                };
                assert_walks(
                    &conn,
                    what,
                    statement,
                    &format!("SEARCH {walk} {bounded_by}"),
                );
            }
        }
    }

    #[test]
    fn a_page_of_tokens_walks_the_index_of_their_parent_and_kind_from_where_it_starts() {
        use roster_core::model::TokenKind;
        use roster_core::{OrganizationId, UserId};
        use roster_store_sql::list_tokens_statement;

        let (conn, seeded) = seeded(3, 2000);
        let Seeded { org, ids, .. } = &seeded[1];
        let (org, owner) = (Some(OrganizationId(*org)), Some(UserId(ids[0])));
        // The service tokens' ids are the rows' ids; a personal token's cursor need only lie
        // among them for the plan.
        for (what, page) in pages(ids[1500]) {
            let bound = match (page.after, page.descending) {
                (None, _) => "",
                (Some(_), false) => " AND id>?",
                (Some(_), true) => " AND id<?",
            };
            for (statement, walk) in [
                (
                    list_tokens_statement(TokenKind::Service, org, None, page),
                    format!(
                        "SEARCH tokens USING INDEX tokens_org_kind_id (org_id=? AND kind=?{bound})"
                    ),
                ),
                (
                    list_tokens_statement(TokenKind::User, None, owner, page),
                    format!(
                        "SEARCH tokens USING INDEX tokens_user_kind_id (user_id=? AND kind=?{bound})"
                    ),
                ),
            ] {
                assert_walks(&conn, what, statement, &walk);
            }
        }
    }

    /// A removal's reads of its targets (the statements both backends share) find them by key,
    /// among three organizations of 2,000 members each a user's.
    #[test]
    fn a_removals_reads_find_their_members_by_key() {
        use roster_core::{MembershipId, OrganizationId, UserId};
        use roster_store_sql::{memberships_by_ids_statement, memberships_by_users_statement};

        let (conn, seeded) = seeded(3, 2000);
        // The members accepted invitations: each membership a user's, as a removal finds them.
        conn.execute_batch(
            "UPDATE memberships SET user_id = id, invite_email = NULL, status = 'accepted'; \
             ANALYZE",
        )
        .unwrap();
        let Seeded { org, ids, .. } = &seeded[1];
        let (org, some) = (OrganizationId(*org), &ids[100..108]);
        let members: Vec<MembershipId> = some.iter().map(|&i| MembershipId(i)).collect();
        let users: Vec<UserId> = some.iter().map(|&i| UserId(i)).collect();
        for (what, statement, search) in [
            (
                "the targets, by id",
                memberships_by_ids_statement(&[org], &members),
                "SEARCH m USING INDEX memberships_org_id (org_id=? AND id=?)",
            ),
            (
                "the targets, by user",
                memberships_by_users_statement(&[org], &users),
                "SEARCH m USING INDEX sqlite_autoindex_memberships_2 (org_id=? AND user_id=?)",
            ),
        ] {
            let steps = plan(&conn, statement);
            assert!(
                steps.iter().any(|s| s == search),
                "{what}: found by key ({search}); the plan: {steps:#?}"
            );
            assert!(
                !steps.iter().any(|s| s.starts_with("SCAN m")),
                "{what}: the members are not read whole; the plan: {steps:#?}"
            );
        }
    }

    #[test]
    fn a_parameter_without_an_argument_is_refused_rather_than_left_null() {
        let conn = Connection::open_in_memory().unwrap();
        assert!(prepare(&conn, "SELECT $1, $2", &[Arg::Int(1)]).is_err());
    }
}
