//! The API test suite: every scenario runs against the real application (in-process router,
//! real store) on SQLite and on PostgreSQL. PostgreSQL is required: a missing server is a
//! failure, never a skip (set ROSTER_TEST_POSTGRES_URL to point elsewhere).

mod harness;
mod schema;
mod snapshot;

/// Generates `sqlite::NAME` and `postgres::NAME` tests for each scenario `async fn NAME(app)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::TestApp::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::TestApp::postgres().await).await
                }
            )*
        }
    };
}

mod auth;
mod binary;
mod clerk;
mod concurrency;
mod fuzz;
mod group_commit;
mod infisical;
mod input;
mod member_count;
mod planetscale;
mod removal;
mod resources;
