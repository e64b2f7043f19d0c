//! The API test suite: every scenario runs against the real application (in-process router,
//! real store) on SQLite and on PostgreSQL. PostgreSQL is required: a missing server is a
//! failure, never a skip (set ROSTER_TEST_POSTGRES_URL to point elsewhere).

mod harness;
mod schema;
mod snapshot;

/// Generates `sqlite::NAME` and `postgres::NAME` tests for each scenario `async fn NAME(app)`.
/// `on_both_backends!(needs_tool; NAME, …)` marks them ignored: they drive roster with a tool
/// from a package registry (Clerk's SDK, schemathesis, an OpenAPI validator), which `./test`
/// installs and runs with `--include-ignored`; a plain `cargo test` lists them as ignored.
macro_rules! on_both_backends {
    (needs_tool; $($name:ident),* $(,)?) => {
        on_both_backends!(@tests [ignore = "needs a pinned test tool: run ./test"]; $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        on_both_backends!(@tests [cfg(all())]; $($name),*);
    };
    (@tests $attr:tt; $($name:ident),*) => {
        mod sqlite {
            $(
                #$attr
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::TestApp::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #$attr
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::TestApp::postgres().await).await
                }
            )*
        }
    };
}

mod audit;
mod auth;
mod binary;
mod clerk;
mod cli;
mod concurrency;
mod console;
mod dry_run;
mod events;
mod former_members;
mod fuzz;
mod group_commit;
mod idempotency;
mod infisical;
mod input;
mod member_count;
mod openapi;
mod planetscale;
mod removal;
mod removal_equivalence;
mod resources;
mod scim;
mod tenant;
mod tenant_matrix;
mod webhooks;
