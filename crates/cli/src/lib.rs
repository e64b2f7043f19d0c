//! The `roster` binary as a library: choosing and opening the store from a database URL,
//! building the application, serving it until a shutdown signal. `main.rs` only parses the
//! command line; the tests build the same application through `app_for`.

pub mod log;

use std::path::PathBuf;
use std::sync::Arc;

use roster_core::error::CoreResult;
use roster_core::{CoreError, Roster, Store};
use roster_store_postgres::PostgresStore;
use roster_store_sql::Migration;
use roster_store_sqlite::SqliteStore;

pub const DEFAULT_DATABASE: &str = "sqlite://roster.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Where the data lives, parsed from `--database` / `ROSTER_DATABASE_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// `sqlite://PATH` (relative or absolute: `sqlite:///abs/roster.db`) or `postgres://…`.
    pub fn parse(url: &str) -> Result<Self, CoreError> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(CoreError::invalid(
                    "database",
                    "sqlite:// needs a file path, e.g. sqlite://roster.db",
                ));
            }
            Ok(Database::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(url.to_owned()))
        } else {
            Err(CoreError::invalid(
                "database",
                "the database URL must start with sqlite:// or postgres://".to_string(),
            ))
        }
    }
}

/// Opens and migrates the store.
pub async fn open_store(db: &Database) -> CoreResult<Arc<dyn Store>> {
    Ok(open_and_migrate(db).await?.0)
}

/// Opens and migrates the store; also returns the migrations this call applied.
pub async fn open_and_migrate(db: &Database) -> CoreResult<(Arc<dyn Store>, Vec<Migration>)> {
    Ok(match db {
        Database::Sqlite(path) => {
            let store = SqliteStore::open(path, 8).await?;
            let applied = store.migrate().await?;
            (Arc::new(store), applied)
        }
        Database::Postgres(url) => {
            let store = PostgresStore::connect(url, 32).await?;
            let applied = store.migrate().await?;
            (Arc::new(store), applied)
        }
    })
}

/// What `roster migrate` says: each migration it applied, or that there was none to apply.
pub fn migration_report(backend: &str, applied: &[Migration]) -> String {
    match applied {
        [] => format!("{backend}: no pending migrations; the database is up to date"),
        _ => {
            let names: Vec<String> = applied
                .iter()
                .map(|m| format!("  {:04} {}", m.version, m.name))
                .collect();
            format!(
                "{backend}: applied {} migration{}:\n{}",
                applied.len(),
                if applied.len() == 1 { "" } else { "s" },
                names.join("\n")
            )
        }
    }
}

/// The whole HTTP application over a store: the native API, the operational endpoints and the
/// vendor dialects.
pub fn app_for(store: Arc<dyn Store>) -> axum::Router {
    app_over(Roster::new(store))
}

/// `app_for`, over a `Roster` already made (`serve` sets its group-commit layers first).
pub fn app_over(roster: Roster) -> axum::Router {
    let state = roster_http::AppState::new(roster);
    roster_http::app(state.clone(), roster_native::router(&state), mounts())
        // The API reference and the console: static pages, outside the API's middleware.
        .merge(roster_native::docs::router())
        .merge(roster_native::console::router())
}

/// The vendor dialects, each under its prefix.
fn mounts() -> Vec<roster_http::Mount> {
    vec![
        roster_dialect_infisical::mount(),
        roster_dialect_clerk::mount(),
        roster_dialect_planetscale::mount(),
        roster_dialect_scim::mount(),
    ]
}

/// Every API route `app_for` serves, as (its mount's prefix, its path template below it): the
/// native API's (prefix `""`), and each dialect's (not the operational endpoints, the API
/// reference or the console, which name no organization's data).
pub fn api_paths() -> Vec<(&'static str, &'static str)> {
    let mut paths: Vec<_> = roster_native::paths()
        .into_iter()
        .map(|p| ("", p))
        .collect();
    for mount in mounts() {
        paths.extend(mount.paths.iter().map(|p| (mount.prefix, *p)));
    }
    paths
}

/// How the delivery worker renders an event for each endpoint format: the native API's event
/// JSON (`roster_native::events::EventOut`), or Clerk's (`roster_dialect_clerk::webhooks`).
#[derive(Debug)]
pub struct EventRender;

impl roster_webhooks::Render for EventRender {
    fn render(&self, due: &roster_core::webhooks::DueDelivery) -> Option<String> {
        match due.endpoint.format {
            roster_core::webhooks::WebhookFormat::Native => {
                serde_json::to_string(&roster_native::events::EventOut::from(due.event.clone()))
                    .ok()
            }
            roster_core::webhooks::WebhookFormat::Clerk => {
                roster_dialect_clerk::webhooks::event(due)
            }
        }
    }
}

/// Parses a duration, `250ms`, `15s`, `5m`, `2h` or `1d`.
pub fn parse_duration(part: &str) -> Result<std::time::Duration, String> {
    let part = part.trim();
    let split = part
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{part}` has no unit (ms, s, m, h or d)"))?;
    let (n, unit) = part.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{part}` does not start with a number"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{part}`: the unit must be ms, s, m, h or d")),
    };
    Ok(std::time::Duration::from_millis(n.saturating_mul(ms)))
}

/// Parses a retry schedule, `5s,5m,30m,2h` (each delay as `parse_duration` reads it).
pub fn parse_retry_schedule(text: &str) -> Result<roster_core::webhooks::RetrySchedule, String> {
    let delays = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err("the retry schedule names no delay".to_owned());
    }
    Ok(roster_core::webhooks::RetrySchedule(delays))
}

/// Purges what has outlived its window, at start and every hour after: former-member records
/// (whole days), idempotent requests' answers (a day by default), and events and delivery
/// attempts (30 days by default); an hour late is no matter.
pub async fn purge_expired_hourly(roster: Roster) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        match roster.purge_expired_former_members().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "former-member records past their window"),
            Err(e) => tracing::warn!(error = %e, "former-member records not purged"),
        }
        match roster.purge_expired_idempotency_records().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "idempotent answers past their window"),
            Err(e) => tracing::warn!(error = %e, "idempotent answers not purged"),
        }
        match roster.purge_expired_events().await {
            Ok(p) if p == roster_core::events::PurgedEvents::default() => {}
            Ok(p) => tracing::info!(
                events = p.events,
                deliveries = p.deliveries,
                attempts = p.attempts,
                endpoints = p.endpoints,
                "events past their window"
            ),
            Err(e) => tracing::warn!(error = %e, "events not purged"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). Registers for both when called, not when first
/// awaited: a signal sent as soon as the server says it is listening (a service manager
/// stopping it at once) must start a graceful shutdown, not meet the default action, which
/// ends the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, interrupt) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            // A signal that could not be registered never arrives.
            async fn received(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = received(term) => {},
                () = received(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_and_retry_schedules_read_as_operators_write_them() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("15").unwrap_err().contains("no unit"));
        assert!(parse_duration("5w").unwrap_err().contains("unit must be"));
        let schedule = parse_retry_schedule("1s, 2s,5m").unwrap();
        assert_eq!(
            schedule.0,
            [
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(300)
            ]
        );
        assert!(parse_retry_schedule(",").is_err());
    }
}
