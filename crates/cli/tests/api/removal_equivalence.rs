//! A property of removal: a batch of requests decided together in one transaction (as group
//! commit runs them) gives each request the outcome it gets when the same requests run one at
//! a time in arrival order, and leaves the same organization and audit trail behind. Random
//! organizations (roles, deactivated members, project memberships, passwords) and random
//! requests (removals by membership or user id, of several targets, of nobody, by callers of
//! every role, leaving, credential deletion, asking for the context Clerk shows) are run on
//! twin organizations: as one batch, and one at a time.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use roster_core::auth::Caller;
use roster_core::secrets::{Credentials, PresentedToken};
use roster_core::service::{MembershipPatch, NewMembership, NewOrganization, NewProject, NewUser};
use roster_core::service::{OwnMembership, RemovalRequest};
use roster_core::{
    Actor, AuditFilter, MemberRef, MembershipId, OrganizationId, Page, RemovalOptions,
    RequestContext, Roster, UserId,
};

use crate::harness::TestApp;

/// Members besides the first admin, who is member 0.
const OTHERS: usize = 4;

#[derive(Clone, Debug)]
enum Target {
    Membership(usize),
    User(usize),
    Nobody,
}

#[derive(Clone, Debug)]
struct Request {
    /// A member's own token, or the instance admin key.
    caller: Option<usize>,
    /// The caller leaving (PlanetScale's "removing yourself is leaving"), naming themselves.
    leaves: bool,
    targets: Vec<Target>,
    deletes_credentials: bool,
    /// Also asks for what Clerk's answer shows (the organization, its member count after the
    /// removal, the users, the roles), which needs the members and the organization readable.
    wants_context: bool,
}

#[derive(Clone, Debug)]
struct Case {
    /// Role and active flag of members 1..=OTHERS.
    members: Vec<(&'static str, bool)>,
    requests: Vec<Request>,
}

fn case() -> impl Strategy<Value = Case> {
    let member = prop_oneof![
        Just(("admin", true)),
        Just(("admin", false)),
        Just(("member", true)),
        Just(("member", false)),
        Just(("no-access", true)),
    ];
    let target = prop_oneof![
        4 => (0..=OTHERS).prop_map(Target::Membership),
        3 => (0..=OTHERS).prop_map(Target::User),
        1 => Just(Target::Nobody),
    ];
    let request = (
        prop::option::weighted(0.6, 0..=OTHERS),
        prop::bool::weighted(0.2),
        prop::collection::vec(target, 1..=3),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(caller, leaves, targets, deletes_credentials, wants_context)| Request {
                caller,
                leaves: leaves && caller.is_some(),
                targets: match (leaves, caller) {
                    (true, Some(me)) => vec![Target::User(me)],
                    _ => targets,
                },
                deletes_credentials,
                wants_context,
            },
        );
    (
        prop::collection::vec(member, OTHERS),
        prop::collection::vec(request, 1..=8),
    )
        .prop_map(|(members, requests)| Case { members, requests })
}

/// One of the twin organizations: its id and each member's membership id.
struct Twin {
    org: OrganizationId,
    memberships: Vec<MembershipId>,
}

/// The users of a case, each with an actor of their own token, shared by both twins.
struct People {
    users: Vec<UserId>,
    actors: Vec<Actor>,
}

async fn people(roster: &Roster, admin: &Actor, case_no: u64) -> People {
    let ctx = RequestContext::default();
    let (mut users, mut actors) = (Vec::new(), Vec::new());
    for i in 0..=OTHERS {
        let input = NewUser {
            email: format!("case{case_no}-member{i}@example.com"),
            ..Default::default()
        };
        let user = roster.create_user(Some(admin), input, &ctx).await.unwrap();
        let token = roster
            .create_user_token(admin, user.id, "own", None, &ctx)
            .await
            .unwrap();
        let presented = PresentedToken::parse_bearer(&token.bearer()).unwrap();
        let actor = roster_core::auth::authenticate(roster.store(), Credentials::Token(presented))
            .await
            .unwrap();
        users.push(user.id);
        actors.push(actor);
    }
    People { users, actors }
}

async fn twin(roster: &Roster, admin: &Actor, people: &People, case: &Case, name: &str) -> Twin {
    let ctx = RequestContext::default();
    let org = roster
        .create_organization(
            Some(admin),
            NewOrganization {
                name: name.to_owned(),
                created_by: Some(people.users[0]),
                ..Default::default()
            },
            &ctx,
        )
        .await
        .unwrap()
        .id;
    let project = roster
        .create_project(
            admin,
            org,
            NewProject {
                name: "Web".into(),
                slug: None,
                external_id: None,
            },
            &ctx,
        )
        .await
        .unwrap()
        .id;
    let first = roster
        .membership(admin, org, MemberRef::User(people.users[0]))
        .await
        .unwrap()
        .id;
    let mut memberships = vec![first];
    for (i, (role, active)) in case.members.iter().enumerate() {
        let user = people.users[i + 1];
        let input = NewMembership {
            user_id: Some(user),
            role_key: (*role).to_owned(),
            ..Default::default()
        };
        let m = roster
            .add_membership(admin, org, input, &ctx)
            .await
            .unwrap();
        if !active {
            let patch = MembershipPatch {
                is_active: Some(false),
                ..Default::default()
            };
            roster
                .update_membership(admin, org, MemberRef::Membership(m.id), patch, &ctx)
                .await
                .unwrap();
        }
        memberships.push(m.id);
    }
    for &user in &people.users {
        roster
            .add_project_member(admin, project, user, None, &ctx)
            .await
            .unwrap();
        roster
            .create_password(admin, org, "db", Some(user), &ctx)
            .await
            .unwrap();
    }
    Twin { org, memberships }
}

fn requests(
    case: &Case,
    people: &People,
    admin: &Actor,
    twin: &Twin,
    nobody: MembershipId,
) -> Vec<RemovalRequest> {
    case.requests
        .iter()
        .map(|r| {
            let caller = match r.caller {
                Some(i) => people.actors[i].clone(),
                None => admin.clone(),
            };
            let targets = r
                .targets
                .iter()
                .map(|t| match t {
                    Target::Membership(i) => MemberRef::Membership(twin.memberships[*i]),
                    Target::User(i) => MemberRef::User(people.users[*i]),
                    Target::Nobody => MemberRef::Membership(nobody),
                })
                .collect();
            let options = RemovalOptions {
                delete_passwords: r.deletes_credentials,
                delete_service_tokens: r.deletes_credentials,
            };
            let mut request = RemovalRequest::new(
                Caller::Authenticated(caller),
                targets,
                options,
                RequestContext::default(),
            );
            if r.leaves {
                request.own_membership = OwnMembership::Leaves {
                    refuse_only_organization: false,
                };
            }
            request.include_context = r.wants_context;
            request
        })
        .collect()
}

/// What a twin's ids mean, so that the two twins' outcomes compare: each id is named by the
/// member it belongs to.
fn labels(twin: &Twin, people: &People, nobody: MembershipId) -> Vec<(String, String)> {
    let mut out = vec![
        (twin.org.to_string(), "org".to_owned()),
        (nobody.to_string(), "nobody".to_owned()),
    ];
    for (i, m) in twin.memberships.iter().enumerate() {
        out.push((m.to_string(), format!("membership{i}")));
    }
    for (i, u) in people.users.iter().enumerate() {
        out.push((u.to_string(), format!("user{i}")));
    }
    out
}

fn labelled(text: String, labels: &[(String, String)]) -> String {
    labels
        .iter()
        .fold(text, |t, (id, label)| t.replace(id.as_str(), label))
}

/// Each request's outcome, the members left (role and active flag) and the audit trail of
/// removals, with every id replaced by its label.
async fn observed(
    roster: &Roster,
    admin: &Actor,
    twin: &Twin,
    outcomes: Vec<Result<roster_core::Removal, roster_core::CoreError>>,
    labels: &[(String, String)],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let outcomes = outcomes
        .into_iter()
        .map(|o| {
            let text = match o {
                Ok(r) => format!(
                    "removed {:?}, cascade {} {} {}, context {:?}",
                    r.removed.ids().collect::<Vec<_>>(),
                    r.cascade.project_memberships.len(),
                    r.cascade.passwords.len(),
                    r.cascade.service_tokens.len(),
                    r.context.as_ref().map(|c| (
                        c.member_count,
                        c.users.iter().map(|u| u.id).collect::<Vec<_>>(),
                        c.roles.len()
                    )),
                ),
                Err(e) => format!("{e:?}"),
            };
            labelled(text, labels)
        })
        .collect();
    let page = Page {
        limit: 500,
        ..Page::default()
    };
    let mut left: Vec<String> = roster
        .list_memberships(admin, twin.org, &Default::default(), page)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| labelled(format!("{} {} {}", m.id, m.role_key, m.is_active), labels))
        .collect();
    left.sort();
    let mut audit = Vec::new();
    for action in ["membership.removed", "membership.left"] {
        let filter = AuditFilter {
            action: Some(action.to_owned()),
            ..Default::default()
        };
        let events = roster
            .list_audit_events(admin, twin.org, &filter, page)
            .await
            .unwrap();
        audit.extend(events.items.into_iter().map(|e| {
            labelled(
                format!(
                    "{} {} by {} cascading {:?}",
                    e.action,
                    e.target_id,
                    e.actor_id,
                    e.details["cascade"]["project_memberships"]
                        .as_array()
                        .map(Vec::len)
                ),
                labels,
            )
        }));
    }
    (outcomes, left, audit)
}

async fn a_batch_decides_each_request_as_one_at_a_time_would(app: TestApp) {
    let roster = Roster::new(app.store.clone());
    let admin = roster_core::auth::authenticate(
        roster.store(),
        Credentials::Token(PresentedToken::parse_bearer(&app.admin).unwrap()),
    )
    .await
    .unwrap();
    let handle = tokio::runtime::Handle::current();
    let cases_run = std::sync::atomic::AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        let case_no = cases_run.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let outcome = tokio::task::block_in_place(|| {
            handle.block_on(async {
                let people = people(&roster, &admin, case_no).await;
                let nobody = MembershipId::new();
                let batched = twin(
                    &roster,
                    &admin,
                    &people,
                    &case,
                    &format!("Batched {case_no}"),
                )
                .await;
                let alone = twin(
                    &roster,
                    &admin,
                    &people,
                    &case,
                    &format!("One by one {case_no}"),
                )
                .await;

                let together = roster
                    .remove_memberships_together(
                        batched.org,
                        &requests(&case, &people, &admin, &batched, nobody),
                    )
                    .await;
                let mut one_by_one = Vec::new();
                for r in requests(&case, &people, &admin, &alone, nobody) {
                    one_by_one.extend(
                        roster
                            .remove_memberships_together(alone.org, std::slice::from_ref(&r))
                            .await,
                    );
                }
                let a = observed(
                    &roster,
                    &admin,
                    &batched,
                    together,
                    &labels(&batched, &people, nobody),
                )
                .await;
                let b = observed(
                    &roster,
                    &admin,
                    &alone,
                    one_by_one,
                    &labels(&alone, &people, nobody),
                )
                .await;
                (a, b)
            })
        });
        let (batched, one_by_one) = outcome;
        prop_assert_eq!(&batched.0, &one_by_one.0, "outcomes");
        prop_assert_eq!(&batched.1, &one_by_one.1, "members left");
        prop_assert_eq!(&batched.2, &one_by_one.2, "audit trail");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

on_both_backends!(a_batch_decides_each_request_as_one_at_a_time_would);
