//! `roster projects`: an organization's projects, a project's members and identities, and
//! removing a machine identity from a project (a dry run first).

use reqwest::Method;
use serde_json::json;

use super::http::{Client, Failure};
use super::members::{confirm, organization_id};
use super::{Output, Projects, output};

pub async fn run(client: &Client, out: Output, command: &Projects) -> Result<(), Failure> {
    match command {
        Projects::List { org } => {
            let org = organization_id(client, org).await?;
            let projects = client
                .all(&format!("/v1/organizations/{org}/projects"))
                .await?;
            output::projects(out, &projects)
        }
        Projects::Members { project } => {
            let users = client
                .all(&format!("/v1/projects/{project}/memberships"))
                .await?;
            let identities = client
                .all(&format!("/v1/projects/{project}/identity-memberships"))
                .await?;
            output::project_members(out, &users, &identities)
        }
        Projects::RemoveIdentity {
            project,
            identity,
            yes,
            dry_run,
        } => {
            let path = format!("/v1/projects/{project}/identity-memberships/{identity}");
            let preview = client
                .send(Method::DELETE, &format!("{path}?dry_run=true"), None, None)
                .await?;
            if *dry_run {
                return output::identity_removal(out, &preview.body, true);
            }
            if out == Output::Table {
                output::identity_removal(out, &preview.body, true)?;
            }
            confirm(
                *yes,
                &format!("Remove identity {identity} from the project?"),
            )?;
            let key = format!("roster-cli-{}", uuid::Uuid::now_v7().simple());
            let done = client.send(Method::DELETE, &path, None, Some(&key)).await?;
            output::identity_removal(out, &json!({"removed": [done.body]}), false)
        }
    }
}
