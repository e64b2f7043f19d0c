//! `roster audit list [--follow]`: the latest events of an organization's audit log, oldest
//! first, then (following) each new one as it is written, by polling after the last seen.

use std::time::Duration;

use serde_json::Value;

use super::http::{Client, Failure};
use super::members::organization_id;
use super::{Audit, Output, output};

/// How often a follower asks for what is new.
const POLL: Duration = Duration::from_secs(1);

pub async fn run(client: &Client, out: Output, command: &Audit) -> Result<(), Failure> {
    let Audit::List {
        org,
        action,
        limit,
        follow,
    } = command;
    let org = organization_id(client, org).await?;
    let filter = action
        .as_deref()
        .map(|a| format!("&action={}", super::members::encode(a)))
        .unwrap_or_default();
    let base = format!("/v1/organizations/{org}/audit-events");
    let latest = client
        .get(&format!("{base}?order=desc&limit={limit}{filter}"))
        .await?;
    let mut events: Vec<Value> = latest["data"].as_array().cloned().unwrap_or_default();
    events.reverse();
    let mut last = events
        .last()
        .and_then(|e| e["id"].as_str())
        .map(str::to_owned);
    if !follow {
        return output::audit_events(out, &events);
    }
    for event in &events {
        output::audit_event_line(out, event);
    }
    loop {
        let cursor = last
            .as_deref()
            .map(|l| format!("&cursor={l}"))
            .unwrap_or_default();
        let page = client
            .get(&format!("{base}?order=asc&limit=500{cursor}{filter}"))
            .await?;
        let new = page["data"].as_array().cloned().unwrap_or_default();
        for event in &new {
            output::audit_event_line(out, event);
        }
        if let Some(id) = new.last().and_then(|e| e["id"].as_str()) {
            last = Some(id.to_owned());
        }
        if page["next_cursor"].is_null() {
            tokio::time::sleep(POLL).await;
        }
    }
}
