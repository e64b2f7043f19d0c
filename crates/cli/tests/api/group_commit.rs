//! Removals that share one commit (group commit, `roster_core::service::group_commit`): each
//! request keeps its own outcome, as if the requests had run one after another, and a request
//! that fails half-way is undone alone.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use roster::Database;
use roster_core::auth::Caller;
use roster_core::auth::authenticate;
use roster_core::secrets::{Credentials, PresentedToken};
use roster_core::service::{OwnMembership, RemovalRequest};
use roster_core::{
    Actor, CoreError, MemberRef, MembershipId, OrganizationId, Removal, RemovalOptions,
    RequestContext, Roster, Rule, UserId,
};

use crate::harness::{TestApp, with_wrong_secret};

async fn actor(app: &TestApp, token: &str) -> Actor {
    let presented = PresentedToken::parse_bearer(token).expect("a roster token");
    authenticate(&*app.store, Credentials::Token(presented))
        .await
        .expect("the token authenticates")
}

fn membership(id: &str) -> MemberRef {
    MemberRef::Membership(MembershipId(id.parse().unwrap()))
}

fn request(actor: &Actor, targets: Vec<MemberRef>) -> RemovalRequest {
    RemovalRequest::new(
        Caller::Authenticated(actor.clone()),
        targets,
        RemovalOptions::default(),
        RequestContext::default(),
    )
}

/// Makes every audit write about `target_id` fail: a removal of that target then fails at its
/// last statement, after its deletes.
async fn fail_audit_writes_about(app: &TestApp, target_id: &str) {
    let sql = match &app.database {
        Database::Sqlite(_) => format!(
            "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events \
             WHEN NEW.target_id = '{target_id}' BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
        ),
        Database::Postgres(_) => format!(
            "CREATE FUNCTION fail_audit() RETURNS trigger AS $$ BEGIN \
               IF NEW.target_id = '{target_id}' THEN RAISE EXCEPTION 'injected fault'; END IF; \
               RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events \
               FOR EACH ROW EXECUTE FUNCTION fail_audit();"
        ),
    };
    app.sabotage(&sql).await;
}

async fn removals_sharing_one_commit_each_keep_their_own_outcome(app: TestApp) {
    let org = app.org.clone();
    let second_admin = app.add_member(&org, "admin").await;
    let [a, b, c, d] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let pid = app.project_with(&org, "Web", &[&a, &b, &c, &d]).await;
    fail_audit_writes_about(&app, &c.membership_id).await;

    let admin = actor(&app, &app.admin).await;
    let plain_member = actor(&app, &b.token).await;
    let requests = [
        request(&admin, vec![membership(&a.membership_id)]),
        request(&admin, vec![MemberRef::Membership(MembershipId::new())]),
        // Fails at its audit write, after deleting c's memberships: those deletes must go.
        request(&admin, vec![membership(&c.membership_id)]),
        request(&admin, vec![membership(&second_admin.membership_id)]),
        // The owner is now the last admin, because the request before removed the other one.
        request(&admin, vec![membership(&app.owner.membership_id)]),
        request(&plain_member, vec![membership(&d.membership_id)]),
        request(
            &admin,
            vec![membership(&b.membership_id), membership(&d.membership_id)],
        ),
    ];
    let org_id = OrganizationId(org.parse().unwrap());
    let roster = Roster::new(app.store.clone());
    let outcomes = roster.remove_memberships_together(org_id, &requests).await;
    assert_eq!(
        roster.group_commit_stats().restarts,
        1,
        "the failed audit write starts the batch over"
    );

    let removed_ids = |i: usize| -> Vec<String> {
        match &outcomes[i] {
            Ok(r) => r.removed.iter().map(|m| m.id.to_string()).collect(),
            Err(e) => panic!("request {i} was refused: {e:?}"),
        }
    };
    assert_eq!(removed_ids(0), [a.membership_id.as_str()]);
    assert!(
        matches!(
            outcomes[1],
            Err(CoreError::NotFound {
                kind: "membership",
                ..
            })
        ),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(outcomes[2], Err(CoreError::Internal(_))),
        "{:?}",
        outcomes[2]
    );
    assert_eq!(removed_ids(3), [second_admin.membership_id.as_str()]);
    assert!(
        matches!(
            outcomes[4],
            Err(CoreError::RuleViolated {
                rule: Rule::LastAdmin,
                ..
            })
        ),
        "{:?}",
        outcomes[4]
    );
    assert!(
        matches!(outcomes[5], Err(CoreError::Forbidden { .. })),
        "{:?}",
        outcomes[5]
    );
    assert_eq!(
        removed_ids(6),
        [b.membership_id.clone(), d.membership_id.clone()]
    );
    assert_eq!(
        outcomes[6]
            .as_ref()
            .unwrap()
            .cascade
            .project_memberships
            .len(),
        2
    );

    let left: HashSet<String> = app.membership_ids(&org).await.into_iter().collect();
    assert_eq!(
        left,
        HashSet::from([app.owner.membership_id.clone(), c.membership_id.clone()]),
        "the successes were committed, the failed request was undone"
    );
    assert_eq!(
        app.project_users(&pid).await,
        [c.user_id.as_str()],
        "the failed request's cascade was undone with it"
    );
    let audited: HashSet<String> = app
        .audited(&org, "membership.removed")
        .await
        .into_iter()
        .collect();
    assert_eq!(
        audited,
        HashSet::from([
            a.membership_id,
            second_admin.membership_id,
            b.membership_id,
            d.membership_id
        ]),
        "one audit event per committed removal, none for the refused ones"
    );
}

async fn removals_sharing_one_commit_in_a_missing_organization_are_all_not_found(app: TestApp) {
    let admin = actor(&app, &app.admin).await;
    let requests = [
        request(&admin, vec![MemberRef::Membership(MembershipId::new())]),
        request(&admin, vec![MemberRef::Membership(MembershipId::new())]),
    ];
    let outcomes = Roster::new(app.store.clone())
        .remove_memberships_together(OrganizationId::new(), &requests)
        .await;
    all_organization_not_found(outcomes, 2);
}

/// Asserts `n` outcomes, each the organization's not-found.
fn all_organization_not_found(outcomes: Vec<Result<Removal, CoreError>>, n: usize) {
    assert_eq!(outcomes.len(), n);
    for o in outcomes {
        assert!(
            matches!(
                o,
                Err(CoreError::NotFound {
                    kind: "organization",
                    ..
                })
            ),
            "{o:?}"
        );
    }
}

/// As above with token claims, which a batch reads as it locks the organization (one statement
/// on PostgreSQL): the organization's absence still reaches every request.
async fn removals_by_token_in_a_missing_organization_are_all_not_found(app: TestApp) {
    let requests = [
        presenting(&app.admin, vec![MemberRef::Membership(MembershipId::new())]),
        presenting(&app.admin, vec![MemberRef::Membership(MembershipId::new())]),
    ];
    let outcomes = Roster::new(app.store.clone())
        .remove_memberships_together(OrganizationId::new(), &requests)
        .await;
    all_organization_not_found(outcomes, 2);
}

fn presenting(token: &str, targets: Vec<MemberRef>) -> RemovalRequest {
    let presented = PresentedToken::parse_bearer(token).expect("a roster token");
    RemovalRequest::new(
        Caller::presenting(Credentials::Token(presented)).unwrap(),
        targets,
        RemovalOptions::default(),
        RequestContext::default(),
    )
}

async fn token_claims_sharing_one_commit_are_verified_each_on_its_own(app: TestApp) {
    let org = app.org.clone();
    let [a, b] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let wrong_secret = with_wrong_secret(&app.admin);
    let unknown_id = format!("rst_{}_{}", uuid::Uuid::now_v7().simple(), "0".repeat(64));
    let requests = [
        presenting(&wrong_secret, vec![membership(&b.membership_id)]),
        presenting(&app.admin, vec![membership(&a.membership_id)]),
        presenting(&unknown_id, vec![membership(&b.membership_id)]),
        // A member's own valid token: verified, then refused for lack of the permission.
        presenting(&a.token, vec![membership(&b.membership_id)]),
    ];
    let roster = Roster::new(app.store.clone());
    let outcomes = roster
        .remove_memberships_together(OrganizationId(org.parse().unwrap()), &requests)
        .await;
    let unauthenticated = |i: usize| {
        assert!(
            matches!(outcomes[i], Err(CoreError::Unauthenticated(_))),
            "request {i}: {:?}",
            outcomes[i]
        )
    };
    unauthenticated(0);
    assert_eq!(
        outcomes[1]
            .as_ref()
            .expect("the valid token removes")
            .removed
            .first()
            .unwrap()
            .id
            .to_string(),
        a.membership_id
    );
    unauthenticated(2);
    // a was removed by the request before, so a's token no longer sees the organization.
    assert!(
        matches!(
            outcomes[3],
            Err(CoreError::NotFound {
                kind: "organization",
                ..
            })
        ),
        "{:?}",
        outcomes[3]
    );
    assert!(
        app.membership_ids(&org).await.contains(&b.membership_id),
        "b was named only by callers that were refused"
    );

    // In a missing organization a bad token is still a 401, a good one a 404.
    let outcomes = roster
        .remove_memberships_together(
            OrganizationId::new(),
            &[
                presenting(&wrong_secret, vec![membership(&b.membership_id)]),
                presenting(&app.admin, vec![membership(&b.membership_id)]),
            ],
        )
        .await;
    assert!(
        matches!(outcomes[0], Err(CoreError::Unauthenticated(_))),
        "{:?}",
        outcomes[0]
    );
    assert!(
        matches!(outcomes[1], Err(CoreError::NotFound { .. })),
        "{:?}",
        outcomes[1]
    );
}

async fn removals_wanting_context_sharing_one_commit_each_see_the_count_after_their_own(
    app: TestApp,
) {
    // Once in a batch decided together, once in one run request by request (a request that
    // deletes passwords cannot be decided together): the same answers either way.
    for one_by_one in [false, true] {
        context_scenario(&app, one_by_one).await;
    }
}

async fn context_scenario(app: &TestApp, one_by_one: bool) {
    let org = app.org.clone();
    let [a, b, c] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let before = app.membership_ids(&org).await.len() as i64;
    let admin = actor(app, &app.admin).await;
    let by_user = |m: &crate::harness::Member| MemberRef::User(UserId(m.user_id.parse().unwrap()));
    let with_context = |targets| RemovalRequest {
        include_context: true,
        ..request(&admin, targets)
    };
    let mut requests = vec![
        with_context(vec![by_user(&a)]),
        request(&admin, vec![by_user(&b)]),
        with_context(vec![MemberRef::User(UserId::new())]),
        with_context(vec![by_user(&c)]),
    ];
    if one_by_one {
        requests.push(RemovalRequest {
            options: RemovalOptions {
                delete_passwords: true,
                delete_service_tokens: false,
            },
            ..request(&admin, vec![MemberRef::User(UserId::new())])
        });
    }
    let org_id = OrganizationId(org.parse().unwrap());
    let outcomes = Roster::new(app.store.clone())
        .remove_memberships_together(org_id, &requests)
        .await;
    let context = |i: usize| {
        outcomes[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("request {i}: {e:?}"))
            .context
            .clone()
            .unwrap_or_else(|| panic!("request {i} has no context"))
    };
    let (first, last) = (context(0), context(3));
    assert_eq!(first.member_count, before - 1, "one by one: {one_by_one}");
    assert_eq!(
        last.member_count,
        before - 3,
        "b's removal in between is counted (one by one: {one_by_one})"
    );
    assert_eq!(first.organization.id, org_id);
    assert_eq!(last.organization.id, org_id);
    let user_ids = |ctx: &roster_core::RemovalContext| -> Vec<String> {
        ctx.users.iter().map(|u| u.id.to_string()).collect()
    };
    assert_eq!(user_ids(&first), [a.user_id.as_str()]);
    assert_eq!(user_ids(&last), [c.user_id.as_str()]);
    assert!(first.roles.iter().any(|r| r.key == "member"));
    assert!(outcomes[1].as_ref().unwrap().context.is_none());
    assert!(matches!(outcomes[2], Err(CoreError::NotFound { .. })));
    assert_eq!(app.membership_ids(&org).await.len() as i64, before - 3);
}

/// `requests` run as one batch in `org`, which must not have started over (no request failed
/// after a write).
async fn one_batch_never_restarted(
    app: &TestApp,
    org: &str,
    requests: &[RemovalRequest],
) -> Vec<Result<Removal, CoreError>> {
    let roster = Roster::new(app.store.clone());
    let org_id = OrganizationId(org.parse().unwrap());
    let outcomes = roster.remove_memberships_together(org_id, requests).await;
    assert_eq!(roster.group_commit_stats().restarts, 0, "{outcomes:?}");
    outcomes
}

/// The memberships the `i`th of `outcomes` removed; it must not have been refused.
fn removed_by(outcomes: &[Result<Removal, CoreError>], i: usize) -> Vec<String> {
    match &outcomes[i] {
        Ok(r) => r.removed.iter().map(|m| m.id.to_string()).collect(),
        Err(e) => panic!("request {i} was refused: {e:?}"),
    }
}

/// The same kinds of outcome as above without any failure, so that the batch is decided in
/// memory and written with one statement per table (it must not start over).
async fn plain_removals_sharing_one_commit_are_decided_as_if_one_after_another(app: TestApp) {
    let org = app.org.clone();
    let second_admin = app.add_member(&org, "admin").await;
    let third_admin = app.add_member(&org, "admin").await;
    let [a, b, c] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let pid = app.project_with(&org, "Web", &[&b, &c]).await;
    let admin = actor(&app, &app.admin).await;
    let third = actor(&app, &third_admin.token).await;
    let plain_member = actor(&app, &c.token).await;
    let by_user = |m: &crate::harness::Member| MemberRef::User(UserId(m.user_id.parse().unwrap()));
    let requests = [
        request(&admin, vec![membership(&a.membership_id)]),
        // a is gone now.
        request(&admin, vec![membership(&a.membership_id)]),
        request(&plain_member, vec![membership(&b.membership_id)]),
        request(&third, vec![membership(&second_admin.membership_id)]),
        // third_admin's own membership goes here...
        request(&admin, vec![by_user(&third_admin)]),
        // ...so third_admin no longer sees the organization.
        request(&third, vec![membership(&b.membership_id)]),
        // The owner is the last admin now.
        request(&admin, vec![membership(&app.owner.membership_id)]),
        request(
            &admin,
            vec![
                membership(&b.membership_id),
                by_user(&c),
                membership(&b.membership_id),
            ],
        ),
    ];
    let outcomes = one_batch_never_restarted(&app, &org, &requests).await;
    let removed = |i: usize| removed_by(&outcomes, i);
    let refused = |i: usize| {
        outcomes[i]
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("request {i} succeeded"))
    };
    assert_eq!(removed(0), [a.membership_id.as_str()]);
    assert!(
        matches!(
            refused(1),
            CoreError::NotFound {
                kind: "membership",
                ..
            }
        ),
        "{:?}",
        refused(1)
    );
    assert!(
        matches!(refused(2), CoreError::Forbidden { .. }),
        "{:?}",
        refused(2)
    );
    assert_eq!(removed(3), [second_admin.membership_id.as_str()]);
    assert_eq!(removed(4), [third_admin.membership_id.as_str()]);
    assert!(
        matches!(
            refused(5),
            CoreError::NotFound {
                kind: "organization",
                ..
            }
        ),
        "{:?}",
        refused(5)
    );
    assert!(
        matches!(
            refused(6),
            CoreError::RuleViolated {
                rule: Rule::LastAdmin,
                ..
            }
        ),
        "{:?}",
        refused(6)
    );
    assert_eq!(
        removed(7),
        [b.membership_id.as_str(), c.membership_id.as_str()]
    );
    assert_eq!(
        outcomes[7]
            .as_ref()
            .unwrap()
            .cascade
            .project_memberships
            .len(),
        2
    );
    assert_eq!(
        outcomes[0]
            .as_ref()
            .unwrap()
            .cascade
            .project_memberships
            .len(),
        0
    );

    let left: HashSet<String> = app.membership_ids(&org).await.into_iter().collect();
    assert_eq!(left, HashSet::from([app.owner.membership_id.clone()]));
    let audited = app.audited(&org, "membership.removed").await.len();
    assert_eq!(audited, 5, "one audit event per removed membership");
    let project_members = app
        .get(&format!("/v1/projects/{pid}/memberships"), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(project_members["data"].as_array().unwrap().len(), 0);
}

/// A request that may be its caller leaving (`OwnMembership::Leaves`, PlanetScale's rule)
/// shares the batch like any removal: leaving needs no permission beyond membership and is
/// recorded as leaving, an only organization is kept, and naming oneself without the option, or
/// among others, is still refused. Once decided together, once request by request.
async fn members_leaving_share_one_commit_with_removals_by_others(app: TestApp) {
    for one_by_one in [false, true] {
        leaving_scenario(&app, one_by_one).await;
    }
}

async fn leaving_scenario(app: &TestApp, one_by_one: bool) {
    let org = app.org.clone();
    let elsewhere = app.new_org(&format!("Elsewhere {one_by_one}")).await;
    // not_leaving is an admin: it may remove members, but not itself without the option.
    let [
        by_user,
        by_id,
        only_here,
        not_leaving,
        among_others,
        removed,
    ] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "admin").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    for m in [&by_user, &by_id, &not_leaving, &among_others] {
        app.make_member(&elsewhere, &m.user_id, "member").await;
    }
    let admin = actor(app, &app.admin).await;
    let user = |m: &crate::harness::Member| MemberRef::User(UserId(m.user_id.parse().unwrap()));
    let leaving = |caller: &Actor, targets| {
        let mut r = request(caller, targets);
        r.own_membership = OwnMembership::Leaves {
            refuse_only_organization: true,
        };
        r
    };
    let by_user_actor = actor(app, &by_user.token).await;
    let mut requests = vec![
        leaving(&by_user_actor, vec![user(&by_user)]),
        leaving(
            &actor(app, &by_id.token).await,
            vec![membership(&by_id.membership_id)],
        ),
        leaving(&actor(app, &only_here.token).await, vec![user(&only_here)]),
        request(
            &actor(app, &not_leaving.token).await,
            vec![user(&not_leaving)],
        ),
        leaving(
            &actor(app, &among_others.token).await,
            vec![user(&among_others), user(&removed)],
        ),
        // by_user has left: it no longer sees the organization.
        leaving(&by_user_actor, vec![user(&removed)]),
        request(&admin, vec![user(&removed)]),
    ];
    if one_by_one {
        let mut flagged = request(&admin, vec![MemberRef::User(UserId::new())]);
        flagged.options.delete_passwords = true;
        requests.push(flagged);
    }
    let outcomes = one_batch_never_restarted(app, &org, &requests).await;
    let removed_by = |i: usize| removed_by(&outcomes, i);
    assert_eq!(removed_by(0), [by_user.membership_id.as_str()]);
    assert_eq!(removed_by(1), [by_id.membership_id.as_str()]);
    let rule = |i: usize| match &outcomes[i] {
        Err(CoreError::RuleViolated { rule, .. }) => *rule,
        other => panic!("request {i}: {other:?}"),
    };
    assert_eq!(rule(2), Rule::OnlyOrganization);
    assert_eq!(
        rule(3),
        Rule::SelfRemoval,
        "naming oneself without the option"
    );
    assert!(
        matches!(outcomes[4], Err(CoreError::Forbidden { .. })),
        "naming oneself among others is a removal, which a member may not make: {:?}",
        outcomes[4]
    );
    assert!(
        matches!(
            outcomes[5],
            Err(CoreError::NotFound {
                kind: "organization",
                ..
            })
        ),
        "{:?}",
        outcomes[5]
    );
    assert_eq!(removed_by(6), [removed.membership_id.as_str()]);

    let left: HashSet<String> = app.membership_ids(&org).await.into_iter().collect();
    for gone in [&by_user, &by_id, &removed] {
        assert!(!left.contains(&gone.membership_id));
    }
    for kept in [&only_here, &not_leaving, &among_others] {
        assert!(left.contains(&kept.membership_id));
    }
    // Of this scenario's memberships, those audited as leaving and as removed.
    let (left_events, removed_events) = (
        app.audited(&org, "membership.left").await,
        app.audited(&org, "membership.removed").await,
    );
    let ours = |events: &[String]| -> Vec<String> {
        [&by_user, &by_id, &removed]
            .into_iter()
            .map(|m| m.membership_id.clone())
            .filter(|id| events.contains(id))
            .collect()
    };
    assert_eq!(
        ours(&left_events),
        [by_user.membership_id.as_str(), by_id.membership_id.as_str()]
    );
    assert_eq!(ours(&removed_events), [removed.membership_id.as_str()]);
}

const MEMBERS: usize = 24;
const STRANGERS: usize = 8;

async fn concurrent_removals_over_http_each_get_their_own_answer(app: TestApp) {
    let app = Arc::new(app);
    let org = app.org.clone();
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        members.push(app.add_member(&org, "member").await.membership_id);
    }
    // Every member is removed twice at once (one of the two must win, the other find nothing),
    // among removals of memberships that never existed.
    let mut targets: Vec<String> = members.iter().chain(members.iter()).cloned().collect();
    targets.extend((0..STRANGERS).map(|_| MembershipId::new().to_string()));
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|target| {
            let (app, org) = (app.clone(), org.clone());
            tokio::spawn(async move {
                let res = app
                    .delete(
                        &format!("/v1/organizations/{org}/memberships/{target}"),
                        &app.owner.token,
                    )
                    .await;
                (target, res)
            })
        })
        .collect();
    let mut removed = Vec::new();
    let mut not_found = 0;
    for t in tasks {
        let (target, res) = t.await.unwrap();
        match res.status {
            StatusCode::OK => {
                assert_eq!(
                    res.body["removed"][0]["id"], target,
                    "each request gets the answer to its own removal"
                );
                removed.push(target);
            }
            StatusCode::NOT_FOUND => {
                assert_eq!(res.body["error"]["code"], "not_found", "{}", res.body);
                not_found += 1;
            }
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    removed.sort();
    let mut expected = members.clone();
    expected.sort();
    assert_eq!(removed, expected, "every member removed exactly once");
    assert_eq!(not_found, MEMBERS + STRANGERS);
    assert_eq!(
        app.membership_ids(&org).await,
        [app.owner.membership_id.as_str()]
    );
    let audited = app.audited(&org, "membership.removed").await.len();
    assert_eq!(audited, MEMBERS, "one audit event per removal");

    let requests = counter(&app, "roster_removal_shared_requests_total ").await;
    let transactions = counter(&app, "roster_removal_shared_transactions_total ").await;
    assert_eq!(
        requests as usize,
        2 * MEMBERS + STRANGERS,
        "every single removal went through group commit"
    );
    assert!((1..=requests).contains(&transactions), "{transactions}");
}

/// A counter of the app's `/metrics`.
async fn counter(app: &TestApp, name: &str) -> u64 {
    let metrics = app.call("GET", "/metrics", None, None).await;
    let text = metrics.body.as_str().expect("metrics are text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

/// A request naming several memberships, some of which name nothing, is told every one of
/// them, whether it runs alone or decided together with others in one batch.
async fn every_missing_target_is_named_alone_and_in_a_shared_batch(app: TestApp) {
    let org = app.org.clone();
    let [a, b] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let (gone, never) = (MembershipId::new(), MembershipId::new());
    let admin = actor(&app, &app.admin).await;
    let several = || {
        request(
            &admin,
            vec![
                MemberRef::Membership(gone),
                membership(&a.membership_id),
                MemberRef::Membership(never),
                MemberRef::Membership(gone),
            ],
        )
    };
    let named = |outcome: &Result<Removal, CoreError>| match outcome {
        Err(CoreError::NotFoundAmong { ids, count, .. }) => (ids.clone(), *count),
        other => panic!("{other:?}"),
    };
    let expected = (vec![gone.to_string(), never.to_string()], 2);
    let org_id = OrganizationId(org.parse().unwrap());
    let roster = Roster::new(app.store.clone());
    let alone = roster
        .remove_memberships_together(org_id, &[several()])
        .await;
    assert_eq!(named(&alone[0]), expected);
    let together = roster
        .remove_memberships_together(
            org_id,
            &[
                several(),
                request(&admin, vec![membership(&b.membership_id)]),
            ],
        )
        .await;
    assert_eq!(named(&together[0]), expected);
    assert!(together[1].is_ok(), "{:?}", together[1]);
    let single = roster
        .remove_memberships_together(
            org_id,
            &[
                request(&admin, vec![MemberRef::Membership(never)]),
                request(&admin, vec![MemberRef::Membership(gone)]),
            ],
        )
        .await;
    assert!(
        matches!(single[0], Err(CoreError::NotFound { .. })),
        "one target: a plain not found: {:?}",
        single[0]
    );
    assert_eq!(app.memberships(&org).await.len(), 2, "the owner and a");
}

/// Removals in different organizations share commits: while a transaction holds the
/// organizations, 24 removals in 24 of them queue, and then run in at most two batches a lane
/// (one writer, so one lane, on SQLite), each removed and audited as if alone; a bad token
/// among them is refused alone.
async fn removals_in_many_organizations_share_commits(app: TestApp) {
    const ORGS: usize = 24;
    let mut orgs = Vec::with_capacity(ORGS);
    for i in 0..ORGS {
        let org = app.new_org(&format!("Lane {i}")).await;
        let member = app.add_member(&org, "member").await;
        orgs.push((OrganizationId(org.parse().unwrap()), member));
    }
    let admin = actor(&app, &app.admin).await;
    let roster = Roster::new(app.store.clone());
    // Holds every organization (and on SQLite the one writer) until the removals have queued.
    let mut blocker = app.store.begin().await.unwrap();
    let mut sorted: Vec<OrganizationId> = orgs.iter().map(|(org, _)| *org).collect();
    sorted.sort();
    for org in &sorted {
        assert!(blocker.lock_organization(*org).await.unwrap());
    }
    // Half the callers are token claims, verified in the batch with one read for them all.
    let removals: Vec<_> = orgs
        .iter()
        .enumerate()
        .map(|(i, (org, member))| {
            let (roster, org) = (roster.clone(), *org);
            let targets = vec![membership(&member.membership_id)];
            let r = if i % 2 == 0 {
                request(&admin, targets)
            } else {
                presenting(&app.admin, targets)
            };
            tokio::spawn(async move { roster.remove(org, r).await })
        })
        .collect();
    let bad = {
        let (roster, org) = (roster.clone(), orgs[1].0);
        let r = presenting(
            &with_wrong_secret(&app.admin),
            vec![membership(&orgs[1].1.membership_id)],
        );
        tokio::spawn(async move { roster.remove(org, r).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(blocker);
    let bad = bad.await.unwrap();
    assert!(matches!(bad, Err(CoreError::Unauthenticated(_))), "{bad:?}");
    for ((_, member), removal) in orgs.iter().zip(removals) {
        let removed = removal.await.unwrap().expect("each removal is accepted");
        let ids: Vec<String> = removed.removed.ids().map(|id| id.to_string()).collect();
        assert_eq!(ids, std::slice::from_ref(&member.membership_id));
    }
    let stats = roster.group_commit_stats();
    let lanes = app.store.write_lanes() as u64;
    assert_eq!(stats.requests, ORGS as u64 + 1);
    assert!(
        stats.transactions <= 2 * lanes && stats.transactions < stats.requests,
        "{} transactions for {ORGS} removals over {lanes} lanes",
        stats.transactions
    );
    for (org, member) in &orgs {
        let org = org.to_string();
        assert!(
            !app.membership_ids(&org)
                .await
                .contains(&member.membership_id)
        );
        let audited = app.audited(&org, "membership.removed").await;
        assert_eq!(audited, std::slice::from_ref(&member.membership_id));
    }
}

/// A person in two organizations whose removals share a batch, removed from one of them: the
/// batch takes their project memberships in that one alone, and its answer says so.
async fn a_shared_batch_takes_a_members_projects_only_where_it_removes_them(app: TestApp) {
    // Three organizations on one lane: a removal in the first waits on the locks held here,
    // so that the other two queue behind it and share the next batch. The lane rule is
    // `RemovalBatches::lane`'s; were it to change, the count of transactions below says so.
    let lanes = app.store.write_lanes().max(1) as u128;
    let lane = |org: &str| org.parse::<uuid::Uuid>().unwrap().as_u128() % lanes;
    let mut orgs = vec![app.new_org("Shared lane 0").await];
    let mut made = 0;
    while orgs.len() < 3 {
        made += 1;
        let org = app.new_org(&format!("Shared lane {made}")).await;
        if lane(&org) == lane(&orgs[0]) {
            orgs.push(org);
        }
    }
    let (c, a, b) = (&orgs[0], &orgs[1], &orgs[2]);
    let opener = app.add_member(c, "member").await;
    let person = app.add_member(a, "member").await;
    let in_b = app.make_member(b, &person.user_id, "member").await;
    let other = app.add_member(b, "member").await;
    let taken = app.project_with(a, "Taken", &[&person]).await;
    let kept = app.project_with(b, "Kept", &[&person, &other]).await;

    let admin = actor(&app, &app.admin).await;
    let roster = Roster::new(app.store.clone());
    let ids: Vec<OrganizationId> = orgs
        .iter()
        .map(|o| OrganizationId(o.parse().unwrap()))
        .collect();
    let mut blocker = app.store.begin().await.unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    for org in &sorted {
        assert!(blocker.lock_organization(*org).await.unwrap());
    }
    let remove = |org: OrganizationId, id: &str| {
        let (roster, r) = (roster.clone(), request(&admin, vec![membership(id)]));
        tokio::spawn(async move { roster.remove(org, r).await })
    };
    let opening = remove(ids[0], &opener.membership_id);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let removals = [
        remove(ids[1], &person.membership_id),
        remove(ids[2], &other.membership_id),
    ];
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(blocker);
    opening
        .await
        .unwrap()
        .expect("the first removal is accepted");
    for (removal, user) in removals.into_iter().zip([&person.user_id, &other.user_id]) {
        let removed = removal.await.unwrap().expect("each removal is accepted");
        let taken: Vec<String> = removed
            .cascade
            .project_memberships
            .iter()
            .map(|p| p.user_id.to_string())
            .collect();
        assert_eq!(
            taken,
            std::slice::from_ref(user),
            "each takes its own member's project membership"
        );
    }
    let stats = roster.group_commit_stats();
    assert_eq!(
        (stats.requests, stats.transactions),
        (3, 2),
        "the two removals shared a batch"
    );
    assert_eq!(app.project_users(&taken).await, Vec::<String>::new());
    assert_eq!(
        app.project_users(&kept).await,
        std::slice::from_ref(&person.user_id)
    );
    assert!(app.membership_ids(b).await.contains(&in_b));
}

/// A member leaving their last two organizations at once keeps one (PlanetScale's rule),
/// whether the two leaves share a batch (one lane) or run in batches side by side (two).
async fn a_member_leaving_their_last_two_organizations_at_once_keeps_one(app: TestApp) {
    let (a, b) = (
        app.new_org("Leaving A").await,
        app.new_org("Leaving B").await,
    );
    let (user, _) = app.add_user_as_member(&a, "member").await;
    app.make_member(&b, &user, "member").await;
    let me = actor(&app, &app.token_for(&user).await).await;
    let user = UserId(user.parse().unwrap());
    let orgs = [a, b].map(|org| OrganizationId(org.parse().unwrap()));
    let roster = Roster::new(app.store.clone());
    // A removal in a third organization runs first and waits on the organizations held here
    // (on SQLite, on the one writer), so that both leaves queue behind it: on one lane they
    // then share a batch.
    let c = app.new_org("Leaving C").await;
    let other = app.add_member(&c, "member").await;
    let c = OrganizationId(c.parse().unwrap());
    let mut blocker = app.store.begin().await.unwrap();
    let mut sorted = vec![orgs[0], orgs[1], c];
    sorted.sort();
    for org in sorted {
        assert!(blocker.lock_organization(org).await.unwrap());
    }
    let first = {
        let roster = roster.clone();
        let admin = actor(&app, &app.admin).await;
        let r = request(&admin, vec![membership(&other.membership_id)]);
        tokio::spawn(async move { roster.remove(c, r).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let leaves: Vec<_> = orgs
        .into_iter()
        .map(|org| {
            let mut r = request(&me, vec![MemberRef::User(user)]);
            r.own_membership = OwnMembership::Leaves {
                refuse_only_organization: true,
            };
            let roster = roster.clone();
            tokio::spawn(async move { roster.remove(org, r).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(blocker);
    first.await.unwrap().expect("the first removal is accepted");
    let mut outcomes = Vec::new();
    for leave in leaves {
        outcomes.push(leave.await.unwrap());
    }
    let left = outcomes.iter().filter(|o| o.is_ok()).count();
    let kept = outcomes.iter().filter(|o| {
        matches!(
            o,
            Err(CoreError::RuleViolated {
                rule: Rule::OnlyOrganization,
                ..
            })
        )
    });
    assert_eq!((left, kept.count()), (1, 1), "{outcomes:?}");
    let mut s = app.store.read().await.unwrap();
    assert_eq!(s.organizations_of_user(user).await.unwrap().len(), 1);
}

on_both_backends!(
    a_member_leaving_their_last_two_organizations_at_once_keeps_one,
    a_shared_batch_takes_a_members_projects_only_where_it_removes_them,
    removals_in_many_organizations_share_commits,
    every_missing_target_is_named_alone_and_in_a_shared_batch,
    removals_sharing_one_commit_each_keep_their_own_outcome,
    removals_sharing_one_commit_in_a_missing_organization_are_all_not_found,
    removals_by_token_in_a_missing_organization_are_all_not_found,
    concurrent_removals_over_http_each_get_their_own_answer,
    token_claims_sharing_one_commit_are_verified_each_on_its_own,
    removals_wanting_context_sharing_one_commit_each_see_the_count_after_their_own,
    plain_removals_sharing_one_commit_are_decided_as_if_one_after_another,
    members_leaving_share_one_commit_with_removals_by_others,
);
