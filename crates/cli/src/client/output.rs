//! What client commands print: a readable table on a terminal, or one JSON document with stable
//! keys (`--output json`) for scripts. Progress goes to stderr: a bar on a terminal, lines
//! otherwise.

use std::io::IsTerminal;

use serde_json::{Value, json};

use super::Output;
use super::http::Failure;
use super::members::Receipt;

/// Prints `rows` under `headers`, each column as wide as its widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn print_json(v: &Value) {
    println!("{v}");
}

pub fn organizations(out: Output, orgs: &[Value]) -> Result<(), Failure> {
    match out {
        Output::Json => print_json(&json!({"organizations": orgs})),
        Output::Table => table(
            &["ID", "SLUG", "NAME"],
            &orgs
                .iter()
                .map(|o| vec![text(&o["id"]), text(&o["slug"]), text(&o["name"])])
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

fn member_row(m: &Value) -> Vec<String> {
    let email = m["email"]
        .as_str()
        .or_else(|| m["invite_email"].as_str())
        .unwrap_or_default();
    vec![
        text(&m["id"]),
        email.to_owned(),
        text(&m["role"]),
        if m["is_active"] == json!(false) {
            "no".to_owned()
        } else {
            "yes".to_owned()
        },
    ]
}

pub fn members(out: Output, members: &[Value]) -> Result<(), Failure> {
    match out {
        Output::Json => print_json(&json!({"members": members})),
        Output::Table => table(
            &["MEMBERSHIP ID", "EMAIL", "ROLE", "ACTIVE"],
            &members.iter().map(member_row).collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

pub fn member(out: Output, m: &Value) -> Result<(), Failure> {
    match out {
        Output::Json => print_json(&json!({"member": m})),
        Output::Table => table(
            &["MEMBERSHIP ID", "EMAIL", "ROLE", "ACTIVE"],
            &[member_row(m)],
        ),
    }
    Ok(())
}

pub fn reinstated(out: Output, answer: &Value) -> Result<(), Failure> {
    match out {
        Output::Json => print_json(&json!({"reinstated": answer})),
        Output::Table => {
            let m = answer.get("membership").unwrap_or(answer);
            println!("Reinstated:");
            table(
                &["MEMBERSHIP ID", "EMAIL", "ROLE", "ACTIVE"],
                &[member_row(m)],
            );
        }
    }
    Ok(())
}

/// What a removal did or, as a dry run, would do.
pub fn removal_summary(out: Output, r: &Receipt, dry_run: bool, gone: usize, unknown: usize) {
    match out {
        // The dry run's document is printed only when the run stops there: one document each.
        Output::Json => print_json(&json!({
            "dry_run": dry_run,
            "members": r.removed.len(),
            "project_memberships": r.project_memberships,
            "passwords": r.passwords,
            "service_tokens": r.service_tokens,
            "already_removed": gone,
            "unknown": unknown,
            "removed": r.removed,
        })),
        Output::Table => {
            let verb = if dry_run { "Would remove" } else { "Removed" };
            println!(
                "{verb} {} members, {} project memberships, {} passwords, {} service tokens.",
                r.removed.len(),
                r.project_memberships,
                r.passwords,
                r.service_tokens
            );
            if gone > 0 {
                println!("{gone} already removed.");
            }
            if unknown > 0 {
                println!("{unknown} matched no member, skipped.");
            }
        }
    }
}

/// Progress of a long removal: a bar on a terminal, a line per chunk otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: std::cell::Cell<u64>,
}

impl Progress {
    pub fn new(total: u64) -> Self {
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| indicatif::ProgressBar::new(total));
        Progress {
            bar,
            total,
            done: std::cell::Cell::new(0),
        }
    }

    pub fn advance(&self, n: u64) {
        self.done.set(self.done.get() + n);
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => eprintln!("removed {} of {}", self.done.get(), self.total),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub fn projects(out: Output, projects: &[Value]) -> Result<(), Failure> {
    match out {
        Output::Json => print_json(&json!({"projects": projects})),
        Output::Table => table(
            &["ID", "SLUG", "NAME"],
            &projects
                .iter()
                .map(|p| vec![text(&p["id"]), text(&p["slug"]), text(&p["name"])])
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

pub fn project_members(out: Output, users: &[Value], identities: &[Value]) -> Result<(), Failure> {
    match out {
        Output::Json => print_json(&json!({"members": users, "identities": identities})),
        Output::Table => {
            let mut rows: Vec<Vec<String>> = users
                .iter()
                .map(|m| vec!["user".to_owned(), text(&m["user_id"]), text(&m["role"])])
                .collect();
            rows.extend(identities.iter().map(|m| {
                vec![
                    "identity".to_owned(),
                    text(&m["identity_id"]),
                    text(&m["role"]),
                ]
            }));
            table(&["KIND", "ID", "ROLE"], &rows);
        }
    }
    Ok(())
}

/// A machine identity's removal from a project, or its dry run.
pub fn identity_removal(out: Output, answer: &Value, dry_run: bool) -> Result<(), Failure> {
    match out {
        Output::Json => print_json(&json!({"dry_run": dry_run, "removed": answer["removed"]})),
        Output::Table => {
            let n = answer["removed"].as_array().map_or(0, Vec::len);
            let verb = if dry_run { "Would remove" } else { "Removed" };
            println!("{verb} {n} identity membership.");
        }
    }
    Ok(())
}

fn audit_row(e: &Value) -> Vec<String> {
    vec![
        text(&e["created_at"]),
        text(&e["action"]),
        format!("{}:{}", text(&e["actor_kind"]), text(&e["actor_id"])),
        format!("{}:{}", text(&e["target_kind"]), text(&e["target_id"])),
    ]
}

pub fn audit_events(out: Output, events: &[Value]) -> Result<(), Failure> {
    match out {
        Output::Json => print_json(&json!({"events": events})),
        Output::Table => table(
            &["TIME", "ACTION", "ACTOR", "TARGET"],
            &events.iter().map(audit_row).collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

/// One event as it comes, when following: a line of JSON each (`--output json`), or a line
/// of text.
pub fn audit_event_line(out: Output, event: &Value) {
    match out {
        Output::Json => print_json(event),
        Output::Table => println!("{}", audit_row(event).join("  ")),
    }
}
