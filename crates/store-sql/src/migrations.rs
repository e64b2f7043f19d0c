//! Migrations: a version, a name and its SQL. The versions and names are listed once
//! (`schema_migrations!`); each backend has its own SQL for each, in its crate's `migrations/`
//! folder. A landed migration is never edited, only followed.

use roster_core::CoreError;
use roster_core::error::CoreResult;

use crate::conn::{Arg, Conn, SqlRow};

/// The schema, version by version, as a `&[Migration]` whose SQL is read from the invoking
/// crate's `migrations/{number}_{name}.sql`: both backends expand the same list, so that they
/// cannot differ in a version or a name, only in their SQL.
#[macro_export]
macro_rules! schema_migrations {
    () => {
        $crate::schema_migrations!(@files
            1 "0001" "initial",
            2 "0002" "member_count",
            3 "0003" "page_indexes",
            4 "0004" "token_page_indexes",
            5 "0005" "one_pending_invitation",
            6 "0006" "token_created_by_key",
            7 "0007" "events",
            8 "0008" "webhooks",
            9 "0009" "former_members",
            10 "0010" "idempotency_records",
            11 "0011" "membership_external_id",
            12 "0012" "membership_directory_user_name",
            13 "0013" "project_external_id",
            14 "0014" "invitation_count",
            15 "0015" "users_page_index",
            16 "0016" "former_member_event",
            17 "0017" "deliveries_by_event",
        )
    };
    (@files $($version:literal $number:literal $name:literal,)*) => {
        &[$($crate::Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/migrations/", $number, "_", $name, ".sql"
            )),
        }),*]
    };
}

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
