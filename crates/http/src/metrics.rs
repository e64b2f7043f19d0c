//! Prometheus metrics: requests by route, method and status, and a latency histogram by route.
//! Kept in process with a mutex over a small map (a few dozen routes), rendered as Prometheus
//! text at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What is kept of one route: its latency, and its requests by method and status (a handful
/// each). Found by the route's text, so that counting a request allocates nothing once its
/// route has been seen.
#[derive(Debug, Default)]
struct Route {
    latency: Histogram,
    requests: Vec<(Method, u16, u64)>,
}

#[derive(Debug, Default)]
struct Inner {
    routes: BTreeMap<String, Route>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let stats = match inner.routes.get_mut(route) {
            Some(stats) => stats,
            None => inner.routes.entry(route.to_owned()).or_default(),
        };
        match stats
            .requests
            .iter_mut()
            .find(|(m, s, _)| m == method && *s == status)
        {
            Some((_, _, n)) => *n += 1,
            None => stats.requests.push((method.clone(), status, 1)),
        }
        let h = &mut stats.latency;
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
    }

    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP roster_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE roster_http_requests_total counter\n");
        for (route, stats) in &inner.routes {
            let route = escape(route);
            let mut requests: Vec<_> = stats.requests.iter().collect();
            requests.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
            for (method, status, n) in requests {
                let _ = writeln!(
                    out,
                    "roster_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP roster_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE roster_http_request_duration_seconds histogram\n");
        for (route, stats) in &inner.routes {
            let (route, h) = (escape(route), &stats.latency);
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "roster_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "roster_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "roster_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "roster_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Middleware: times the request and counts it under its route template (never the raw path,
/// which would make one series per id).
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Both are cheap to keep: the matched path is shared text, a standard method a constant.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    state
        .metrics
        .observe(&method, route, status, elapsed.as_secs_f64());
    // Route template only: paths and headers (credentials) never reach the log.
    tracing::info!(%method, %route, status, micros = elapsed.as_micros() as u64, "request");
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_method_and_status_and_timed_by_route() {
        let metrics = Metrics::default();
        let route = "/v1/organizations/{organization_id}";
        metrics.observe(&Method::GET, route, 200, 0.0002);
        metrics.observe(&Method::GET, route, 200, 0.003);
        metrics.observe(&Method::DELETE, route, 404, 0.03);
        metrics.observe(&Method::GET, "unmatched", 404, 0.0001);
        let text = metrics.render();
        for line in [
            r#"roster_http_requests_total{method="GET",route="/v1/organizations/{organization_id}",status="200"} 2"#,
            r#"roster_http_requests_total{method="DELETE",route="/v1/organizations/{organization_id}",status="404"} 1"#,
            r#"roster_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
            r#"roster_http_request_duration_seconds_bucket{route="/v1/organizations/{organization_id}",le="0.0005"} 1"#,
            r#"roster_http_request_duration_seconds_bucket{route="/v1/organizations/{organization_id}",le="0.005"} 2"#,
            r#"roster_http_request_duration_seconds_bucket{route="/v1/organizations/{organization_id}",le="+Inf"} 3"#,
            r#"roster_http_request_duration_seconds_count{route="unmatched"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
