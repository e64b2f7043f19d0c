//! The benchmark's webhook endpoint (a receiver in this process answering 200, configured in the
//! benchmark's organization for `membership.removed`), how far its deliveries lag a run, and the
//! `webhooks` section: what the endpoint costs single removals, measured in one server and one
//! run with the endpoint turned on and off by turns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use roster_bench::Bench;
use roster_core::service::{NewWebhookEndpoint, WebhookEndpointPatch};
use roster_core::{RequestContext, WebhookEndpointId};

use crate::{http_run, median};

/// How long a run's deliveries are waited for after its last answer.
const DELIVERIES_WAIT: Duration = Duration::from_secs(60);

/// The benchmark's endpoint and the count of deliveries its receiver has got.
pub struct Endpoint {
    pub received: Arc<AtomicU64>,
    id: WebhookEndpointId,
}

/// What became of a run's `n` deliveries: how many had arrived by its last answer, how many by
/// the end of the wait, and how long the wait took.
struct Arrivals {
    at_last_answer: u64,
    arrived: u64,
    waited: Duration,
}

impl Endpoint {
    /// Starts the receiver on loopback and configures the endpoint, on.
    pub async fn configure(b: &Bench) -> Endpoint {
        let received = Arc::new(AtomicU64::new(0));
        let counted = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async { "" }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let endpoint = b
            .roster
            .create_webhook_endpoint(
                &b.admin,
                b.org,
                NewWebhookEndpoint {
                    url,
                    event_types: Some(vec!["membership.removed".into()]),
                    ..Default::default()
                },
                &RequestContext::default(),
            )
            .await
            .unwrap();
        Endpoint {
            received,
            id: endpoint.id,
        }
    }

    /// Turns the endpoint on or off (disabled: no delivery is written for it).
    async fn turn(&self, b: &Bench, on: bool) {
        let patch = WebhookEndpointPatch {
            disabled: Some(!on),
            ..Default::default()
        };
        b.roster
            .update_webhook_endpoint(&b.admin, b.org, self.id, patch, &RequestContext::default())
            .await
            .unwrap();
    }

    /// Waits (at most `DELIVERIES_WAIT`) until `n` deliveries have arrived since the count was
    /// `before`, so that the next run starts with none pending.
    async fn wait_for(&self, before: u64, n: u64) -> Arrivals {
        let since = || self.received.load(Ordering::Relaxed) - before;
        let at_last_answer = since();
        let started = Instant::now();
        while since() < n && started.elapsed() < DELIVERIES_WAIT {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Arrivals {
            at_last_answer,
            arrived: since(),
            waited: started.elapsed(),
        }
    }

    /// How far the deliveries of a run of `n` removals lagged, for its row: how many had
    /// arrived by its last answer, and how long after it the last one did (waited for). A worker
    /// that fell behind would otherwise look cheap.
    pub async fn lag(&self, before: u64, n: u64) -> String {
        let Arrivals {
            at_last_answer,
            arrived,
            waited,
        } = self.wait_for(before, n).await;
        if arrived < n {
            return format!(
                ", {at_last_answer} deliveries by the last answer, {arrived} of {n} a minute after"
            );
        }
        format!(
            ", {at_last_answer} of {n} deliveries by the last answer, all {:.0} ms after",
            waited.as_secs_f64() * 1000.0
        )
    }
}

/// The `webhooks` section: native single removals over HTTP at each of `concurrency`, in pairs of
/// runs (`pairs`, at least two) without and with the endpoint, their order alternating; each run
/// with it waits for its deliveries. The machine's speed drifts over seconds, so the cost is
/// taken pair by pair, of runs a few seconds apart in one server. `endpoint`: the one every
/// section runs with (`--webhook-endpoint`), on again at the end; else one is configured here and
/// left off.
pub async fn section(
    b: &Arc<Bench>,
    addr: &str,
    name: &str,
    endpoint: Option<&Endpoint>,
    pairs: u64,
    requests: usize,
    concurrency: &[usize],
) {
    let configured_here;
    let every_section_has_it = endpoint.is_some();
    let endpoint = match endpoint {
        Some(e) => e,
        None => {
            configured_here = Endpoint::configure(b).await;
            &configured_here
        }
    };
    println!(
        "\n### {name}: what one webhook endpoint costs (native single removals over HTTP, \
         runs without and with it by turns)\n\n\
         | connections | pairs | removals/s without | removals/s with | cost, median of the pairs \
         | cost, each pair's | deliveries by the last answer |\n|---|---|---|---|---|---|---|"
    );
    for &c in concurrency {
        let n = requests.max(20 * c);
        let (mut without, mut with, mut costs, mut shares) = (vec![], vec![], vec![], vec![]);
        for pair in 0..pairs.max(2) {
            let order = if pair % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            let mut rates = [0.0; 2];
            for on in order {
                endpoint.turn(b, on).await;
                let before = endpoint.received.load(Ordering::Relaxed);
                let run = http_run(b, addr, "native", c, n).await;
                if on {
                    let arrivals = endpoint.wait_for(before, n as u64).await;
                    shares.push(arrivals.at_last_answer as f64 / n as f64);
                }
                rates[usize::from(on)] = run.rps();
            }
            without.push(rates[0]);
            with.push(rates[1]);
            costs.push(1.0 - rates[1] / rates[0]);
        }
        let each: Vec<String> = costs.iter().map(|x| format!("{:.1}%", x * 100.0)).collect();
        println!(
            "| {c} | {} | {:.0} | {:.0} | {:.1}% | {} | {:.1}% (median) |",
            costs.len(),
            median(without),
            median(with),
            median(costs) * 100.0,
            each.join(", "),
            median(shares) * 100.0
        );
    }
    endpoint.turn(b, every_section_has_it).await;
}
