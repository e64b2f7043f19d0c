//! `roster`: the server's commands (serve, migrate, bootstrap, admin keys), a thin shell over
//! the library, and the client's (login, orgs, members, completions), which talk to a server
//! over HTTP (`client`).

mod client;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use roster::{
    DEFAULT_DATABASE, DEFAULT_LISTEN, Database, app_over, open_and_migrate, open_store,
    shutdown_signal,
};
use roster_core::model::Page;
use roster_core::service::GroupCommitLayers;
use roster_core::{Roster, Store};
use serde_json::json;

/// mimalloc instead of the system allocator. A request allocates and frees many small buffers
/// on two threads (parsing, routing, rendering, SQLite's statements), and glibc's malloc took
/// about a tenth of the server's CPU in a profile at 8 connections. In paired runs mimalloc
/// served 13–38% more removals a second at 64 connections and 21–54% more at 256 (up to 20%
/// more at 8), for 10–15 MiB more peak RSS. Its v2 line: v3 gave the same figures with a few MiB
/// more RSS (measured when this landed; see its commit).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "roster", version, about = "Organization membership service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct DatabaseArg {
    /// sqlite://PATH (default sqlite://roster.db) or postgres://USER@HOST/DB
    #[arg(long, env = "ROSTER_DATABASE_URL", default_value = DEFAULT_DATABASE, global = true)]
    database: String,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Server(ServerCommand),
    #[command(flatten)]
    Client(client::Command),
}

/// What runs the service, on its database.
#[derive(Subcommand)]
enum ServerCommand {
    /// Run the HTTP service (migrates the database first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "ROSTER_LISTEN", default_value = DEFAULT_LISTEN)]
        listen: String,
        #[command(flatten)]
        db: DatabaseArg,
        /// Let webhook endpoints name loopback, private and link-local addresses (refused by
        /// default, so that an organization admin cannot make roster call internal services).
        #[arg(long, env = "ROSTER_ALLOW_PRIVATE_WEBHOOK_URLS")]
        allow_private_webhook_urls: bool,
        /// The delays between a failed webhook delivery's attempts, e.g. `1s,2s,5s`; after the
        /// last, the delivery has failed.
        #[arg(
            long,
            env = "ROSTER_WEBHOOK_RETRY_SCHEDULE",
            default_value = "5s,5m,30m,2h,5h,10h,10h",
            value_parser = roster::parse_retry_schedule
        )]
        webhook_retry_schedule: roster_core::webhooks::RetrySchedule,
        /// The longest a webhook attempt may take, connecting included (e.g. `15s`); an
        /// attempt cut off by a crash is sent again after twice this and 5 s.
        #[arg(
            long,
            env = "ROSTER_WEBHOOK_TIMEOUT",
            default_value = "15s",
            value_parser = roster::parse_duration
        )]
        webhook_timeout: std::time::Duration,
        /// How long a removed member's record is kept for reinstatement (e.g. `90d`); then it
        /// is purged. `0s` keeps no record (and no removal can be undone).
        #[arg(
            long,
            env = "ROSTER_FORMER_MEMBER_RETENTION",
            default_value = "90d",
            value_parser = roster::parse_duration
        )]
        former_member_retention: std::time::Duration,
        /// How long the answer to a request sent with an `Idempotency-Key` is kept for the
        /// key's repeats (e.g. `24h`); then it is purged, and the key may be used afresh.
        #[arg(
            long,
            env = "ROSTER_IDEMPOTENCY_KEY_RETENTION",
            default_value = "24h",
            value_parser = roster::parse_duration
        )]
        idempotency_key_retention: std::time::Duration,
        /// How long events and webhook delivery attempts are kept (e.g. `30d`); then they are
        /// purged, but for an event a delivery still waits for or a former member's record
        /// names.
        #[arg(
            long,
            env = "ROSTER_EVENT_RETENTION",
            default_value = "30d",
            value_parser = roster::parse_duration
        )]
        event_retention: std::time::Duration,
        /// How long a client may take to send a request's headers, counted from when it
        /// connects or from the end of the previous answer on a kept-alive connection (so also
        /// how long an idle connection is kept); then the connection is closed.
        #[arg(
            long,
            env = "ROSTER_HEADER_READ_TIMEOUT",
            default_value = "30s",
            value_parser = roster::parse_duration
        )]
        header_read_timeout: std::time::Duration,
        /// How long a client may take to send a request's body, counted from its headers; a
        /// body still arriving then is answered 408 and the connection closed.
        #[arg(
            long,
            env = "ROSTER_BODY_READ_TIMEOUT",
            default_value = "60s",
            value_parser = roster::parse_duration
        )]
        body_read_timeout: std::time::Duration,
        /// How many connections are served at once; one more waits in the listener's queue
        /// until one closes (each open connection costs about 60 KiB).
        #[arg(long, env = "ROSTER_MAX_CONNECTIONS", default_value_t = 4096)]
        max_connections: usize,
    },
    /// Apply pending database migrations.
    Migrate {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Create the first user, an organization with that user as admin, and an instance admin
    /// key; prints them as one JSON object (the key's secret is shown only here).
    Bootstrap {
        /// The first organization's name (its slug is derived from it).
        #[arg(long)]
        org: String,
        /// The first user's email; they become the organization's admin.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Create another instance admin key and print it as JSON (its secret is shown only
    /// here); `list` and `revoke` manage the existing ones.
    AdminKey {
        #[command(subcommand)]
        action: Option<AdminKeyAction>,
        /// A name to tell the new key from others by.
        #[arg(long, default_value = "admin key")]
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Subcommand)]
enum AdminKeyAction {
    /// List the instance admin keys as JSON, one a line (never their secrets).
    List,
    /// Revoke an instance admin key at once (audited); requests with it fail from then on.
    Revoke {
        /// The key's id (`token_id`), as bootstrap, admin-key and list print it.
        id: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Lines reach stderr from a thread of their own (`roster::log`), not from the request path.
    let (log, log_guard) = roster::log::buffered(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(roster::log::filter(
            std::env::var("RUST_LOG").ok().as_deref(),
        ))
        .with_writer(log)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let command = match Cli::parse().command {
        Command::Client(command) => return client::run(command, Cli::command).await,
        Command::Server(command) => command,
    };
    let outcome = run(command).await;
    // Everything logged is on stderr before the error below, and before the process ends.
    drop(log_guard);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn store(db: &DatabaseArg) -> Result<std::sync::Arc<dyn Store>, Box<dyn std::error::Error>> {
    Ok(open_store(&Database::parse(&db.database)?).await?)
}

async fn run(command: ServerCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        ServerCommand::Serve {
            listen,
            db,
            allow_private_webhook_urls,
            webhook_retry_schedule,
            webhook_timeout,
            former_member_retention,
            idempotency_key_retention,
            event_retention,
            header_read_timeout,
            body_read_timeout,
            max_connections,
        } => {
            if header_read_timeout.is_zero() || body_read_timeout.is_zero() {
                // A zero timeout would close every connection before its first request.
                return Err(
                    "--header-read-timeout and --body-read-timeout must be more than 0".into(),
                );
            }
            if max_connections == 0 {
                return Err("--max-connections must be more than 0".into());
            }
            let started = std::time::Instant::now();
            let (store, applied) = open_and_migrate(&Database::parse(&db.database)?).await?;
            for m in applied {
                tracing::info!(version = m.version, name = m.name, "applied migration");
            }
            let backend = store.backend();
            let listener = roster_http::serve::bind(&listen).await?;
            let shutdown = shutdown_signal();
            tracing::info!(address = %listener.local_addr()?, backend, ready_ms = started.elapsed().as_millis() as u64, "roster listening");
            let policy = roster_webhooks::AddressPolicy {
                allow_private: allow_private_webhook_urls,
            };
            let roster = Roster::new(store)
                .with_webhook_url_policy(std::sync::Arc::new(policy))
                .with_former_member_retention(former_member_retention)
                .with_idempotency_retention(idempotency_key_retention)
                .with_event_retention(event_retention);
            // A measurement switch, not a setting: benchmarks turn group-commit layers off
            // with it to see what each buys (docs/benchmarks.md).
            if let Ok(off) = std::env::var("ROSTER_GROUP_COMMIT_OFF")
                && !off.trim().is_empty()
            {
                let layers = GroupCommitLayers::without(&off)?;
                tracing::warn!(?layers, "group-commit layers turned off for a measurement");
                roster.set_group_commit_layers(layers);
            }
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let delivery = roster_webhooks::spawn(
                roster.clone(),
                roster_webhooks::Settings {
                    retry: webhook_retry_schedule,
                    timeout: webhook_timeout,
                    policy,
                    ..Default::default()
                },
                std::sync::Arc::new(roster::EventRender),
                stopped,
            );
            let purging = tokio::spawn(roster::purge_expired_hourly(roster.clone()));
            let timeouts = roster_http::Timeouts {
                header_read: header_read_timeout,
                body_read: body_read_timeout,
                max_connections,
            };
            roster_http::serve(listener, app_over(roster), shutdown, timeouts).await?;
            purging.abort();
            // The requests have finished; the attempts under way finish too (or, cut off,
            // are claimed again after restart when their lease runs out).
            let _ = stop.send(true);
            let _ = delivery.await;
        }
        ServerCommand::Migrate { db } => {
            let (store, applied) = open_and_migrate(&Database::parse(&db.database)?).await?;
            println!("{}", roster::migration_report(store.backend(), &applied));
        }
        ServerCommand::Bootstrap { org, email, db } => {
            let roster = Roster::new(store(&db).await?);
            let b = roster.bootstrap(&org, &email).await?;
            let out = json!({
                "organization_id": b.organization.id,
                "organization_slug": b.organization.slug,
                "user_id": b.user.id,
                "membership_id": b.membership.id,
                "token": b.admin_key.bearer(),
                "token_id": b.admin_key.token.id,
                "token_secret": b.admin_key.secret.expose(),
            });
            println!("{out}");
        }
        ServerCommand::AdminKey { action, name, db } => {
            let roster = Roster::new(store(&db).await?);
            match action {
                None => {
                    let k = roster.create_admin_key(&name).await?;
                    println!(
                        "{}",
                        json!({"token": k.bearer(), "token_id": k.token.id, "token_secret": k.secret.expose()})
                    );
                }
                Some(AdminKeyAction::List) => {
                    let mut page = Page {
                        limit: 500,
                        ..Page::default()
                    };
                    loop {
                        let keys = roster.list_admin_keys(None, page).await?;
                        for k in &keys.items {
                            println!(
                                "{}",
                                json!({"token_id": k.id, "name": k.name, "created_at": k.created_at.to_rfc3339()})
                            );
                        }
                        match keys.next_after {
                            Some(after) => page.after = Some(after),
                            None => break,
                        }
                    }
                }
                Some(AdminKeyAction::Revoke { id }) => {
                    let key = roster
                        .revoke_admin_key(None, id.parse()?, &Default::default())
                        .await?;
                    println!("{}", json!({"revoked": key.id, "name": key.name}));
                }
            }
        }
    }
    Ok(())
}
