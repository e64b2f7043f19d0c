//! Webhook endpoints and deliveries: managed over the native API, sent by the real delivery
//! worker to a real receiver listening on a port of its own, signed, and retried.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use roster_core::Roster;
use roster_core::webhooks::RetrySchedule;
use roster_webhooks::{AddressPolicy, Settings};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::harness::TestApp;

/// What a receiver got: each request's headers and body (as sent, and as JSON).
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, String, Value)>>>);

impl Received {
    fn all(&self) -> Vec<(HeaderMap, String, Value)> {
        self.0.lock().unwrap().clone()
    }

    /// The `type` of each event received, sorted (deliveries are not ordered).
    fn types(&self) -> Vec<String> {
        let mut types: Vec<String> = self
            .all()
            .iter()
            .map(|(_, _, b)| b["type"].as_str().unwrap().to_owned())
            .collect();
        types.sort();
        types
    }

    /// Waits (up to 15 s) until `n` requests have arrived; all of them.
    async fn at_least(&self, n: usize) -> Vec<(HeaderMap, String, Value)> {
        for _ in 0..300 {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} requests expected, {} arrived", self.all().len());
    }
}

/// A webhook receiver on 127.0.0.1, port 0, answering the statuses of `answers` in turn (and
/// 200 once they run out). Its URL and what it received.
async fn receiver(answers: Vec<u16>) -> (String, Received) {
    let received = Received::default();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let (r, a) = (received.clone(), answers.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (r, a) = (r.clone(), a.clone());
            async move {
                let value = serde_json::from_str(&body).unwrap_or(Value::Null);
                r.0.lock().unwrap().push((headers, body, value));
                let status = a.lock().unwrap().next().unwrap_or(200);
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// The delivery worker over `app`'s database, retrying after `retry`; stops when dropped. The
/// app is served from then on by the worker's `Roster`, as `roster serve` does, so that its
/// `/metrics` count the worker's attempts.
struct Worker(watch::Sender<bool>);

fn worker(app: &mut TestApp, retry: &[u64]) -> Worker {
    worker_allowing(app, retry, true)
}

/// `worker`, calling private addresses only if `allow_private`.
fn worker_allowing(app: &mut TestApp, retry: &[u64], allow_private: bool) -> Worker {
    worker_with(app, retry, |s| s.policy = AddressPolicy { allow_private })
}

/// `worker`, with the settings `adjust` makes to the tests' own.
fn worker_with(app: &mut TestApp, retry: &[u64], adjust: impl FnOnce(&mut Settings)) -> Worker {
    let (stop, stopped) = watch::channel(false);
    let roster = Roster::new(app.store.clone());
    app.router = roster::app_over(roster.clone());
    let mut settings = Settings {
        retry: RetrySchedule(retry.iter().map(|&ms| Duration::from_millis(ms)).collect()),
        timeout: Duration::from_secs(5),
        policy: AddressPolicy {
            allow_private: true,
        },
        poll: Duration::from_millis(20),
        gather: Duration::from_millis(5),
        batch: 32,
        in_flight: 64,
        per_endpoint: 8,
    };
    adjust(&mut settings);
    roster_webhooks::spawn(roster, settings, Arc::new(roster::EventRender), stopped);
    Worker(stop)
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// `path` read through the admin key until `done` holds of it (up to 5 s); the last read.
async fn read_until(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut read = Value::Null;
    for _ in 0..250 {
        read = app.get(path, &app.admin).await.expect(StatusCode::OK);
        if done(&read) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    read
}

fn endpoints_path(org: &str) -> String {
    format!("/v1/organizations/{org}/webhook-endpoints")
}

/// Where the attempts to `endpoint` (as its creation answered) of `org` are listed.
fn deliveries_path(org: &str, endpoint: &Value) -> String {
    format!(
        "{}/{}/deliveries",
        endpoints_path(org),
        endpoint["id"].as_str().unwrap()
    )
}

/// The signature a native-format request carries (`webhook-signature`), and the one `secret`
/// gives the event `id` at the request's timestamp over its `body`.
fn signatures(headers: &HeaderMap, id: &str, body: &str, secret: &str) -> (String, Option<String>) {
    let timestamp: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let signature = headers["webhook-signature"].to_str().unwrap().to_owned();
    (
        signature,
        roster_webhooks::sign(secret, id, timestamp, body),
    )
}

async fn create_endpoint(app: &TestApp, org: &str, body: Value) -> Value {
    app.post(&endpoints_path(org), &app.admin, body)
        .await
        .expect(StatusCode::CREATED)
}

async fn an_endpoint_shows_its_secret_once_and_is_managed_by_those_who_may(app: TestApp) {
    let org = app.new_org("Hooks").await;
    let created = create_endpoint(
        &app,
        &org,
        json!({"url": "https://hooks.example.com/roster", "events": ["membership.removed"],
               "description": "billing"}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert!(key.len() >= 24);
    assert_eq!(created["events"], json!(["membership.removed"]));
    assert_eq!(created["format"], "native");
    let id = created["id"].as_str().unwrap();
    let path = format!("{}/{id}", endpoints_path(&org));
    let got = app.get(&path, &app.admin).await.expect(StatusCode::OK);
    assert!(got.get("secret").is_none(), "shown once: {got}");
    let listed = app
        .get(&endpoints_path(&org), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["data"][0]["id"], json!(id));
    assert!(listed["data"][0].get("secret").is_none());

    let patched = app
        .patch(
            &path,
            &app.admin,
            json!({"events": [], "disabled": true, "description": null}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            &patched["events"],
            &patched["disabled"],
            &patched["description"]
        ),
        (&json!([]), &json!(true), &Value::Null)
    );
    let rotated = app
        .post(&format!("{path}/rotate-secret"), &app.admin, json!({}))
        .await
        .expect(StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    // Refused: an unknown type, a format not offered, a URL that is not http(s), a member.
    for (body, said) in [
        (
            json!({"url": "https://h.example.com", "events": ["membership.deleted"]}),
            "`membership.deleted` is not an event type",
        ),
        (
            json!({"url": "https://h.example.com", "format": "svix"}),
            "format must be `native` or `clerk`",
        ),
        (
            json!({"url": "ftp://h.example.com/x"}),
            "url must be an http or https URL",
        ),
    ] {
        let res = app.post(&endpoints_path(&org), &app.admin, body).await;
        assert_eq!(
            (res.status, res.code()),
            (StatusCode::BAD_REQUEST, "invalid_input")
        );
        let message = res.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(said), "{}", res.body);
    }
    let member = app.add_member(&org, "member").await;
    let res = app.get(&endpoints_path(&org), &member.token).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Told it may not before anything of its URL is looked at.
    let res = app
        .post(
            &endpoints_path(&org),
            &member.token,
            json!({"url": "ftp://x"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    app.delete(&path, &app.admin).await.expect(StatusCode::OK);
    app.get(&path, &app.admin)
        .await
        .expect(StatusCode::NOT_FOUND);
}

async fn a_removal_is_delivered_signed_and_a_failing_receiver_gets_the_same_event_again(
    mut app: TestApp,
) {
    let org = app.new_org("Delivered").await;
    let member = app.add_member(&org, "member").await;
    // First a 503, then a 200: the second attempt, a second after the first, delivers it.
    let (url, received) = receiver(vec![503]).await;
    let endpoint = create_endpoint(
        &app,
        &org,
        json!({"url": url, "events": ["membership.removed"]}),
    )
    .await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let _worker = worker(&mut app, &[1000, 1000]);
    app.remove_member(&org, &member.membership_id).await;

    let got = received.at_least(2).await;
    let (first, second) = (&got[0], &got[1]);
    let event = app
        .get(
            &format!("/v1/organizations/{org}/events?type=membership.removed"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK)["data"][0]
        .clone();
    assert_eq!(
        first.2, event,
        "the body is the event as the events list shows it"
    );
    assert_eq!(second.2, event);
    let id = event["id"].as_str().unwrap();
    for (headers, body, _) in [first, second] {
        assert_eq!(
            headers["webhook-id"], id,
            "the same event id on every attempt"
        );
        let (signature, expected) = signatures(headers, id, body, &secret);
        assert_eq!(Some(signature), expected);
        assert_eq!(headers["content-type"], "application/json");
    }

    // The attempts as the admin reads them, and a retry by hand sends it once more.
    let deliveries = deliveries_path(&org, &endpoint);
    let attempts = read_until(&app, &deliveries, |a| {
        a["data"].as_array().unwrap().len() == 2
    })
    .await["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        [&attempts[0]["status_code"], &attempts[1]["status_code"]],
        [&json!(503), &json!(200)]
    );
    assert!(attempts.iter().all(|a| a["event_id"] == json!(id)));
    assert_eq!(attempts[1]["delivery_state"], "succeeded");
    // Counted once the attempt is recorded: looked for until then.
    let expected = [
        r#"roster_webhook_attempts_total{outcome="delivered"} 1"#,
        r#"roster_webhook_attempts_total{outcome="retrying"} 1"#,
        r#"roster_webhook_attempts_total{outcome="failed"} 0"#,
    ];
    let mut text = String::new();
    for _ in 0..100 {
        let metrics = app.call("GET", "/metrics", None, None).await;
        text = metrics.body.as_str().unwrap().to_owned();
        if expected.iter().all(|line| text.lines().any(|l| l == *line)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for line in expected {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(text.contains("roster_webhook_oldest_pending_seconds "));
    app.post(&format!("{deliveries}/{id}/retry"), &app.admin, json!({}))
        .await
        .expect(StatusCode::ACCEPTED);
    let got = received.at_least(3).await;
    assert_eq!(got[2].0["webhook-id"], id);
    let unknown = uuid::Uuid::now_v7();
    let res = app
        .post(
            &format!("{deliveries}/{unknown}/retry"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

/// A change the API refuses: `member` removing `other` (a member may not remove another).
async fn a_member_is_refused_removing_another(
    app: &TestApp,
    org: &str,
    member: &crate::harness::Member,
    other: &crate::harness::Member,
) {
    let path = format!(
        "/v1/organizations/{org}/memberships/{}",
        other.membership_id
    );
    let res = app.delete(&path, &member.token).await;
    assert!(res.status.is_client_error(), "{}", res.body);
}

async fn an_endpoint_gets_only_the_types_it_asked_for_and_nothing_of_a_refused_change(
    mut app: TestApp,
) {
    let org = app.new_org("Filtered").await;
    let (url, received) = receiver(vec![]).await;
    create_endpoint(
        &app,
        &org,
        json!({"url": url, "events": ["membership.created"]}),
    )
    .await;
    let (all_url, everything) = receiver(vec![]).await;
    create_endpoint(&app, &org, json!({"url": all_url})).await;
    let _worker = worker(&mut app, &[100]);
    let member = app.add_member(&org, "member").await;
    // Refused: a member removing another; nothing is sent for it.
    let other = app.add_member(&org, "member").await;
    a_member_is_refused_removing_another(&app, &org, &member, &other).await;
    app.remove_member(&org, &member.membership_id).await;
    everything.at_least(3).await;
    received.at_least(2).await;
    // Anything else would have been sent by now (the worker looks every 20 ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        everything.types(),
        [
            "membership.created",
            "membership.created",
            "membership.removed"
        ]
    );
    assert_eq!(
        received.types(),
        ["membership.created", "membership.created"]
    );
}

/// An address is checked again at each attempt: an endpoint that names an internal one (made
/// while the operator allowed them, say) is not called once they are refused.
async fn an_attempt_to_an_internal_address_is_refused_and_recorded(mut app: TestApp) {
    let org = app.new_org("Refused at send").await;
    let (url, received) = receiver(vec![]).await;
    // Named by address, and by a name that resolves to it (checked by the client's resolver).
    let by_name = url.replace("127.0.0.1", "localhost");
    let endpoints = [
        create_endpoint(&app, &org, json!({"url": url})).await,
        create_endpoint(&app, &org, json!({"url": by_name})).await,
    ];
    let _worker = worker_allowing(&mut app, &[60_000], false);
    app.add_member(&org, "member").await;
    for endpoint in endpoints {
        let deliveries = deliveries_path(&org, &endpoint);
        let attempts = read_until(&app, &deliveries, |a| {
            !a["data"].as_array().unwrap().is_empty()
        })
        .await;
        let first = &attempts["data"][0];
        assert_eq!(first["status_code"], Value::Null, "{attempts}");
        let error = first["error"].as_str().unwrap();
        assert!(
            error.contains("internal address"),
            "{}: {error}",
            endpoint["url"]
        );
        assert_eq!(first["delivery_state"], "pending", "tried again later");
    }
    assert!(received.all().is_empty(), "never called");
}

/// An endpoint whose every delivery has failed for five days is disabled and says why;
/// enabled again, it starts afresh.
async fn an_endpoint_failing_for_five_days_is_disabled_and_says_why(mut app: TestApp) {
    let org = app.new_org("Failing").await;
    let (url, received) = receiver(vec![503; 10]).await;
    let endpoint = create_endpoint(&app, &org, json!({"url": url})).await;
    let path = format!(
        "{}/{}",
        endpoints_path(&org),
        endpoint["id"].as_str().unwrap()
    );
    // Its failures began six days ago (as if it had been down since).
    let six_days_ago = roster_core::Timestamp::now().millis() - 6 * 24 * 3600 * 1000;
    app.sabotage(&format!(
        "UPDATE webhook_endpoints SET failing_since = {six_days_ago}"
    ))
    .await;
    let _worker = worker(&mut app, &[60_000]);
    app.add_member(&org, "member").await;
    received.at_least(1).await;
    let got = read_until(&app, &path, |e| e["disabled"] == json!(true)).await;
    assert_eq!(got["disabled"], json!(true), "{got}");
    let reason = got["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("5 days"), "{reason}");
    assert!(got["failing_since"].is_string());
    let enabled = app
        .patch(&path, &app.admin, json!({"disabled": false}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            &enabled["disabled"],
            &enabled["disabled_reason"],
            &enabled["failing_since"]
        ),
        (&json!(false), &Value::Null, &Value::Null)
    );
}

/// Two workers over one database (two `roster serve` nodes) never send one delivery twice:
/// each claims what it sends.
async fn two_workers_over_one_database_send_each_delivery_once(mut app: TestApp) {
    let org = app.new_org("Two nodes").await;
    let (url, received) = receiver(vec![]).await;
    create_endpoint(
        &app,
        &org,
        json!({"url": url, "events": ["membership.removed"]}),
    )
    .await;
    let ids = app.add_users_as_members(&org, "member", 40).await;
    let _first = worker(&mut app, &[100]);
    let _second = worker(&mut app, &[100]);
    for chunk in ids.chunks(5) {
        app.post(
            &format!("/v1/organizations/{org}/memberships/bulk-remove"),
            &app.admin,
            json!({"membership_ids": chunk}),
        )
        .await
        .expect(StatusCode::OK);
    }
    received.at_least(40).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sent: Vec<String> = received
        .all()
        .iter()
        .map(|(h, _, _)| h["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    sent.sort();
    let before = sent.len();
    sent.dedup();
    assert_eq!((before, sent.len()), (40, 40), "each delivery sent once");
}

/// A receiver answering in 200 ms, whose one delivery at a time (`per_endpoint`) spends the
/// claim's window (the attempt timeout, 300 ms): it never gets two at once, and an attempt that
/// could not begin in time is not sent, recorded as such, and sent at its retry.
async fn an_endpoint_gets_its_attempts_a_few_at_a_time_and_none_begun_late(mut app: TestApp) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let org = app.new_org("Slow receiver").await;
    let (now, most, count) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (n, m, c) = (now.clone(), most.clone(), count.clone());
    let app_router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (n, m, c) = (n.clone(), m.clone(), c.clone());
            async move {
                m.fetch_max(n.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                c.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app_router).await });
    let endpoint = create_endpoint(
        &app,
        &org,
        json!({"url": url, "events": ["membership.removed"]}),
    )
    .await;
    let ids = app.add_users_as_members(&org, "member", 3).await;
    let _worker = worker_with(&mut app, &[50], |s| {
        s.timeout = Duration::from_millis(300);
        s.per_endpoint = 1;
    });
    // One bulk: its three deliveries are committed, and claimed, together.
    app.post(
        &format!("/v1/organizations/{org}/memberships/bulk-remove"),
        &app.admin,
        json!({"membership_ids": ids}),
    )
    .await
    .expect(StatusCode::OK);
    let deliveries = deliveries_path(&org, &endpoint);
    let attempts = read_until(&app, &deliveries, |a| {
        let data = a["data"].as_array().unwrap();
        data.iter().filter(|x| x["status_code"] == 200).count() == 3
    })
    .await;
    assert_eq!(most.load(Ordering::SeqCst), 1, "one at a time");
    assert!(count.load(Ordering::SeqCst) >= 3, "{attempts}");
    let late: Vec<&Value> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status_code"].is_null())
        .collect();
    assert!(
        !late.is_empty(),
        "the third could not begin in time: {attempts}"
    );
    for a in late {
        assert!(
            a["error"].as_str().unwrap().starts_with("not sent: "),
            "{attempts}"
        );
    }
}

/// A turn claims at most what it has room for, however many deliveries wait: each claimed
/// one is sent and counted against the worker's bound. (On PostgreSQL, a claim whose locking
/// subquery was run again for each row claimed hundreds more than asked.)
async fn a_turn_claims_no_more_than_it_asked_for(app: TestApp) {
    let org = app.new_org("Backlog").await;
    let (url, _received) = receiver(vec![]).await;
    create_endpoint(&app, &org, json!({"url": url})).await;
    // Each member added is a `user.created` and a `membership.created`: 600 deliveries.
    app.add_users_as_members(&org, "member", 300).await;
    let roster = Roster::new(app.store.clone());
    let lease = Duration::from_secs(60);
    let mut seen = std::collections::HashSet::new();
    for turn in 0..3 {
        let claimed = roster
            .delivery_turn(&[], &RetrySchedule::default(), 50, lease)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 50, "turn {turn}");
        for due in claimed {
            assert!(seen.insert((due.endpoint.id, due.event.id)), "claimed once");
        }
    }
}

/// A delivery written while the worker takes them is claimed by its own transaction and handed
/// over when it commits, with its event: no turn claims it while its lease lasts, and once the
/// lease has run out (the worker never sent it: its process died) a turn claims it, as its
/// second attempt. A refused change hands over nothing; a closed hand-off, nothing either.
async fn a_delivery_is_claimed_by_its_own_transaction_and_handed_over_when_it_commits(
    app: TestApp,
) {
    let org = app.new_org("Born").await;
    create_endpoint(
        &app,
        &org,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["membership.removed"]}),
    )
    .await;
    let lease = Duration::from_millis(800);
    let roster = Roster::new(app.store.clone());
    let (hand_off, mut handed) = roster_core::webhooks::DeliveryHandOff::new(lease);
    roster.hand_deliveries_to(hand_off.clone());
    hand_off.set_open(true);
    let member = app.add_member(&org, "member").await;
    let other = app.add_member(&org, "member").await;
    a_member_is_refused_removing_another(&app, &org, &member, &other).await;
    assert!(handed.try_recv().is_err(), "nothing of a refused change");
    app.remove_member(&org, &member.membership_id).await;
    let born = handed.try_recv().expect("handed over at its commit");
    assert_eq!(born.len(), 1);
    assert_eq!(born[0].event.event_type.key(), "membership.removed");
    let roster_core::events::EventObject::Membership(removed) = &born[0].event.data.object else {
        panic!("a membership's event: {:?}", born[0].event);
    };
    assert_eq!(
        removed.id.to_string(),
        member.membership_id,
        "the removal's own event"
    );
    let schedule = RetrySchedule::default();
    let turn = || roster.delivery_turn(&[], &schedule, 50, lease);
    assert!(
        turn().await.unwrap().is_empty(),
        "claimed while its lease lasts"
    );
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let claimed = turn().await.unwrap();
    assert_eq!(claimed.len(), 1, "claimed again once its lease ran out");
    assert_eq!(claimed[0].event.id, born[0].event.id);
    assert_eq!(claimed[0].attempts_before, 1, "the first attempt counted");

    // Closed (the worker has no room, or is stopping): written unclaimed, for a turn.
    hand_off.set_open(false);
    app.remove_member(&org, &other.membership_id).await;
    assert!(handed.try_recv().is_err(), "nothing handed over");
    let claimed = turn().await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts_before, 0);
}

/// An organization admin cannot make roster call internal addresses: with the operator's
/// default, loopback, private, link-local and metadata addresses are refused at creation,
/// by address or by a name that resolves to one.
async fn an_endpoint_on_an_internal_address_is_refused(mut app: TestApp) {
    let strict = Roster::new(app.store.clone()).with_webhook_url_policy(Arc::new(AddressPolicy {
        allow_private: false,
    }));
    app.router = roster::app_over(strict);
    let org = app.org.clone();
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hook",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/",
    ] {
        let res = app
            .post(&endpoints_path(&org), &app.admin, json!({"url": url}))
            .await;
        assert_eq!(
            (res.status, res.code()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{url}"
        );
        assert_eq!(res.body["error"]["details"]["field"], "url");
        assert!(
            res.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("internal address")
        );
    }
    let res = app.get(&endpoints_path(&org), &app.admin).await;
    assert_eq!(res.body["data"], json!([]), "nothing was created");
}

/// What a receiver got, as the verifiers read it: each delivery's secret, headers and body.
fn verifier_input(got: &[(HeaderMap, String, Value)], secret: &str) -> Vec<Value> {
    got.iter()
        .map(|(headers, body, _)| {
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
                .collect();
            json!({"secret": secret, "headers": headers, "body": body})
        })
        .collect()
}

/// Runs `command` with `input` as JSON on its standard input; what it printed.
async fn run_with_input(
    mut command: std::process::Command,
    input: Vec<Value>,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(Value::Array(input).to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// The signatures verify with the Standard Webhooks reference library (Python, pinned), fed
/// exactly what the receiver got.
async fn deliveries_verify_with_the_standard_webhooks_library(mut app: TestApp) {
    let python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemathesis/.venv/bin/python");
    assert!(
        python.is_file(),
        "the test venv is missing (./test makes it)"
    );
    let org = app.new_org("Verified").await;
    let (url, received) = receiver(vec![]).await;
    let endpoint = create_endpoint(&app, &org, json!({"url": url})).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let _worker = worker(&mut app, &[100]);
    let member = app.add_member(&org, "member").await;
    app.remove_member(&org, &member.membership_id).await;
    let got = received.at_least(2).await;
    let deliveries = verifier_input(&got, &secret);
    let mut forged = deliveries[0].clone();
    forged["body"] = json!(forged["body"].as_str().unwrap().replace("member", "admin"));
    let verify = |input: Vec<Value>| {
        let mut command = std::process::Command::new(&python);
        command.arg(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/standardwebhooks/verify.py"),
        );
        run_with_input(command, input)
    };
    let out = verify(deliveries).await;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut types: Vec<&str> = said.lines().map(|l| l.split(' ').next().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["membership.created", "membership.removed"]);
    let out = verify(vec![forged]).await;
    assert!(!out.status.success(), "a changed body must not verify");
    assert!(String::from_utf8_lossy(&out.stderr).contains("WebhookVerificationError"));
}

/// A Clerk-format endpoint gets Clerk's own event shapes, signed with Svix's headers, and
/// nothing for what Clerk has no word for (a machine identity).
async fn a_clerk_endpoint_gets_clerks_events_and_headers(mut app: TestApp) {
    let org = app.new_org("Clerk hooks").await;
    let (url, received) = receiver(vec![]).await;
    let endpoint = create_endpoint(&app, &org, json!({"url": url, "format": "clerk"})).await;
    assert_eq!(endpoint["format"], "clerk");
    let _worker = worker(&mut app, &[100]);
    let member = app.add_member(&org, "member").await;
    let project = app.project_with(&org, "ci", &[]).await;
    let identity = app.new_identity(&org, "deployer").await;
    app.add_identity_to_project(&project, &identity).await;
    app.remove_member(&org, &member.membership_id).await;
    // An invitation, then its revocation: Clerk's invitation events.
    let invited = app.invite(&org, "invitee@example.com").await;
    let invitation = invited["id"].as_str().unwrap().to_owned();
    app.remove_member(&org, &invitation).await;
    let got = received.at_least(4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        received.types(),
        [
            "organizationInvitation.created",
            "organizationInvitation.revoked",
            "organizationMembership.created",
            "organizationMembership.deleted",
        ],
        "nothing for the identity"
    );
    let (invitation_events, membership_events): (Vec<_>, Vec<_>) = got
        .iter()
        .partition(|(_, _, body)| body["data"]["object"] == "organization_invitation");
    for (_, _, body) in &invitation_events {
        let status = match body["type"].as_str() {
            Some("organizationInvitation.created") => "pending",
            _ => "revoked",
        };
        let data = &body["data"];
        assert_eq!(data["object"], "organization_invitation");
        assert_eq!(
            data["id"],
            json!(roster_dialect_clerk::ids::encode(
                "orginv",
                invitation.parse().unwrap()
            ))
        );
        assert_eq!(data["email_address"], "invitee@example.com");
        assert_eq!(data["status"], status);
        assert_eq!(
            (data["role"].clone(), data["role_name"].clone()),
            (json!("org:member"), json!("Member"))
        );
        for required in [
            "public_metadata",
            "url",
            "expires_at",
            "created_at",
            "updated_at",
            "inviter_id",
            "public_inviter_data",
        ] {
            assert!(data.get(required).is_some(), "{required} in {data}");
        }
    }
    let clerk_user = roster_dialect_clerk::ids::encode("user", member.user_id.parse().unwrap());
    let clerk_org = roster_dialect_clerk::ids::encode("org", org.parse().unwrap());
    assert_eq!(membership_events.len(), 2);
    for (headers, _, body) in membership_events {
        for h in ["svix-id", "svix-timestamp", "svix-signature"] {
            assert!(headers.contains_key(h), "{h}");
        }
        assert!(!headers.contains_key("webhook-id"));
        assert_eq!(body["object"], "event");
        assert_eq!(body["instance_id"], "ins_roster");
        assert!(
            body["timestamp"].as_i64().unwrap() > 1_700_000_000_000,
            "milliseconds"
        );
        let data = &body["data"];
        assert_eq!(data["object"], "organization_membership");
        assert_eq!(data["role"], "org:member");
        assert_eq!(data["public_user_data"]["user_id"], json!(clerk_user));
        assert_eq!(data["organization"]["id"], json!(clerk_org));
    }
}

mod verified_by_the_reference_library {
    use super::*;

    /// What a Clerk endpoint receives verifies with Clerk's own `verifyWebhook`.
    async fn clerk_deliveries_verify_with_clerks_own_verify_webhook(mut app: TestApp) {
        let sdk = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clerk-sdk");
        assert!(
            sdk.join("node_modules/@clerk/backend").is_dir(),
            "Clerk's SDK is missing (./test installs it)"
        );
        let org = app.new_org("Clerk verified").await;
        let (url, received) = receiver(vec![]).await;
        let endpoint = create_endpoint(&app, &org, json!({"url": url, "format": "clerk"})).await;
        let secret = endpoint["secret"].as_str().unwrap().to_owned();
        let _worker = worker(&mut app, &[100]);
        let member = app.add_member(&org, "member").await;
        app.patch(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                member.membership_id
            ),
            &app.admin,
            json!({"role": "admin"}),
        )
        .await
        .expect(StatusCode::OK);
        app.patch(
            &format!("/v1/organizations/{org}"),
            &app.admin,
            json!({"name": "Renamed"}),
        )
        .await
        .expect(StatusCode::OK);
        app.remove_member(&org, &member.membership_id).await;
        let got = received.at_least(4).await;
        let mut command = std::process::Command::new("node");
        command.arg("verify-webhooks.mjs").current_dir(sdk);
        let out = run_with_input(command, verifier_input(&got, &secret)).await;
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut types: Vec<&str> = said.lines().map(|l| l.split(' ').next().unwrap()).collect();
        types.sort();
        assert_eq!(
            types,
            [
                "organization.updated",
                "organizationMembership.created",
                "organizationMembership.deleted",
                "organizationMembership.updated",
            ]
        );
    }

    on_both_backends!(
        needs_tool;
        deliveries_verify_with_the_standard_webhooks_library,
        clerk_deliveries_verify_with_clerks_own_verify_webhook,
    );
}

/// A roster over the test's store that keeps events for no time at all.
fn purging(app: &TestApp) -> roster_core::Roster {
    roster_core::Roster::new(app.store.clone()).with_event_retention(Duration::ZERO)
}

async fn events_past_their_window_go_but_not_those_a_delivery_waits_for_or_a_record_names(
    app: TestApp,
) {
    let org = app.new_org("Purged").await;
    let before = app.memberships(&org).await.len();
    let gone = app.add_member(&org, "member").await;
    app.remove_member(&org, &gone.membership_id).await;
    // An endpoint no worker sends to: its delivery of the next removal stays pending.
    create_endpoint(
        &app,
        &org,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["membership.removed"]}),
    )
    .await;
    let waiting = app.add_member(&org, "member").await;
    app.remove_member(&org, &waiting.membership_id).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let purged = purging(&app).purge_expired_events().await.unwrap();
    assert!(
        purged.events >= 3,
        "every event nothing waits for: {purged:?}"
    );
    let left = || async {
        let page = app
            .get(
                &format!("/v1/organizations/{org}/events?limit=500"),
                &app.admin,
            )
            .await
            .expect(StatusCode::OK);
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"]["object"]["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        left().await,
        [gone.membership_id.clone(), waiting.membership_id.clone()],
        "the removal a delivery waits for, and the one only a former member's record names"
    );
    assert_eq!(
        app.memberships(&org).await.len(),
        before,
        "nothing else touched"
    );
    // Its record purged, the removal's event goes at the next purge.
    let purge_record = |id: String| {
        let app = &app;
        let path = format!("/v1/organizations/{org}/former-members/{id}");
        async move { app.delete(&path, &app.admin).await.expect(StatusCode::OK) }
    };
    purge_record(gone.membership_id.clone()).await;
    let purged = purging(&app).purge_expired_events().await.unwrap();
    assert_eq!(purged.events, 1, "{purged:?}");
    assert_eq!(left().await, std::slice::from_ref(&waiting.membership_id));
    // Delivered (here, by hand), its delivery goes; the event stays while its record names
    // it, and goes once that is purged.
    app.sabotage("UPDATE webhook_deliveries SET state = 'succeeded'")
        .await;
    let purged = purging(&app).purge_expired_events().await.unwrap();
    assert_eq!((purged.events, purged.deliveries), (0, 1), "{purged:?}");
    purge_record(waiting.membership_id.clone()).await;
    let purged = purging(&app).purge_expired_events().await.unwrap();
    assert_eq!(purged.events, 1, "{purged:?}");
    assert!(left().await.is_empty());
}

async fn a_deleted_organizations_leftovers_go_once_nothing_waits_for_them(app: TestApp) {
    let org = app.new_org("Closing").await;
    let member = app.add_member(&org, "member").await;
    app.remove_member(&org, &member.membership_id).await;
    let org_id: roster_core::OrganizationId = org.parse().unwrap();
    let membership: roster_core::MembershipId = member.membership_id.parse().unwrap();
    let endpoint = create_endpoint(
        &app,
        &org,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["organization.deleted"]}),
    )
    .await;
    app.delete(&format!("/v1/organizations/{org}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let mut s = app.store.read().await.unwrap();
    assert_eq!(
        s.former_member(org_id, membership).await.unwrap(),
        None,
        "nothing can be reinstated into an organization that is gone"
    );
    drop(s);
    // The deletion's own event waits for its delivery: the endpoint stays for it.
    let purged = purging(&app).purge_expired_events().await.unwrap();
    assert_eq!(purged.endpoints, 0, "{purged:?}");
    app.sabotage("UPDATE webhook_deliveries SET state = 'succeeded'")
        .await;
    let purged = purging(&app).purge_expired_events().await.unwrap();
    assert_eq!(purged.endpoints, 1, "{purged:?}");
    let endpoint_id: roster_core::ids::WebhookEndpointId =
        endpoint["id"].as_str().unwrap().parse().unwrap();
    let mut s = app.store.read().await.unwrap();
    assert!(
        s.webhook_endpoint(org_id, endpoint_id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_deleted_endpoint_takes_what_it_was_owed_and_leaves_its_history_to_the_purge(
    app: TestApp,
) {
    let org = app.new_org("Unhooked").await;
    let (sent, owed) = (
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    );
    // An endpoint no worker sends to: one delivery made history by hand, one still owed.
    let endpoint = create_endpoint(
        &app,
        &org,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["membership.removed"]}),
    )
    .await;
    app.remove_member(&org, &sent.membership_id).await;
    app.sabotage("UPDATE webhook_deliveries SET state = 'succeeded'")
        .await;
    app.remove_member(&org, &owed.membership_id).await;

    let path = format!(
        "{}/{}",
        endpoints_path(&org),
        endpoint["id"].as_str().unwrap()
    );
    app.delete(&path, &app.admin).await.expect(StatusCode::OK);
    app.get(&deliveries_path(&org, &endpoint), &app.admin)
        .await
        .expect(StatusCode::NOT_FOUND);
    // The purge takes the history; of what was owed nothing is left to take.
    let purged = purging(&app).purge_expired_events().await.unwrap();
    assert_eq!(purged.deliveries, 1, "{purged:?}");
    app.sabotage("UPDATE webhook_deliveries SET state = 'succeeded'")
        .await;
    let purged = purging(&app).purge_expired_events().await.unwrap();
    assert_eq!(purged.deliveries, 0, "{purged:?}");
}

/// The worker keeps each endpoint's parsed URL and signing key between attempts: a rotated
/// secret and a new URL must still take effect at the next delivery.
async fn a_rotated_secret_and_a_new_url_take_effect_at_the_next_delivery(mut app: TestApp) {
    let org = app.new_org("Moved").await;
    let members = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let (url, received) = receiver(vec![]).await;
    let endpoint = create_endpoint(
        &app,
        &org,
        json!({"url": url, "events": ["membership.removed"]}),
    )
    .await;
    let path = format!(
        "{}/{}",
        endpoints_path(&org),
        endpoint["id"].as_str().unwrap()
    );
    let _worker = worker(&mut app, &[1000]);
    // Whether a request the receiver got is signed with `secret`.
    let signed_with = |(headers, body, value): &(HeaderMap, String, Value), secret: &str| {
        let (signature, expected) =
            signatures(headers, value["id"].as_str().unwrap(), body, secret);
        Some(signature) == expected
    };
    let of = |value: &Value| value["data"]["object"]["id"].as_str().unwrap().to_owned();

    app.remove_member(&org, &members[0].membership_id).await;
    let first = received.at_least(1).await.remove(0);
    assert!(signed_with(&first, endpoint["secret"].as_str().unwrap()));
    assert_eq!(of(&first.2), members[0].membership_id);

    let rotated = app
        .post(&format!("{path}/rotate-secret"), &app.admin, json!({}))
        .await
        .expect(StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap();
    app.remove_member(&org, &members[1].membership_id).await;
    let second = received.at_least(2).await.remove(1);
    assert_eq!(of(&second.2), members[1].membership_id);
    assert!(
        signed_with(&second, new_secret),
        "signed with the new secret"
    );
    assert!(!signed_with(&second, endpoint["secret"].as_str().unwrap()));

    let (moved_url, moved) = receiver(vec![]).await;
    app.patch(&path, &app.admin, json!({"url": moved_url}))
        .await
        .expect(StatusCode::OK);
    app.remove_member(&org, &members[2].membership_id).await;
    let third = moved.at_least(1).await.remove(0);
    assert_eq!(of(&third.2), members[2].membership_id);
    assert!(signed_with(&third, new_secret));
    assert_eq!(received.all().len(), 2, "nothing more to the old URL");
}

on_both_backends!(
    a_deleted_endpoint_takes_what_it_was_owed_and_leaves_its_history_to_the_purge,
    events_past_their_window_go_but_not_those_a_delivery_waits_for_or_a_record_names,
    a_deleted_organizations_leftovers_go_once_nothing_waits_for_them,
    an_endpoint_shows_its_secret_once_and_is_managed_by_those_who_may,
    a_removal_is_delivered_signed_and_a_failing_receiver_gets_the_same_event_again,
    an_endpoint_gets_only_the_types_it_asked_for_and_nothing_of_a_refused_change,
    an_endpoint_on_an_internal_address_is_refused,
    an_endpoint_failing_for_five_days_is_disabled_and_says_why,
    two_workers_over_one_database_send_each_delivery_once,
    a_turn_claims_no_more_than_it_asked_for,
    a_delivery_is_claimed_by_its_own_transaction_and_handed_over_when_it_commits,
    an_endpoint_gets_its_attempts_a_few_at_a_time_and_none_begun_late,
    a_clerk_endpoint_gets_clerks_events_and_headers,
    an_attempt_to_an_internal_address_is_refused_and_recorded,
    a_rotated_secret_and_a_new_url_take_effect_at_the_next_delivery,
);
