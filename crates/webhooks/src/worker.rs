//! The delivery worker: claims due deliveries, renders and signs each for its endpoint, sends
//! it (no redirects followed, a timeout per attempt, addresses checked as they are resolved),
//! and records what came of it. At least once: an attempt whose outcome was never recorded
//! (the process died) is claimed again when its lease runs out, with the same event id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_core::Roster;
use roster_core::WebhookEndpointId;
use roster_core::service::AttemptResult;
use roster_core::webhooks::{BornDelivery, DeliveryHandOff, DueDelivery, RetrySchedule};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::policy::{AddressPolicy, CheckingResolver};
use crate::sign::{SigningKey, header_names};

/// How a delivery's event is rendered for its endpoint's format: the JSON body, or `None` if
/// that format does not show this event (Clerk's has no machine identities).
pub trait Render: Send + Sync + 'static {
    fn render(&self, due: &DueDelivery) -> Option<String>;
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub retry: RetrySchedule,
    /// The longest an attempt may take, connecting included.
    pub timeout: Duration,
    pub policy: AddressPolicy,
    /// How often an idle worker looks for due deliveries.
    pub poll: Duration,
    /// How long a busy worker waits between turns, for results and due deliveries to gather.
    pub gather: Duration,
    /// The most deliveries claimed in a turn.
    pub batch: u32,
    /// The most deliveries claimed and not yet recorded, over every batch.
    pub in_flight: usize,
    /// The most attempts under way at once to one endpoint. A receiver gets a few kept-alive
    /// connections rather than a burst of one per claimed delivery, and roster's own requests
    /// are not crowded out by that burst.
    pub per_endpoint: usize,
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
            gather: Duration::from_millis(25),
            batch: 256,
            in_flight: 1024,
            per_endpoint: 8,
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
            endpoints: Mutex::new(HashMap::new()),
        });
        worker.run(&mut stop).await;
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
    /// What the worker keeps of each endpoint it has sent to.
    endpoints: Mutex<HashMap<WebhookEndpointId, Kept>>,
}

/// An endpoint's attempts under way (`per_endpoint` permits), and where and how its attempts
/// are sent: its URL parsed and its address checked, and its signing key, made once for the
/// URL and secret it had then (and again when a delivery shows them changed) rather than for
/// each attempt.
struct Kept {
    permits: Arc<Semaphore>,
    target: Arc<Target>,
}

/// Where and how an endpoint's attempts are sent, as made for one URL and secret.
struct Target {
    url: String,
    secret: String,
    /// The parsed URL, or why it cannot be sent to.
    parsed: Result<reqwest::Url, String>,
    key: Option<SigningKey>,
}

impl Target {
    fn new(endpoint: &roster_core::webhooks::WebhookEndpoint, policy: &AddressPolicy) -> Self {
        Target {
            url: endpoint.url.clone(),
            secret: endpoint.secret.clone(),
            parsed: policy.checked_url(&endpoint.url),
            key: SigningKey::from_secret(&endpoint.secret),
        }
    }
}

impl Worker {
    /// Turn after turn: each records the attempts finished since the last and claims what is
    /// due, in one transaction, then starts sending what it claimed (each attempt on a task of
    /// its own, its result coming back for the next turn). Busy, the turns come every
    /// `gather`, so that each commit serves many deliveries (on SQLite every commit takes the
    /// write lock the removals need); idle, every `poll`, after a read that takes no lock.
    /// Deliveries written while the worker has room are claimed by their own transaction and
    /// handed over when it commits (`DeliveryHandOff`): their attempts start without a turn,
    /// at once when the worker is idle.
    async fn run(self: &Arc<Self>, stop: &mut watch::Receiver<bool>) {
        let (results, mut finished_rx) = mpsc::unbounded_channel();
        let mut in_flight = 0usize;
        // The lease outlasts the wait for one of the endpoint's permits (at most a timeout),
        // the attempt and the turn that records it, so that the claim is not taken over
        // meanwhile; a process that dies leaves its claims to run out.
        let lease = self.settings.timeout * 2 + Duration::from_secs(5);
        let (hand_off, mut born_rx) = DeliveryHandOff::new(lease);
        self.roster.hand_deliveries_to(hand_off.clone());
        let mut born: Vec<BornDelivery> = Vec::new();
        loop {
            let stopping = *stop.borrow();
            // Claimed by their transactions until now; after the hand-off closes, none more
            // (while stopping, those already handed over are still sent).
            hand_off.set_open(!stopping && in_flight < self.settings.in_flight);
            let mut finished = Vec::new();
            while let Ok(done) = finished_rx.try_recv() {
                finished.push(done);
            }
            in_flight -= finished.len();
            while let Ok(more) = born_rx.try_recv() {
                born.extend(more);
            }
            if !born.is_empty() {
                match self.roster.born_deliveries(std::mem::take(&mut born)).await {
                    Ok(due) => in_flight += self.start(due, true, &results),
                    // Left to their leases: claimed again when they run out.
                    Err(e) => tracing::warn!(
                        error = %e,
                        "webhook delivery: could not read what deliveries handed over need"
                    ),
                }
            }
            if stopping && in_flight == 0 && finished.is_empty() {
                return;
            }
            let room = if stopping {
                0
            } else {
                (self.settings.in_flight.saturating_sub(in_flight))
                    .min(self.settings.batch as usize) as u32
            };
            let worth_a_turn = !finished.is_empty() || (room > 0 && self.anything_due().await);
            let mut claimed = 0;
            if worth_a_turn {
                match self
                    .roster
                    .delivery_turn(&finished, &self.settings.retry, room, lease)
                    .await
                {
                    Ok(due) => {
                        claimed = due.len();
                        in_flight += self.start(due, false, &results);
                    }
                    // Unrecorded, the attempts are claimed again when their leases run out:
                    // sent again, not lost.
                    Err(e) => tracing::warn!(
                        error = %e,
                        attempts = finished.len(),
                        "webhook delivery: a turn failed"
                    ),
                }
            }
            let idle = in_flight == 0 && claimed == 0;
            let pause = if idle {
                self.settings.poll
            } else {
                self.settings.gather
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed(), if !stopping => {}
                // Busy, what is handed over waits for the next turn, with the rest.
                more = born_rx.recv(), if idle => born.extend(more.into_iter().flatten()),
            }
        }
    }

    /// Starts an attempt for each of `due`, each on a task of its own that sends its result
    /// to `results`; how many it started. `born`: claimed when their events were written (else
    /// just now, by a turn).
    fn start(
        self: &Arc<Self>,
        due: Vec<DueDelivery>,
        born: bool,
        results: &mpsc::UnboundedSender<(DueDelivery, AttemptResult)>,
    ) -> usize {
        let n = due.len();
        let (now, at) = (Instant::now(), roster_core::Timestamp::now());
        for d in due {
            // An attempt begun later than a timeout after its claim could outlive its lease,
            // and be sent by another node at the same time: it is left for a later claim.
            let claimed_ago = if born {
                Duration::from_millis(u64::try_from(at.0 - d.event.created_at.0).unwrap_or(0))
            } else {
                Duration::ZERO
            };
            let begin_by = (now + self.settings.timeout)
                .checked_sub(claimed_ago)
                .unwrap_or(now);
            let (worker, results) = (self.clone(), results.clone());
            tokio::spawn(async move {
                let result = worker.attempt(&d, begin_by).await;
                let _ = results.send((d, result));
            });
        }
        n
    }

    /// Whether a delivery is due; a database that cannot say is logged, and asked again at the
    /// next poll.
    async fn anything_due(&self) -> bool {
        match self.roster.deliveries_due().await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery: could not look for due deliveries");
                false
            }
        }
    }

    /// The endpoint's permits and target, made on its first delivery (the target again when
    /// its URL or secret has changed). Kept for the worker's life: a few hundred bytes per
    /// endpoint ever sent to.
    fn kept(
        &self,
        endpoint: &roster_core::webhooks::WebhookEndpoint,
    ) -> (Arc<Semaphore>, Arc<Target>) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let kept = endpoints.entry(endpoint.id).or_insert_with(|| Kept {
            permits: Arc::new(Semaphore::new(self.settings.per_endpoint)),
            target: Arc::new(Target::new(endpoint, &self.settings.policy)),
        });
        if kept.target.url != endpoint.url || kept.target.secret != endpoint.secret {
            kept.target = Arc::new(Target::new(endpoint, &self.settings.policy));
        }
        (kept.permits.clone(), kept.target.clone())
    }

    async fn attempt(&self, due: &DueDelivery, begin_by: Instant) -> AttemptResult {
        // An event the format does not show is done without a send, or a turn to wait for.
        let Some(body) = self.render.render(due) else {
            return AttemptResult {
                status_code: None,
                error: Some(format!(
                    "not sent: the {} format does not show this event",
                    due.endpoint.format.key()
                )),
                duration: Duration::ZERO,
                not_shown: true,
            };
        };
        let (permits, target) = self.kept(&due.endpoint);
        let waited = tokio::time::timeout_at(begin_by.into(), permits.acquire()).await;
        let Ok(Ok(_permit)) = waited else {
            return AttemptResult {
                status_code: None,
                error: Some(format!(
                    "not sent: the endpoint's {} attempts under way did not finish in time",
                    self.settings.per_endpoint
                )),
                duration: Duration::ZERO,
                not_shown: false,
            };
        };
        let started = Instant::now();
        let (status_code, error) = match self.send(due, &target, body).await {
            Ok(status) => (Some(status), None),
            Err(e) => (None, Some(e)),
        };
        AttemptResult {
            status_code,
            error,
            duration: started.elapsed(),
            not_shown: false,
        }
    }

    /// Sends one delivery: the receiver's status, or why there was none.
    async fn send(&self, due: &DueDelivery, target: &Target, body: String) -> Result<u16, String> {
        let url = target.parsed.clone()?;
        let key = (target.key.as_ref()).ok_or("the endpoint's signing secret is not valid")?;
        let id = due.event.id.to_string();
        let timestamp = roster_core::Timestamp::now().millis() / 1000;
        let signature = key.sign(&id, timestamp, &body);
        let [id_header, timestamp_header, signature_header] = header_names(due.endpoint.format);
        let response = (self.client.post(url))
            .header("content-type", "application/json")
            .header(id_header, id)
            .header(timestamp_header, timestamp)
            .header(signature_header, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
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
