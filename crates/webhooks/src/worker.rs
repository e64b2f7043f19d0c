//! The delivery worker: claims due deliveries, renders and signs each for its endpoint, sends
//! it (no redirects followed, a timeout per attempt, addresses checked as they are resolved),
//! and records what came of it. At least once: an attempt whose outcome was never recorded
//! (the process died) is claimed again when its lease runs out, with the same event id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use roster_core::Roster;
use roster_core::events::Event;
use roster_core::service::AttemptResult;
use roster_core::webhooks::{DueDelivery, RetrySchedule, WebhookFormat};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::policy::{AddressPolicy, CheckingResolver};
use crate::sign::signature_headers;

/// How an event is rendered for an endpoint of a format: the JSON body, or `None` if that
/// format does not show this event (Clerk's has no machine identities).
pub trait Render: Send + Sync + 'static {
    fn render(&self, format: WebhookFormat, event: &Event) -> Option<String>;
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub retry: RetrySchedule,
    /// The longest an attempt may take, connecting included.
    pub timeout: Duration,
    pub policy: AddressPolicy,
    /// How often an idle worker looks for due deliveries.
    pub poll: Duration,
    /// The most deliveries claimed (and sent at once) at a time.
    pub batch: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retry: RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            policy: AddressPolicy {
                allow_private: false,
            },
            poll: Duration::from_millis(200),
            batch: 32,
        }
    }
}

/// Starts the worker on its own task. It stops when `stop` turns true: it claims nothing more,
/// and finishes the attempts it is making (each bounded by the timeout) before it returns.
pub fn spawn(
    roster: Roster,
    settings: Settings,
    render: Arc<dyn Render>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    install_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .dns_resolver(CheckingResolver(settings.policy).shared())
        .user_agent(concat!("roster-webhooks/", env!("CARGO_PKG_VERSION")))
        .build();
    tokio::spawn(async move {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook delivery cannot start: no HTTP client");
                return;
            }
        };
        let worker = Arc::new(Worker {
            roster,
            settings,
            render,
            client,
        });
        loop {
            if *stop.borrow() {
                return;
            }
            let sent = match worker.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery: could not claim deliveries");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(worker.settings.poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    })
}

/// reqwest's TLS needs a process-wide crypto provider; a second call finds it set.
#[expect(
    deprecated,
    reason = "ring's provider lacks post-quantum key exchange, which webhook delivery can do \
              without; aws-lc-rs, which has it, is a large C build for two cores"
)]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

struct Worker {
    roster: Roster,
    settings: Settings,
    render: Arc<dyn Render>,
    client: reqwest::Client,
}

impl Worker {
    /// Sends what is due now, all at once; how many deliveries it attempted.
    async fn run_once(self: &Arc<Self>) -> roster_core::error::CoreResult<usize> {
        if !self.roster.deliveries_due().await? {
            return Ok(0);
        }
        // The lease outlasts the attempt: the claim is not taken over while it runs.
        let lease = self.settings.timeout + Duration::from_secs(30);
        let due = self
            .roster
            .claim_due_deliveries(lease, self.settings.batch)
            .await?;
        let n = due.len();
        let mut attempts = JoinSet::new();
        for d in due {
            let worker = self.clone();
            attempts.spawn(async move { worker.attempt(d).await });
        }
        while attempts.join_next().await.is_some() {}
        Ok(n)
    }

    async fn attempt(&self, due: DueDelivery) {
        let started = Instant::now();
        let (status_code, error) = match self.send(&due).await {
            Ok(status) => (Some(status), None),
            Err(e) => (None, Some(e)),
        };
        let result = AttemptResult {
            status_code,
            error,
            duration: started.elapsed(),
        };
        if let Err(e) = self
            .roster
            .record_delivery_attempt(&due, &result, &self.settings.retry)
            .await
        {
            // Unrecorded, it is claimed again when its lease runs out: sent again, not lost.
            tracing::warn!(error = %e, event = %due.event.id, "webhook attempt not recorded");
        }
    }

    /// Sends one delivery: the receiver's status, or why there was none.
    async fn send(&self, due: &DueDelivery) -> Result<u16, String> {
        let endpoint = &due.endpoint;
        let body = self
            .render
            .render(endpoint.format, &due.event)
            .ok_or_else(|| format!("the {} format has no such event", endpoint.format.key()))?;
        self.settings.policy.check_url(&endpoint.url).await?;
        let prefix = match endpoint.format {
            WebhookFormat::Native => "webhook",
            WebhookFormat::Clerk => "svix",
        };
        let id = due.event.id.to_string();
        let timestamp = roster_core::Timestamp::now().millis() / 1000;
        let headers = signature_headers(prefix, &endpoint.secret, &id, timestamp, &body)
            .ok_or("the endpoint's signing secret is not valid")?;
        let mut request = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }
}

/// What went wrong, in words an admin reading the deliveries list can act on.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
