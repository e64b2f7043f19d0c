//! The command-line client: `roster login`, `orgs`, `members`, `completions`. A client of the
//! native API over HTTP like any other (every call permission-checked, audited and evented by
//! the server), never of a database. It must not depend on a store or on the server's crates
//! beyond the binary's own argument parsing.

mod audit;
mod http;
mod members;
mod output;
mod profile;
mod projects;

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

pub use http::Failure;

/// Where a client command talks to, and how it shows what it got.
#[derive(Args, Clone, Debug)]
pub struct Connection {
    /// The saved profile to use (`roster login --profile NAME`).
    #[arg(long, env = "ROSTER_PROFILE", default_value = "default", global = true)]
    pub profile: String,
    /// The server, over the profile's (e.g. `http://127.0.0.1:8080`).
    #[arg(long, env = "ROSTER_SERVER", global = true)]
    pub server: Option<String>,
    /// The token, over the profile's.
    #[arg(long, env = "ROSTER_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// `table` (readable, the default) or `json` (one document, stable keys, for scripts).
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// The client's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Save a server and a token (a profile), checking the token against the server first.
    /// The token comes from --token, ROSTER_TOKEN, or a prompt that does not echo it.
    ///
    /// Example: roster login --server http://127.0.0.1:8080
    Login {
        #[command(flatten)]
        connection: Connection,
    },
    /// Organizations: `roster orgs list`.
    Orgs {
        #[command(subcommand)]
        command: Orgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// An organization's members: list, show, remove (a dry run first), reinstate.
    Members {
        #[command(subcommand)]
        command: Members,
        #[command(flatten)]
        connection: Connection,
    },
    /// Projects, their members, and the machine identities in them.
    Projects {
        #[command(subcommand)]
        command: Projects,
        #[command(flatten)]
        connection: Connection,
    },
    /// Machine identities: removing one from a project.
    Identities {
        #[command(subcommand)]
        command: Identities,
        #[command(flatten)]
        connection: Connection,
    },
    /// The audit log: what was done, by whom.
    Audit {
        #[command(subcommand)]
        command: Audit,
        #[command(flatten)]
        connection: Connection,
    },
    /// Prints shell completions.
    ///
    /// Example: roster completions bash > ~/.local/share/bash-completion/completions/roster
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
pub enum Orgs {
    /// The organizations the token can see.
    ///
    /// Example: roster orgs list --output json
    List,
}

#[derive(Subcommand, Debug)]
pub enum Members {
    /// An organization's members.
    ///
    /// Example: roster members list --org acme --role admin
    List {
        /// The organization: its id or its slug.
        #[arg(long)]
        org: String,
        /// Only members with this role key.
        #[arg(long)]
        role: Option<String>,
        /// Only members whose email or name contains this text.
        #[arg(long)]
        query: Option<String>,
    },
    /// One member, by membership id, user id or email.
    ///
    /// Example: roster members show --org acme ada@example.com
    Show {
        /// The organization: its id or its slug.
        #[arg(long)]
        org: String,
        member: String,
    },
    /// Removes members: shows what the removal will do (a dry run), asks, then removes.
    ///
    /// Each MEMBER is a membership id, a user id or an email. A leavers' list comes with
    /// --from-csv: a header row naming a column `email`, `user_id` or `membership_id`
    /// (other columns are ignored). Sent in chunks, each with an idempotency key, so that an
    /// interrupted run can be run again.
    ///
    /// Example: roster members remove --org acme --from-csv leavers.csv --yes
    Remove {
        /// The organization: its id or its slug.
        #[arg(long)]
        org: String,
        /// Membership ids, user ids or emails.
        members: Vec<String>,
        /// A CSV of the members to remove.
        #[arg(long, value_name = "FILE")]
        from_csv: Option<std::path::PathBuf>,
        /// Also delete the passwords the members own in the organization.
        #[arg(long)]
        delete_passwords: bool,
        /// Also delete the service tokens the members made in the organization.
        #[arg(long)]
        delete_service_tokens: bool,
        /// Remove without asking.
        #[arg(long)]
        yes: bool,
        /// Show what the removal would do, and stop.
        #[arg(long)]
        dry_run: bool,
        /// Remove the members found even if some rows match nobody (they are reported).
        #[arg(long)]
        skip_unknown: bool,
    },
    /// Brings a removed member back, under their old membership id, with their role.
    ///
    /// Example: roster members reinstate --org acme 0193a3f4-…
    Reinstate {
        /// The organization: its id or its slug.
        #[arg(long)]
        org: String,
        /// The removed membership's id (`roster members` names it when it removes).
        membership_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum Projects {
    /// An organization's projects.
    ///
    /// Example: roster projects list --org acme
    List {
        /// The organization: its id or its slug.
        #[arg(long)]
        org: String,
    },
    /// A project's members (users) and machine identities.
    ///
    /// Example: roster projects members 0193a3f4-…
    Members { project: String },
    /// Removes a machine identity from a project: shows the dry run, asks, then removes.
    ///
    /// Example: roster projects remove-identity 0193a3f4-… 0193a3f5-… --yes
    RemoveIdentity {
        project: String,
        identity: String,
        /// Remove without asking.
        #[arg(long)]
        yes: bool,
        /// Show what the removal would do, and stop.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum Identities {
    /// Removes a machine identity from a project: shows the dry run, asks, then removes (the
    /// same as `roster projects remove-identity`).
    ///
    /// Example: roster identities remove --project 0193a3f4-… 0193a3f5-… --yes
    Remove {
        #[arg(long)]
        project: String,
        identity: String,
        /// Remove without asking.
        #[arg(long)]
        yes: bool,
        /// Show what the removal would do, and stop.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum Audit {
    /// The latest audit events of an organization, oldest first; with --follow, then every
    /// new one as it is written (until interrupted).
    ///
    /// Example: roster audit list --org acme --action membership.removed --follow
    List {
        /// The organization: its id or its slug.
        #[arg(long)]
        org: String,
        /// Only events of this action (`membership.removed`, …).
        #[arg(long)]
        action: Option<String>,
        /// How many of the latest to show first (1 to 500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Keep printing events as they come.
        #[arg(long)]
        follow: bool,
    },
}

/// Runs a client command; `cli` is the whole command line's definition (for completions).
pub async fn run(command: Command, cli: impl FnOnce() -> clap::Command) -> ExitCode {
    let (output, result) = match &command {
        Command::Login { connection } => (connection.output, profile::login(connection).await),
        Command::Orgs {
            command: Orgs::List,
            connection,
        } => (connection.output, list_organizations(connection).await),
        Command::Members {
            command,
            connection,
        } => (connection.output, members(connection, command).await),
        Command::Projects {
            command,
            connection,
        } => (connection.output, projects(connection, command).await),
        Command::Identities {
            command:
                Identities::Remove {
                    project,
                    identity,
                    yes,
                    dry_run,
                },
            connection,
        } => {
            let command = Projects::RemoveIdentity {
                project: project.clone(),
                identity: identity.clone(),
                yes: *yes,
                dry_run: *dry_run,
            };
            (connection.output, projects(connection, &command).await)
        }
        Command::Audit {
            command,
            connection,
        } => (connection.output, audit(connection, command).await),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cli(), "roster", &mut std::io::stdout());
            (Output::Table, Ok(()))
        }
    };
    finish(output, result)
}

async fn list_organizations(connection: &Connection) -> Result<(), Failure> {
    let client = http::Client::from(connection)?;
    output::organizations(connection.output, &client.all("/v1/organizations").await?)
}

async fn members(connection: &Connection, command: &Members) -> Result<(), Failure> {
    let client = http::Client::from(connection)?;
    members::run(&client, connection.output, command).await
}

async fn projects(connection: &Connection, command: &Projects) -> Result<(), Failure> {
    let client = http::Client::from(connection)?;
    projects::run(&client, connection.output, command).await
}

async fn audit(connection: &Connection, command: &Audit) -> Result<(), Failure> {
    let client = http::Client::from(connection)?;
    audit::run(&client, connection.output, command).await
}

/// What a command ends with: 0 done, 1 refused or failed (said on stderr, with the server's
/// request id), 2 misused.
fn finish(output: Output, result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            f.report(output);
            ExitCode::from(f.exit_code())
        }
    }
}
