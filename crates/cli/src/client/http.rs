//! Talking to the server: the native API over HTTP with the profile's token, its error envelope
//! read into a `Failure` that says what the server said (and its request id).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Connection, Output, profile};

/// Why a command did not do what it was asked.
#[derive(Debug)]
pub enum Failure {
    /// Misused: a missing argument, a malformed file (exit 2).
    Usage(String),
    /// The server refused or failed (exit 1).
    Server {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// The server could not be reached, or answered what a roster does not (exit 1).
    Unreachable(String),
    /// Done in part or not at all, for a reason the command states (exit 1).
    Refused(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            _ => 1,
        }
    }

    /// Says what went wrong on stderr (as JSON with `--output json`).
    pub fn report(&self, output: Output) {
        let (message, details) = match self {
            Failure::Usage(m) | Failure::Unreachable(m) | Failure::Refused(m) => (m.clone(), None),
            Failure::Server {
                status,
                code,
                message,
                request_id,
            } => (
                format!("{message} ({status} {code})"),
                Some((code.clone(), request_id.clone())),
            ),
        };
        match output {
            Output::Json => {
                let (code, request_id) = details.unwrap_or_default();
                eprintln!(
                    "{}",
                    serde_json::json!({"error": {"message": message, "code": code, "request_id": request_id}})
                );
            }
            Output::Table => match details.and_then(|(_, id)| id) {
                Some(id) => eprintln!("error: {message}\nrequest id: {id}"),
                None => eprintln!("error: {message}"),
            },
        }
    }
}

/// What the server answered: its body, and whether it was a stored answer replayed for an
/// idempotency key.
pub struct Answer {
    pub body: Value,
    pub replayed: bool,
}

/// A server and the token to call it with.
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Client {
    /// The server and token of `connection`: its flags and variables over the saved profile.
    pub fn from(connection: &Connection) -> Result<Self, Failure> {
        let saved = profile::load(&connection.profile)?;
        let server = connection
            .server
            .clone()
            .or_else(|| saved.as_ref().map(|p| p.server.clone()))
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "no server: run `roster login --server URL` (profile `{}`), or set ROSTER_SERVER",
                    connection.profile
                ))
            })?;
        let token = connection
            .token
            .clone()
            .or_else(|| saved.map(|p| p.token))
            .ok_or_else(|| {
                Failure::Usage("no token: run `roster login`, or set ROSTER_TOKEN".to_owned())
            })?;
        Client::new(&server, token)
    }

    pub fn new(server: &str, token: String) -> Result<Self, Failure> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("roster-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Unreachable(format!("no HTTP client: {e}")))?;
        Ok(Client {
            http,
            server: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        Ok(self.send(Method::GET, path, None, None).await?.body)
    }

    /// Every item of a list, page after page.
    pub async fn all(&self, path: &str) -> Result<Vec<Value>, Failure> {
        let mut items = Vec::new();
        let joiner = if path.contains('?') { '&' } else { '?' };
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                Some(c) => format!("{path}{joiner}limit=500&cursor={c}"),
                None => format!("{path}{joiner}limit=500"),
            };
            let body = self.get(&page).await?;
            if let Some(Value::Array(data)) = body.get("data") {
                items.extend(data.iter().cloned());
            }
            match body.get("next_cursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(items),
            }
        }
    }

    /// `method path` with an optional JSON body and idempotency key.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.server);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| {
            Failure::Unreachable(format!(
                "cannot reach the server at {}: {}",
                self.server,
                cause(&e)
            ))
        })?;
        let status = response.status();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let text = response.text().await.map_err(|e| {
            Failure::Unreachable(format!("the answer was cut short: {}", cause(&e)))
        })?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| {
                Failure::Unreachable(format!(
                    "{url} answered {status} with something other than roster's JSON: is it a roster server?"
                ))
            })?
        };
        if status.is_success() {
            return Ok(Answer { body, replayed });
        }
        Err(server_failure(status, &body))
    }
}

/// The server's error envelope, `{"error": {"code", "message", "request_id"}}`.
fn server_failure(status: StatusCode, body: &Value) -> Failure {
    let error = &body["error"];
    Failure::Server {
        status: status.as_u16(),
        code: error["code"].as_str().unwrap_or("unknown").to_owned(),
        message: error["message"]
            .as_str()
            .map_or_else(|| status.to_string(), str::to_owned),
        request_id: error["request_id"].as_str().map(str::to_owned),
    }
}

/// reqwest's TLS (for an https server) needs a process-wide crypto provider: ring's, as the
/// webhook worker's.
#[expect(
    deprecated,
    reason = "ring's provider lacks post-quantum key exchange, which a CLI can do without; \
              aws-lc-rs, which has it, is a large C build for two cores"
)]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The innermost cause of a transport error (connection refused, …), which says the most.
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
