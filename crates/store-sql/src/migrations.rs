//! Migrations: a version, a name and its SQL. Each backend keeps its own list with the same
//! versions and names (a test compares them); a landed migration is never edited, only followed.

use roster_core::CoreError;
use roster_core::error::CoreResult;

use crate::conn::{Arg, Conn, SqlRow};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Applies the pending migrations of `list` in one transaction `tx`; returns those applied.
/// A database migrated by a newer roster is refused rather than misread.
pub async fn apply<C: Conn>(mut tx: C, list: &[Migration]) -> CoreResult<Vec<Migration>> {
    tx.execute_script(
        "CREATE TABLE IF NOT EXISTS roster_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied: Vec<i64> = tx
        .fetch_all(
            "SELECT version FROM roster_migrations ORDER BY version",
            vec![],
        )
        .await?
        .iter()
        .map(|r| r.int(0))
        .collect::<CoreResult<_>>()?;
    let known = list.last().map_or(0, |m| m.version);
    if let Some(newer) = applied.iter().find(|v| **v > known) {
        return Err(CoreError::internal(format!(
            "the database has schema version {newer}, newer than this roster knows ({known}): upgrade roster"
        )));
    }
    let mut done = Vec::new();
    for m in list.iter().filter(|m| !applied.contains(&m.version)) {
        tx.execute_script(m.sql).await?;
        tx.execute(
            "INSERT INTO roster_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            vec![
                Arg::Int(m.version),
                Arg::Text(m.name.to_owned()),
                Arg::Int(roster_core::Timestamp::now().0),
            ],
        )
        .await?;
        done.push(*m);
    }
    tx.commit().await?;
    Ok(done)
}
