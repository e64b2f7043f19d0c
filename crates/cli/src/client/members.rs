//! `roster members`: list, show, remove (a dry run first, then chunks with idempotency keys),
//! reinstate. Members are named by membership id, user id or email; organizations by id or
//! slug.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use reqwest::Method;
use serde_json::{Value, json};

use super::http::{Client, Failure};
use super::{Members, Output, output};

/// Ids per bulk removal request: well within the server's cap (100,000 and 8 MiB), small
/// enough that progress shows and a retried chunk is cheap.
const CHUNK: usize = 1_000;

/// Above this many names, the organization's members (and former members) are read whole once
/// instead of looked up one by one.
const READ_WHOLE_ABOVE: usize = 20;

pub async fn run(client: &Client, out: Output, command: &Members) -> Result<(), Failure> {
    match command {
        Members::List { org, role, query } => {
            let org = organization_id(client, org).await?;
            let mut path = format!("/v1/organizations/{org}/memberships");
            let mut params = Vec::new();
            if let Some(r) = role {
                params.push(format!("role={}", encode(r)));
            }
            if let Some(q) = query {
                params.push(format!("q={}", encode(q)));
            }
            if !params.is_empty() {
                path = format!("{path}?{}", params.join("&"));
            }
            output::members(out, &client.all(&path).await?)
        }
        Members::Show { org, member } => {
            let org = organization_id(client, org).await?;
            let found = Directory::looking_up(&org)
                .find(client, member)
                .await?
                .ok_or_else(|| Failure::Refused(format!("{member} is not a member")))?;
            output::member(out, &found)
        }
        Members::Remove {
            org,
            members,
            from_csv,
            delete_passwords,
            delete_service_tokens,
            yes,
            dry_run,
            skip_unknown,
        } => {
            let mut named: Vec<(String, String)> = members
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("argument {}", i + 1), m.clone()))
                .collect();
            if let Some(file) = from_csv {
                named.extend(read_csv(file)?);
            }
            if named.is_empty() {
                return Err(Failure::Usage(
                    "name the members to remove, or give --from-csv FILE".to_owned(),
                ));
            }
            let org = organization_id(client, org).await?;
            let options = json!({
                "delete_passwords": delete_passwords,
                "delete_service_tokens": delete_service_tokens,
            });
            let removal = Removal {
                client,
                org: &org,
                options,
                out,
            };
            removal.run(named, *yes, *dry_run, *skip_unknown).await
        }
        Members::Reinstate { org, membership_id } => {
            let org = organization_id(client, org).await?;
            let answer = client
                .send(
                    Method::POST,
                    &format!("/v1/organizations/{org}/former-members/{membership_id}/reinstate"),
                    None,
                    None,
                )
                .await?;
            output::reinstated(out, &answer.body)
        }
    }
}

/// The id of the organization `named` (an id, or a slug the token can see).
pub async fn organization_id(client: &Client, named: &str) -> Result<String, Failure> {
    if uuid::Uuid::parse_str(named).is_ok() {
        return Ok(named.to_owned());
    }
    client
        .all("/v1/organizations")
        .await?
        .into_iter()
        .find(|o| o["slug"] == named)
        .and_then(|o| o["id"].as_str().map(str::to_owned))
        .ok_or_else(|| {
            Failure::Refused(format!("no organization `{named}` that this token can see"))
        })
}

/// Asks `question` on a terminal (`--yes` answers it); off a terminal without `--yes`, a
/// usage error: nothing is done unasked.
pub fn confirm(yes: bool, question: &str) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(
            "not on a terminal to ask: pass --yes to go ahead, or --dry-run".to_owned(),
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::Refused("nothing done".to_owned()))
    }
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The rows of a leavers' CSV: (where, what), from its `email`, `user_id` or `membership_id`
/// column (the first of those the header names).
fn read_csv(file: &std::path::Path) -> Result<Vec<(String, String)>, Failure> {
    let usage = |e: &dyn std::fmt::Display| Failure::Usage(format!("{}: {e}", file.display()));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| usage(&e))?;
    let headers = reader.headers().map_err(|e| usage(&e))?.clone();
    let column = ["membership_id", "user_id", "email"]
        .iter()
        .find_map(|name| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
        .ok_or_else(|| {
            usage(&"the header row names no `email`, `user_id` or `membership_id` column")
        })?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| usage(&e))?;
        let line = record.position().map_or(0, csv::Position::line);
        let value = record.get(column).unwrap_or_default();
        if !value.is_empty() {
            rows.push((format!("line {line}"), value.to_owned()));
        }
    }
    Ok(rows)
}

/// Finds members (and former members) by membership id, user id or email: each by a request
/// of its own, or, for a long list, among the organization's members read whole once. Former
/// members are always asked for by name (only the server knows a removed user's email).
struct Directory<'a> {
    org: &'a str,
    /// The members by each of their names (lower case), when read whole.
    members: Option<HashMap<String, Value>>,
}

impl<'a> Directory<'a> {
    fn looking_up(org: &'a str) -> Self {
        Directory { org, members: None }
    }

    async fn read(client: &Client, org: &'a str) -> Result<Directory<'a>, Failure> {
        let mut by = HashMap::new();
        for m in client
            .all(&format!("/v1/organizations/{org}/memberships"))
            .await?
        {
            for key in [m["id"].as_str(), m["user_id"].as_str(), m["email"].as_str()]
                .into_iter()
                .flatten()
            {
                by.insert(key.to_lowercase(), m.clone());
            }
        }
        Ok(Directory {
            org,
            members: Some(by),
        })
    }

    /// The member `name` names, if any.
    async fn find(&self, client: &Client, name: &str) -> Result<Option<Value>, Failure> {
        if let Some(members) = &self.members {
            return Ok(members.get(&name.to_lowercase()).cloned());
        }
        let base = format!("/v1/organizations/{}/memberships", self.org);
        if uuid::Uuid::parse_str(name).is_ok() {
            match client.get(&format!("{base}/{name}")).await {
                Ok(m) => return Ok(Some(m)),
                Err(Failure::Server { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
            let by_user = client.get(&format!("{base}?user_id={name}")).await?;
            return Ok(by_user["data"].get(0).cloned());
        }
        let by_email = client
            .get(&format!("{base}?email={}", encode(name)))
            .await?;
        Ok(by_email["data"].get(0).cloned())
    }

    /// Whether `name` names someone already removed (a former member).
    async fn was_removed(&self, client: &Client, name: &str) -> Result<bool, Failure> {
        let base = format!("/v1/organizations/{}/former-members", self.org);
        let query = if uuid::Uuid::parse_str(name).is_ok() {
            match client.get(&format!("{base}/{name}")).await {
                Ok(_) => return Ok(true),
                Err(Failure::Server { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
            format!("user_id={name}")
        } else {
            format!("email={}", encode(name))
        };
        let found = client.get(&format!("{base}?{query}")).await?;
        Ok(found["data"].as_array().is_some_and(|d| !d.is_empty()))
    }
}

struct Removal<'a> {
    client: &'a Client,
    org: &'a str,
    options: Value,
    out: Output,
}

/// What a removal did (or, as a dry run, would do), summed over its chunks.
#[derive(Default)]
pub struct Receipt {
    pub removed: Vec<Value>,
    pub project_memberships: u64,
    pub passwords: u64,
    pub service_tokens: u64,
}

impl Receipt {
    fn add(&mut self, answer: &Value) {
        if let Some(removed) = answer["removed"].as_array() {
            self.removed.extend(removed.iter().cloned());
        }
        self.project_memberships += answer["project_memberships_removed"].as_u64().unwrap_or(0);
        self.passwords += answer["passwords_deleted"].as_u64().unwrap_or(0);
        self.service_tokens += answer["service_tokens_deleted"].as_u64().unwrap_or(0);
    }
}

impl Removal<'_> {
    async fn run(
        &self,
        named: Vec<(String, String)>,
        yes: bool,
        dry_run: bool,
        skip_unknown: bool,
    ) -> Result<(), Failure> {
        let directory = if named.len() > READ_WHOLE_ABOVE {
            Directory::read(self.client, self.org).await?
        } else {
            Directory::looking_up(self.org)
        };
        let mut ids: Vec<String> = Vec::new();
        let mut unknown = Vec::new();
        let mut gone = Vec::new();
        for (where_, name) in &named {
            match directory.find(self.client, name).await? {
                Some(m) => {
                    let id = m["id"].as_str().unwrap_or_default().to_owned();
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                None if directory.was_removed(self.client, name).await? => {
                    gone.push((where_.clone(), name.clone()));
                }
                None => unknown.push((where_.clone(), name.clone())),
            }
        }
        for (where_, name) in &gone {
            eprintln!("{where_}: {name} was already removed");
        }
        for (where_, name) in &unknown {
            eprintln!("{where_}: {name} matches no member");
        }
        if !unknown.is_empty() && !skip_unknown {
            return Err(Failure::Refused(format!(
                "{} of the names match no member; nothing was removed (--skip-unknown removes the others)",
                unknown.len()
            )));
        }
        let chunks: Vec<&[String]> = ids.chunks(CHUNK).collect();
        let mut preview = Receipt::default();
        for chunk in &chunks {
            preview.add(&self.send(chunk, true).await?);
        }
        let stops_here = dry_run || ids.is_empty();
        // One JSON document a run: the dry run's only where the run stops at it.
        if stops_here || self.out == Output::Table {
            output::removal_summary(self.out, &preview, true, gone.len(), unknown.len());
        }
        if stops_here {
            return Ok(());
        }
        confirm(yes, &format!("Remove {} members?", ids.len()))?;
        let mut done = Receipt::default();
        let progress = output::Progress::new(ids.len() as u64);
        for chunk in &chunks {
            done.add(&self.send(chunk, false).await?);
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        output::removal_summary(self.out, &done, false, gone.len(), unknown.len());
        Ok(())
    }

    /// One chunk's bulk removal (or its dry run). The real one carries an idempotency key of
    /// its own, and is sent again with it (twice at most) if its answer was lost: the server
    /// then answers from its record instead of removing twice. (A key made of the chunk's
    /// content would replay a day-old answer to a later, real removal of the same members.)
    async fn send(&self, chunk: &[String], dry_run: bool) -> Result<Value, Failure> {
        let body = json!({
            "membership_ids": chunk,
            "delete_passwords": self.options["delete_passwords"],
            "delete_service_tokens": self.options["delete_service_tokens"],
        });
        let mut path = format!("/v1/organizations/{}/memberships/bulk-remove", self.org);
        if dry_run {
            path.push_str("?dry_run=true");
            let answer = self
                .client
                .send(Method::POST, &path, Some(body), None)
                .await?;
            return Ok(answer.body);
        }
        let key = format!("roster-cli-{}", uuid::Uuid::now_v7().simple());
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .client
                .send(Method::POST, &path, Some(body.clone()), Some(&key))
                .await
            {
                Ok(answer) => {
                    if answer.replayed {
                        eprintln!(
                            "{} members: removed by an earlier run with the same list",
                            chunk.len()
                        );
                    }
                    return Ok(answer.body);
                }
                Err(Failure::Unreachable(_) | Failure::Server { status: 500.., .. })
                    if tries < 3 => {}
                Err(Failure::Server { code, .. })
                    if code == "idempotency_key_in_use" && tries < 3 =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
