//! Webhook endpoints and the delivery of events to them, as data: what an organization asked
//! to be sent where, and each event's delivery to each endpoint (written in the event's own
//! transaction, so that none is lost). The sending itself (HTTP, signatures, the address
//! policy) is the `roster-webhooks` crate's; the core knows no network.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::events::EventType;
use crate::ids::*;
use crate::timestamp::Timestamp;

/// How an endpoint's deliveries are shaped and signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The native API's event JSON, signed with the Standard Webhooks headers.
    Native,
    /// Clerk's own event shapes and Svix headers, for an app's existing Clerk handler.
    Clerk,
}

impl WebhookFormat {
    pub fn key(self) -> &'static str {
        match self {
            WebhookFormat::Native => "native",
            WebhookFormat::Clerk => "clerk",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "native" => Some(WebhookFormat::Native),
            "clerk" => Some(WebhookFormat::Clerk),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub organization_id: OrganizationId,
    pub url: String,
    pub description: Option<String>,
    /// The types it receives; empty: every type.
    pub event_types: Vec<EventType>,
    pub format: WebhookFormat,
    /// `whsec_` and the base64 of the signing key. Kept as it is: signing needs the key.
    pub secret: String,
    pub disabled: bool,
    /// Why it was disabled, when roster disabled it (an admin's own `disabled` has none).
    pub disabled_reason: Option<String>,
    /// Since when every delivery to it has failed.
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookEndpoint {
    pub fn wants(&self, t: EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&t)
    }
}

/// Where one event's delivery to one endpoint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    Succeeded,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryState {
    pub fn key(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "pending" => Some(DeliveryState::Pending),
            "succeeded" => Some(DeliveryState::Succeeded),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One attempt to deliver an event, as the deliveries list shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryAttempt {
    pub id: WebhookAttemptId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: EventId,
    pub organization_id: OrganizationId,
    /// The receiver's status, when it answered.
    pub status_code: Option<u16>,
    /// Why there was no answer (refused address, timeout, connection error).
    pub error: Option<String>,
    pub duration_ms: i64,
    pub created_at: Timestamp,
    /// The delivery's state now (after this attempt and any later one).
    pub delivery_state: DeliveryState,
}

/// A delivery claimed for an attempt (its lease taken, the attempt counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub endpoint_id: WebhookEndpointId,
    pub event_id: EventId,
    /// Attempts made before this one.
    pub attempts_before: u32,
}

/// A delivery claimed by the transaction that wrote it, for this process's delivery worker, and
/// handed over when that transaction commits: the worker neither claims it nor reads its event
/// back. Never handed over (the process died first), it is claimed again when its lease runs
/// out, like any claimed delivery.
#[derive(Clone, Debug)]
pub struct BornDelivery {
    pub event: crate::events::Event,
    pub endpoint_id: WebhookEndpointId,
}

/// Where a store's transactions hand the deliveries they claim as they write them: this
/// process's delivery worker, while it takes them (it stops when it has no room, and when it
/// is stopping). A delivery claimed at birth is due when its lease runs out, so that no claim
/// walks past it meanwhile; the worker's record of its attempt sets when it is due next.
#[derive(Debug)]
pub struct DeliveryHandOff {
    lease: Duration,
    open: AtomicBool,
    to: mpsc::UnboundedSender<Vec<BornDelivery>>,
}

impl DeliveryHandOff {
    /// A hand-off claiming deliveries for `lease`, closed until the worker opens it, and what
    /// the worker receives from it.
    pub fn new(lease: Duration) -> (Arc<Self>, mpsc::UnboundedReceiver<Vec<BornDelivery>>) {
        let (to, from) = mpsc::unbounded_channel();
        let open = AtomicBool::new(false);
        (Arc::new(DeliveryHandOff { lease, open, to }), from)
    }

    /// The lease a delivery written now is claimed for, if the worker takes deliveries now.
    pub fn lease(&self) -> Option<Duration> {
        self.open.load(Ordering::Relaxed).then_some(self.lease)
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Relaxed);
    }

    /// Hands over what a transaction claimed, once it has committed. A worker gone since
    /// leaves them to their leases.
    pub fn hand_over(&self, born: Vec<BornDelivery>) {
        let _ = self.to.send(born);
    }
}

/// A claimed delivery with what its attempt needs: the event, the endpoint as it is now.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub event: crate::events::Event,
    pub endpoint: WebhookEndpoint,
    /// Attempts made before this one.
    pub attempts_before: u32,
    /// What a Clerk-format endpoint's membership event shows around the membership, read
    /// just after the delivery is claimed (`None` for other formats and events).
    pub context: Option<DeliveryContext>,
}

/// The organization, the member's user and the organization's roles, as they are when a
/// delivery is claimed: what Clerk's membership objects embed. A deleted organization or user
/// is absent.
#[derive(Clone, Debug, Default)]
pub struct DeliveryContext {
    pub organization: Option<crate::model::Organization>,
    pub user: Option<crate::model::User>,
    pub roles: Vec<crate::model::Role>,
}

/// What came of an attempt.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    pub endpoint_id: WebhookEndpointId,
    pub event_id: EventId,
    pub organization_id: OrganizationId,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: Timestamp,
    /// The delivery's state after it, and when the next attempt is due if it stays pending.
    pub state: DeliveryState,
    pub next_attempt_at: Timestamp,
}

/// A new signing secret: `whsec_` and the base64 of 24 random bytes (Standard Webhooks).
pub fn new_signing_secret() -> String {
    use base64::Engine as _;
    let mut key = [0u8; 24];
    getrandom::fill(&mut key).expect("the operating system's random source failed");
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// When a failed delivery is tried again: after each failed attempt, the next delay of the
/// schedule; after the last, the delivery has failed.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule(pub Vec<std::time::Duration>);

impl Default for RetrySchedule {
    /// Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight attempts over about 28 hours).
    fn default() -> Self {
        let s = std::time::Duration::from_secs;
        RetrySchedule(vec![
            s(5),
            s(5 * 60),
            s(30 * 60),
            s(2 * 3600),
            s(5 * 3600),
            s(10 * 3600),
            s(10 * 3600),
        ])
    }
}

impl RetrySchedule {
    /// The delay after the `attempt`-th attempt failed (1 for the first), or `None` if it was
    /// the last.
    pub fn after(&self, attempt: u32) -> Option<std::time::Duration> {
        self.0.get(attempt.checked_sub(1)? as usize).copied()
    }
}

/// An endpoint whose every delivery has failed for this long is disabled.
pub const DISABLE_AFTER_FAILING_FOR: std::time::Duration =
    std::time::Duration::from_secs(5 * 24 * 3600);

/// Whether roster may call a URL: the operator's rule, applied when an endpoint is created or
/// changed and again at each attempt (addresses can change). Implemented where the network is
/// (`roster-webhooks`); the core only asks.
#[async_trait::async_trait]
pub trait WebhookUrlPolicy: Send + Sync + 'static {
    /// `Err(reason)` if roster must not call `url`.
    async fn check(&self, url: &str) -> Result<(), String>;
}

/// What the delivery worker has done since the process started, and how long the oldest
/// delivery still pending has waited (as last looked at, at most every few seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DeliveryStats {
    /// Attempts that delivered their event (a 2xx).
    pub delivered: u64,
    /// Attempts that failed and will be tried again.
    pub retrying: u64,
    /// Attempts that failed and were the last of the schedule.
    pub failed: u64,
    /// The age of the oldest pending delivery; zero when none is pending.
    pub oldest_pending: std::time::Duration,
}
