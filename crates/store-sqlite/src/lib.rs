//! roster's `Store` on SQLite, the embedded default. The statements are the shared ones of
//! `roster-store-sql`; this crate supplies the connections, the schema and the locking:
//! one writer connection whose transactions start with `BEGIN IMMEDIATE` (so every write
//! transaction holds the database's write lock from its first statement, which serialises
//! changes to an organization), and a pool of read-only connections. WAL mode with
//! `synchronous = FULL`: a committed change survives a power cut.
//!
//! It must not depend on HTTP or on any dialect.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use roster_core::error::CoreResult;
use roster_core::{CoreError, Session, Store};
use roster_store_sql::{Arg, Conn, Migration, SqlRow, SqlSession, constraint_error};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Executor, Row as _, Sqlite, SqliteConnection, SqlitePool, Transaction};
use uuid::Uuid;

/// The schema, version by version (the same versions and names as the PostgreSQL list).
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    sql: include_str!("../migrations/0001_initial.sql"),
}];

#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`, without migrating.
    pub async fn open(path: &Path, readers: u32) -> CoreResult<Self> {
        let base = SqliteConnectOptions::from_str("sqlite:")
            .map_err(db_error)?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        // One writer: SQLite has one write lock anyway, and queueing for it in the pool is
        // cheaper and fairer than retrying on SQLITE_BUSY.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(db_error)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(base.read_only(true))
            .await
            .map_err(db_error)?;
        Ok(SqliteStore { writer, readers })
    }

    pub async fn migrate(&self) -> CoreResult<Vec<i64>> {
        roster_store_sql::migrations::apply(self.transaction().await?, MIGRATIONS).await
    }

    async fn transaction(&self) -> CoreResult<SqliteConn> {
        Ok(SqliteConn::Tx(
            self.writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(db_error)?,
        ))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn read(&self) -> CoreResult<Box<dyn Session>> {
        Ok(Box::new(SqlSession(SqliteConn::Read(
            self.readers.acquire().await.map_err(db_error)?,
        ))))
    }

    async fn begin(&self) -> CoreResult<Box<dyn Session>> {
        Ok(Box::new(SqlSession(self.transaction().await?)))
    }

    async fn ping(&self) -> CoreResult<()> {
        self.readers
            .execute("SELECT 1")
            .await
            .map(drop)
            .map_err(db_error)
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

/// A read-only pooled connection, or the writer's transaction.
pub enum SqliteConn {
    Read(PoolConnection<Sqlite>),
    Tx(Transaction<'static, Sqlite>),
}

impl SqliteConn {
    fn conn(&mut self) -> &mut SqliteConnection {
        match self {
            SqliteConn::Read(c) => c,
            SqliteConn::Tx(t) => t,
        }
    }
}

fn bind<'q>(
    q: Query<'q, Sqlite, SqliteArguments<'q>>,
    arg: &'q Arg,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    match arg {
        Arg::Uuid(u) => q.bind(*u),
        Arg::OptUuid(u) => q.bind(*u),
        Arg::Int(i) => q.bind(*i),
        Arg::OptInt(i) => q.bind(*i),
        Arg::Text(s) => q.bind(s.as_str()),
        Arg::OptText(s) => q.bind(s.as_deref()),
        Arg::Bool(b) => q.bind(*b),
        Arg::Bytes(b) => q.bind(b.as_slice()),
    }
}

/// Maps a database error: SQLite names the violated columns in its message
/// ("UNIQUE constraint failed: organizations.slug"), which the shared table recognises.
pub fn db_error(e: sqlx::Error) -> CoreError {
    if let sqlx::Error::Database(db) = &e
        && let Some(mapped) = constraint_error(db.message())
    {
        return mapped;
    }
    if let sqlx::Error::PoolTimedOut = e {
        return CoreError::internal("timed out waiting for a database connection");
    }
    CoreError::internal(format!("sqlite: {e}"))
}

#[async_trait]
impl Conn for SqliteConn {
    type Row = Row;

    async fn execute_script(&mut self, sql: &str) -> CoreResult<()> {
        self.conn()
            .execute(sqlx::raw_sql(sql))
            .await
            .map(drop)
            .map_err(db_error)
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<u64> {
        let q = args.iter().fold(sqlx::query(sql), bind);
        Ok(q.execute(self.conn())
            .await
            .map_err(db_error)?
            .rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<Vec<Row>> {
        let q = args.iter().fold(sqlx::query(sql), bind);
        Ok(q.fetch_all(self.conn())
            .await
            .map_err(db_error)?
            .into_iter()
            .map(Row)
            .collect())
    }

    async fn commit(self) -> CoreResult<()> {
        match self {
            SqliteConn::Read(_) => Ok(()),
            SqliteConn::Tx(t) => t.commit().await.map_err(db_error),
        }
    }

    async fn lock_organization(&mut self, id: Uuid) -> CoreResult<bool> {
        // The transaction began IMMEDIATE: it already holds the database's write lock.
        let rows = self
            .fetch_all(
                "SELECT 1 FROM organizations WHERE id = $1",
                vec![Arg::Uuid(id)],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

/// A result row (a local type, so that it can implement the shared `SqlRow`).
pub struct Row(SqliteRow);

fn col<'r, T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>>(
    r: &'r Row,
    i: usize,
) -> CoreResult<T> {
    r.0.try_get(i)
        .map_err(|e| CoreError::internal(format!("sqlite column {i}: {e}")))
}

impl SqlRow for Row {
    fn uuid(&self, i: usize) -> CoreResult<Uuid> {
        col(self, i)
    }
    fn opt_uuid(&self, i: usize) -> CoreResult<Option<Uuid>> {
        col(self, i)
    }
    fn int(&self, i: usize) -> CoreResult<i64> {
        col(self, i)
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
