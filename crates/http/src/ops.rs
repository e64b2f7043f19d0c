//! Operational endpoints: liveness, readiness (the database answers) and metrics.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.roster.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ready", "database": state.roster.store().backend()})),
        ),
        // The reason is the operator's (`cannot connect to PostgreSQL at …: connection
        // refused`), as `roster serve` says it at start-up; it names no secret.
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({
                    "status": "unavailable",
                    "database": state.roster.store().backend(),
                    "reason": e.to_string(),
                })),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render() + &group_commit_metrics(state.roster.group_commit_stats()),
    )
}

/// Group commit's counters, in the same Prometheus text as the HTTP metrics.
fn group_commit_metrics(stats: roster_core::service::GroupCommitStats) -> String {
    format!(
        "# HELP roster_removal_shared_transactions_total Transactions run by group commit, \
         each serving one or more removal requests.\n\
         # TYPE roster_removal_shared_transactions_total counter\n\
         roster_removal_shared_transactions_total {}\n\
         # HELP roster_removal_shared_requests_total Removal requests served by group commit \
         (divided by the transactions: the mean batch size).\n\
         # TYPE roster_removal_shared_requests_total counter\n\
         roster_removal_shared_requests_total {}\n\
         # HELP roster_removal_batch_restarts_total Removal batches run again a request at a \
         time, each in a transaction of its own, after a database error.\n\
         # TYPE roster_removal_batch_restarts_total counter\n\
         roster_removal_batch_restarts_total {}\n\
         # HELP roster_removal_batch_seconds_total Time spent running removal batches (divided \
         by the transactions: the mean time a batch holds its organization).\n\
         # TYPE roster_removal_batch_seconds_total counter\n\
         roster_removal_batch_seconds_total {}\n",
        stats.transactions,
        stats.requests,
        stats.restarts,
        stats.busy.as_secs_f64(),
    )
}
