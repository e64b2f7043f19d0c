//! Prometheus metrics at `/metrics`: requests by route, method and status, a latency histogram
//! by route, and whatever the core reports (group commit's counters), read at each scrape.
//! The registry and the text format are `prometheus-client`'s; this module only names the
//! series and keeps their labels cheap (a route is its shared template, never a raw path).

use std::hash::{Hash, Hasher};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use roster_core::Roster;

use crate::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The content type `/metrics` answers with: Prometheus text, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A route's template as a label: the router's shared text, so that counting a request copies
/// no string. `None` for a request no route matched.
#[derive(Clone, Debug)]
struct RouteLabel(Option<MatchedPath>);

impl RouteLabel {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RouteLabel {}

impl Hash for RouteLabel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct MethodLabel(Method);

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0.as_str(), encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: MethodLabel,
    route: RouteLabel,
    status: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: RouteLabel,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// The HTTP series, and the core's counters of `roster`.
    pub fn new(roster: Roster) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "roster_http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "roster_http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register_collector(Box::new(GroupCommitCounters(roster.clone())));
        registry.register_collector(Box::new(EventCounters(roster)));
        Metrics {
            registry,
            requests,
            latency,
        }
    }

    fn observe(&self, method: Method, route: Option<MatchedPath>, status: u16, seconds: f64) {
        let route = RouteLabel(route);
        self.latency
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method: MethodLabel(method),
                route,
                status,
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, nor can encoding the values kept here.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Group commit's counters, read from the core at each scrape.
#[derive(Debug)]
struct GroupCommitCounters(Roster);

impl Collector for GroupCommitCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.group_commit_stats();
        let counts = [
            (
                "roster_removal_shared_transactions",
                "Transactions run by group commit, each serving one or more removal requests",
                stats.transactions,
            ),
            (
                "roster_removal_shared_requests",
                "Removal requests served by group commit (divided by the transactions: the \
                 mean batch size)",
                stats.requests,
            ),
            (
                "roster_removal_batch_restarts",
                "Removal batches run again a request at a time, each in a transaction of its \
                 own, after a database error",
                stats.restarts,
            ),
        ];
        for (name, help, value) in counts {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let busy = ConstCounter::new(stats.busy.as_secs_f64());
        busy.encode(encoder.encode_descriptor(
            "roster_removal_batch_seconds",
            "Time spent running removal batches (divided by the transactions: the mean time a \
             batch holds its organization)",
            None,
            busy.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The events written and the webhook delivery worker's counters, read at each scrape.
#[derive(Debug)]
struct EventCounters(Roster);

impl Collector for EventCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.delivery_stats();
        let attempts = Family::<[(&str, &str); 1], Counter>::default();
        for (outcome, n) in [
            ("delivered", stats.delivered),
            ("retrying", stats.retrying),
            ("failed", stats.failed),
        ] {
            attempts.get_or_create(&[("outcome", outcome)]).inc_by(n);
        }
        attempts.encode(encoder.encode_descriptor(
            "roster_webhook_attempts",
            "Webhook delivery attempts by outcome: delivered (a 2xx), retrying (failed, to be \
             tried again), failed (the last attempt of the schedule failed)",
            None,
            attempts.metric_type(),
        )?)?;
        let written = ConstCounter::new(self.0.store().events_written());
        written.encode(encoder.encode_descriptor(
            "roster_events_written",
            "Membership events committed (the outbox), by this process",
            None,
            written.metric_type(),
        )?)?;
        let age = ConstGauge::new(stats.oldest_pending.as_secs_f64());
        age.encode(encoder.encode_descriptor(
            "roster_webhook_oldest_pending_seconds",
            "How long the oldest undelivered webhook delivery has waited (0: none is pending)",
            None,
            age.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Middleware: times the request and counts it under its route template (never the raw path,
/// which would make one series per id).
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Both are cheap to keep: the matched path is shared text, a standard method a constant.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    // Route template only: paths and headers (credentials) never reach the log.
    tracing::info!(
        %method,
        route = route.as_ref().map_or("unmatched", MatchedPath::as_str),
        status,
        micros = elapsed.as_micros() as u64,
        "request"
    );
    state
        .metrics
        .observe(method, route, status, elapsed.as_secs_f64());
    res
}
