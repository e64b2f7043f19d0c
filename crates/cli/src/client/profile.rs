//! Saved profiles: a server and a token under a name, in `roster/profiles.json` in the user's
//! config directory (`$XDG_CONFIG_HOME`, or `~/.config`), readable by the user alone (0600:
//! it holds tokens).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::http::{Client, Failure};
use super::{Connection, Output};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Profile {
    pub server: String,
    pub token: String,
}

fn file() -> Result<PathBuf, Failure> {
    dirs::config_dir()
        .map(|d| d.join("roster").join("profiles.json"))
        .ok_or_else(|| {
            Failure::Usage("no config directory: set XDG_CONFIG_HOME or HOME".to_owned())
        })
}

fn read_all() -> Result<BTreeMap<String, Profile>, Failure> {
    let path = file()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Usage(format!(
                "{} cannot be read ({e}): log in again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Failure::Usage(format!("{}: {e}", path.display()))),
    }
}

/// The profile `name`, if one was saved.
pub fn load(name: &str) -> Result<Option<Profile>, Failure> {
    Ok(read_all()?.remove(name))
}

/// Saves `profile` as `name` (the file written whole, mode 0600, then moved into place).
fn save(name: &str, profile: Profile) -> Result<PathBuf, Failure> {
    let mut all = read_all()?;
    all.insert(name.to_owned(), profile);
    let path = file()?;
    let dir = path.parent().unwrap_or(&path);
    let fail = |e: std::io::Error| Failure::Usage(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let staged = path.with_extension("json.new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&staged).map_err(fail)?;
    let text = serde_json::to_vec_pretty(&all).map_err(|e| Failure::Usage(e.to_string()))?;
    out.write_all(&text).map_err(fail)?;
    out.sync_all().map_err(fail)?;
    std::fs::rename(&staged, &path).map_err(fail)?;
    Ok(path)
}

/// `roster login`: the token (flag, `ROSTER_TOKEN`, or asked for without echo on a terminal)
/// is checked against the server before it is saved.
pub async fn login(connection: &Connection) -> Result<(), Failure> {
    let server = connection
        .server
        .as_deref()
        .ok_or_else(|| Failure::Usage("name the server: roster login --server URL".to_owned()))?;
    let token = match connection.token.clone() {
        Some(t) => t,
        None if std::io::stdin().is_terminal() => rpassword::prompt_password("Token: ")
            .map_err(|e| Failure::Usage(format!("the token could not be read: {e}")))?,
        None => {
            return Err(Failure::Usage(
                "no token: pass --token, set ROSTER_TOKEN, or run on a terminal to be asked"
                    .to_owned(),
            ));
        }
    };
    let token = token.trim().to_owned();
    let client = Client::new(server, token.clone())?;
    client.get("/v1/organizations?limit=1").await?;
    let path = save(
        &connection.profile,
        Profile {
            server: client.server().to_owned(),
            token,
        },
    )?;
    match connection.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"profile": connection.profile, "server": client.server(), "file": path})
        ),
        Output::Table => println!(
            "Logged in to {} (profile `{}`, saved in {}).",
            client.server(),
            connection.profile,
            path.display()
        ),
    }
    Ok(())
}
