//! roster's `Store` on PostgreSQL, the production backend. The statements are the shared ones
//! of `roster-store-sql`; this crate supplies the connection (`PgConn`), the pool, the schema
//! and the organization lock (`SELECT … FOR UPDATE` on the organization's row).
//!
//! It must not depend on HTTP or on any dialect.

use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use roster_core::error::CoreResult;
use roster_core::{CoreError, OrganizationId, Session, Store};
use roster_store_sql::{
    Arg, Conn, EventTally, HandOffSlot, Migration, SqlRow, SqlSession, constraint_error,
};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Connection as _, Executor, PgConnection, PgPool, Postgres, Row as _, Transaction};
use uuid::Uuid;

/// The schema, version by version: this backend's SQL for each migration of the one list.
pub const MIGRATIONS: &[Migration] = roster_store_sql::schema_migrations!();

/// How long the first connection may take before start-up gives up.
const FIRST_CONNECTION: Duration = Duration::from_secs(10);

/// The server and database a URL names, as an error message starts.
fn server(options: &PgConnectOptions) -> String {
    format!(
        "PostgreSQL at {}:{} (database \"{}\", user \"{}\")",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username()),
        options.get_username()
    )
}

/// How long a readiness check waits for a pooled connection before it asks the server why.
const PING_WAIT: Duration = Duration::from_secs(3);

/// One connection made and closed, or why it could not be made.
async fn first_connection(options: &PgConnectOptions) -> CoreResult<()> {
    match tokio::time::timeout(FIRST_CONNECTION, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => conn.close().await.map_err(db_error),
        Ok(Err(e)) => Err(unreachable(options, &e)),
        Err(_) => Err(CoreError::Unavailable(format!(
            "{}: no answer within {} s",
            server(options),
            FIRST_CONNECTION.as_secs()
        ))),
    }
}

/// Why a connection could not be made, in the operator's terms.
fn unreachable(options: &PgConnectOptions, e: &sqlx::Error) -> CoreError {
    let why = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the server running, on that port?)".to_owned()
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("3D000") => "the database does not exist (create it first)".to_owned(),
            Some("28P01" | "28000") => format!("authentication failed: {}", db.message()),
            _ => db.message().to_owned(),
        },
        other => other.to_string(),
    };
    CoreError::Unavailable(format!("cannot connect to {}: {why}", server(options)))
}

/// A fixed key for `pg_advisory_xact_lock`, so that two nodes starting at once migrate one
/// after the other.
const MIGRATION_LOCK: i64 = 0x726f_7374_6572;

/// How long a request waits for a connection while the server was last found unreachable,
/// instead of the 30 s a busy pool queues for: while the server is down, the pool would retry
/// connecting for the whole 30 s, and every request would hang that long before its 503.
const WAIT_WHILE_UNREACHABLE: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// The events committed through this store (`EventTally`).
    events_written: Arc<std::sync::atomic::AtomicU64>,
    /// The delivery worker's hand-off, for the deliveries write transactions claim.
    hand_off: Arc<HandOffSlot>,
    reach: Reachability,
}

/// Whether the server was last found unavailable: set by any failure that says so (a
/// connection refused or cut, whether getting a connection or using one), cleared by the next
/// connection had. Shared by the store and every connection it hands out.
#[derive(Clone, Debug, Default)]
struct Reachability(Arc<std::sync::atomic::AtomicBool>);

impl Reachability {
    fn unreachable(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn reached(&self) {
        if self.unreachable() {
            self.0.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// `e` mapped (`db_error`), and noted if it says the server is unavailable.
    fn failed(&self, e: sqlx::Error) -> CoreError {
        let e = db_error(e);
        if matches!(e, CoreError::Unavailable(_)) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        e
    }
}

impl PostgresStore {
    /// Connects (without migrating). `max_connections` bounds the pool; requests beyond it
    /// queue for up to 30 s rather than fail. One connection is made first, so that a server
    /// that refuses, lacks the database or rejects the user is said at once, in those words.
    pub async fn connect(url: &str, max_connections: u32) -> CoreResult<Self> {
        let options: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|e| CoreError::invalid("database", format!("bad PostgreSQL URL: {e}")))?
            // Notices ("relation … already exists, skipping") are for a console, not a log.
            .options([("client_min_messages", "warning")]);
        first_connection(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            // No ping before every use: it cost a round trip per session, on the request's
            // path. sqlx still pings a connection when it is released, off the request's path,
            // and closes a broken one; one that dies while idle (a server restart) fails the
            // one request that gets it next.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(PostgresStore {
            pool,
            events_written: Arc::default(),
            hand_off: Arc::default(),
            reach: Reachability::default(),
        })
    }

    /// A connection or transaction from the pool (`get`), waiting `WAIT_WHILE_UNREACHABLE` at
    /// most while the server was last found unavailable, so that requests fail fast with 503
    /// while it is down and recover at the first connection made once it is back.
    async fn connected<T>(
        &self,
        get: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> CoreResult<T> {
        let got = if self.reach.unreachable() {
            tokio::time::timeout(WAIT_WHILE_UNREACHABLE, get)
                .await
                .map_err(|_| {
                    CoreError::Unavailable(
                        "the database server was unreachable, and still is".into(),
                    )
                })?
        } else {
            get.await
        };
        match got {
            Ok(connection) => {
                self.reach.reached();
                Ok(connection)
            }
            Err(e) => Err(self.reach.failed(e)),
        }
    }

    fn held(&self, held: Held) -> PgConn {
        PgConn {
            held,
            reach: self.reach.clone(),
        }
    }

    pub async fn migrate(&self) -> CoreResult<Vec<roster_store_sql::Migration>> {
        let mut tx = self.held(Held::Tx(self.pool.begin().await.map_err(db_error)?));
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            vec![Arg::Int(MIGRATION_LOCK)],
        )
        .await?;
        roster_store_sql::migrations::apply(tx, MIGRATIONS).await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn events_written(&self) -> u64 {
        self.events_written
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn hand_deliveries_to(&self, to: Arc<roster_core::webhooks::DeliveryHandOff>) {
        self.hand_off.set(to);
    }

    async fn read(&self) -> CoreResult<Box<dyn Session>> {
        Ok(Box::new(SqlSession(
            self.held(Held::Read(self.connected(self.pool.acquire()).await?)),
            EventTally::default(),
        )))
    }

    async fn begin(&self) -> CoreResult<Box<dyn Session>> {
        Ok(Box::new(SqlSession(
            self.held(Held::Tx(self.connected(self.pool.begin()).await?)),
            EventTally::into_total(&self.events_written, self.hand_off.get()),
        )))
    }

    /// The locks are taken in the `BEGIN`'s own round trip, one simple query (which takes no
    /// parameters: the ids, UUIDs, are written as literals).
    async fn begin_locking(&self, orgs: &[OrganizationId]) -> CoreResult<Box<dyn Session>> {
        if orgs.is_empty() {
            return self.begin().await;
        }
        let ids: Vec<String> = orgs.iter().map(|o| format!("'{}'", o.0)).collect();
        let begin = format!(
            "BEGIN; SELECT 1 FROM organizations WHERE id IN ({}) ORDER BY id FOR UPDATE",
            ids.join(", ")
        );
        Ok(Box::new(SqlSession(
            self.held(Held::Tx(self.connected(self.pool.begin_with(begin)).await?)),
            EventTally::into_total(&self.events_written, self.hand_off.get()),
        )))
    }

    async fn begin_lazily(&self) -> CoreResult<Box<dyn Session>> {
        let mut tx = self.held(Held::Tx(self.connected(self.pool.begin()).await?));
        // For this transaction only.
        tx.execute_script("SET LOCAL synchronous_commit = off")
            .await?;
        Ok(Box::new(SqlSession(
            tx,
            EventTally::into_total(&self.events_written, None),
        )))
    }

    /// `SELECT 1` on a pooled connection. If it cannot be had or used (the pool retries a
    /// server that is down until its 30 s run out), one direct connection says why, in the
    /// words start-up uses.
    async fn ping(&self) -> CoreResult<()> {
        let pinged = match tokio::time::timeout(PING_WAIT, self.pool.acquire()).await {
            Ok(Ok(mut conn)) => conn.execute("SELECT 1").await.map(drop).map_err(db_error),
            Ok(Err(e)) => Err(db_error(e)),
            Err(_) => Err(CoreError::Unavailable(format!(
                "no pooled connection within {} s",
                PING_WAIT.as_secs()
            ))),
        };
        match pinged {
            Err(CoreError::Unavailable(why)) => Err(first_connection(&self.pool.connect_options())
                .await
                .err()
                .unwrap_or(CoreError::Unavailable(why))),
            other => other,
        }
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    /// Two: measured on removals spread over 1,000 organizations (docs/benchmarks.md), one
    /// lane left the server's connections idle while a batch waited on its round trips, four
    /// and eight made batches too small to share a commit at 64 connections.
    fn write_lanes(&self) -> usize {
        2
    }
}

/// A pooled connection for reads, or a transaction for writes; its failures tell the store
/// whether the server is reachable.
pub struct PgConn {
    held: Held,
    reach: Reachability,
}

enum Held {
    Read(PoolConnection<Postgres>),
    Tx(Transaction<'static, Postgres>),
}

impl PgConn {
    fn conn(&mut self) -> &mut PgConnection {
        match &mut self.held {
            Held::Read(c) => c,
            Held::Tx(t) => t,
        }
    }
}

fn bind<'q>(q: Query<'q, Postgres, PgArguments>, arg: &'q Arg) -> Query<'q, Postgres, PgArguments> {
    match arg {
        Arg::Uuid(u) => q.bind(u),
        Arg::OptUuid(u) => q.bind(u),
        Arg::Int(i) => q.bind(i),
        Arg::OptInt(i) => q.bind(i),
        Arg::Text(s) => q.bind(s.as_str()),
        Arg::OptText(s) => q.bind(s.as_deref()),
        Arg::Bool(b) => q.bind(b),
        Arg::Bytes(b) => q.bind(b.as_slice()),
    }
}

/// Maps a database error: named constraint violations become the client errors they stand
/// for (one table of them, in `roster-store-sql`); a server that cannot be reached, is shutting
/// down, or lacks resources (a full disk, no memory, no connection left: class 53) is
/// unavailable, a 503; everything else is internal.
pub fn db_error(e: sqlx::Error) -> CoreError {
    if let sqlx::Error::Database(db) = &e
        && let Some(mapped) = db.constraint().and_then(constraint_error)
    {
        return mapped;
    }
    if let sqlx::Error::Database(db) = &e
        && db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c.starts_with("53"))
    {
        // Connection exceptions, an administrator's shutdown, exhausted resources: the
        // server, not the request.
        return CoreError::Unavailable(format!("postgres: {e}"));
    }
    match e {
        sqlx::Error::PoolTimedOut => {
            return CoreError::Unavailable("timed out waiting for a database connection".into());
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
            return CoreError::Unavailable(format!("postgres: {e}"));
        }
        _ => {}
    }
    CoreError::internal(format!("postgres: {e}"))
}

#[async_trait]
impl Conn for PgConn {
    type Row = Row;

    const WRITES_IN_WITH: bool = true;
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    async fn execute_script(&mut self, sql: &str) -> CoreResult<()> {
        self.conn()
            .execute(sqlx::raw_sql(sql))
            .await
            .map(drop)
            .map_err(|e| self.reach.failed(e))
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<u64> {
        let q = args.iter().fold(sqlx::query(sql), bind);
        let reach = self.reach.clone();
        Ok(q.execute(self.conn())
            .await
            .map_err(|e| reach.failed(e))?
            .rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<Vec<Row>> {
        let q = args.iter().fold(sqlx::query(sql), bind);
        let reach = self.reach.clone();
        Ok(q.fetch_all(self.conn())
            .await
            .map_err(|e| reach.failed(e))?
            .into_iter()
            .map(Row)
            .collect())
    }

    async fn commit(self) -> CoreResult<()> {
        match self.held {
            Held::Read(_) => Ok(()),
            Held::Tx(t) => t.commit().await.map_err(|e| self.reach.failed(e)),
        }
    }

    async fn lock_organization_slugs(&mut self, ids: &[Uuid]) -> CoreResult<Vec<(Uuid, String)>> {
        let sql = format!(
            "SELECT id, slug FROM organizations WHERE id IN ({}) ORDER BY id FOR UPDATE",
            roster_store_sql::placeholders(1, ids.len())
        );
        let rows = self
            .fetch_all(&sql, ids.iter().map(|id| Arg::Uuid(*id)).collect())
            .await?;
        rows.iter().map(|r| Ok((r.uuid(0)?, r.text(1)?))).collect()
    }

    async fn lock_users(&mut self, ids: &[Uuid]) -> CoreResult<()> {
        let sql = format!(
            "SELECT id FROM users WHERE id IN ({}) ORDER BY id FOR UPDATE",
            roster_store_sql::placeholders(1, ids.len())
        );
        self.fetch_all(&sql, ids.iter().map(|id| Arg::Uuid(*id)).collect())
            .await
            .map(drop)
    }
}

/// A result row (a local type, so that it can implement the shared `SqlRow`).
pub struct Row(PgRow);

fn col<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    r: &'r Row,
    i: usize,
) -> CoreResult<T> {
    r.0.try_get(i)
        .map_err(|e| CoreError::internal(format!("postgres column {i}: {e}")))
}

impl SqlRow for Row {
    fn uuid(&self, i: usize) -> CoreResult<Uuid> {
        col(self, i)
    }
    fn opt_uuid(&self, i: usize) -> CoreResult<Option<Uuid>> {
        col(self, i)
    }
    fn int(&self, i: usize) -> CoreResult<i64> {
        // COUNT(*) and BIGINT columns are int8; a literal like `SELECT 1` is int4.
        col::<i64>(self, i).or_else(|_| col::<i32>(self, i).map(i64::from))
    }
    fn opt_int(&self, i: usize) -> CoreResult<Option<i64>> {
        col(self, i)
    }
    fn text(&self, i: usize) -> CoreResult<String> {
        col(self, i)
    }
    fn opt_text(&self, i: usize) -> CoreResult<Option<String>> {
        col(self, i)
    }
    fn boolean(&self, i: usize) -> CoreResult<bool> {
        col(self, i)
    }
    fn bytes(&self, i: usize) -> CoreResult<Vec<u8>> {
        col(self, i)
    }
}
