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
         # HELP roster_removal_batch_restarts_total Removal batches started over with a \
         savepoint per request after a database error.\n\
         # TYPE roster_removal_batch_restarts_total counter\n\
         roster_removal_batch_restarts_total {}\n\
         # HELP roster_removal_batch_seconds_total Time spent running removal batches (divided \
         by the transactions: the mean time a batch holds its organization).\n\
         # TYPE roster_removal_batch_seconds_total counter\n\
         roster_removal_batch_seconds_total {}\n\
         # HELP roster_removal_batch_holds_total Removal batches held for the requesters the \
         batch before answered.\n\
         # TYPE roster_removal_batch_holds_total counter\n\
         roster_removal_batch_holds_total {}\n\
         # HELP roster_removal_batch_holds_run_out_total Holds that ran out before those \
         requesters were back, or that another client's request ended.\n\
         # TYPE roster_removal_batch_holds_run_out_total counter\n\
         roster_removal_batch_holds_run_out_total {}\n\
         # HELP roster_removal_batches_followed_total Removal batches that followed another \
         of the same worker, without its idling out in between.\n\
         # TYPE roster_removal_batches_followed_total counter\n\
         roster_removal_batches_followed_total {}\n\
         # HELP roster_removal_between_batches_seconds_total Time from a batch's last reply to \
         the worker's next batch, for batches that followed another (divided by them: how long \
         the requesters answered take to come back).\n\
         # TYPE roster_removal_between_batches_seconds_total counter\n\
         roster_removal_between_batches_seconds_total {}\n\
         # HELP roster_removal_transactions_begun_during_holds_total Removal batches' \
         transactions begun while their worker held for the requesters it had answered.\n\
         # TYPE roster_removal_transactions_begun_during_holds_total counter\n\
         roster_removal_transactions_begun_during_holds_total {}\n\
         # HELP roster_removal_transactions_begun_during_holds_unused_total Of those, the ones \
         rolled back unused because no batch followed.\n\
         # TYPE roster_removal_transactions_begun_during_holds_unused_total counter\n\
         roster_removal_transactions_begun_during_holds_unused_total {}\n",
        stats.transactions,
        stats.requests,
        stats.restarts,
        stats.busy.as_secs_f64(),
        stats.holds,
        stats.holds_run_out,
        stats.followed,
        stats.between.as_secs_f64(),
        stats.begun_ahead,
        stats.begun_ahead_unused
    )
}
