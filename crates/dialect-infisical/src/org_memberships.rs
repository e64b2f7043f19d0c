//! `/api/v2/organizations/{organizationId}/memberships[/{membershipId}]`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use roster_core::ids::OrganizationId;
use roster_core::model::{
    MemberRef, MembershipFilter, Metadata, MetadataUpdate, Page, RemovalOptions,
};
use roster_core::service::MembershipPatch;
use roster_http::AppState;
use roster_http::json_parts::JsonParts;
use roster_http::request_id::context;
use serde_json::{Value, json};

use crate::error::InfisicalError;
use crate::extract::{Auth, Body, Path, Presented};
use crate::wire::*;

type Reply = Result<Json<Value>, InfisicalError>;

/// Infisical answers the whole list at once; roster reads it page by page.
const PAGE: u32 = 5_000;

/// Lists the organization's memberships with their users.
pub async fn list(State(s): State<AppState>, Auth(a): Auth, Path(org): Path<String>) -> Reply {
    let org: OrganizationId = org.parse()?;
    let mut users = Vec::new();
    let mut page = Page {
        after: None,
        offset: 0,
        limit: PAGE,
        descending: false,
    };
    loop {
        let p = s
            .roster
            .list_members(&a, org, &MembershipFilter::default(), page)
            .await?;
        users.extend(p.items.into_iter().map(OrgMembershipWithUser::from));
        match p.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    Ok(Json(json!({ "users": users })))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Reply {
    let view = s
        .roster
        .member(&a, org.parse()?, MemberRef::Membership(id.parse()?))
        .await?;
    Ok(Json(
        json!({ "membership": OrgMembershipWithUser::from(view) }),
    ))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<UpdateOrgMembership>,
) -> Reply {
    let patch = MembershipPatch {
        role_key: b.role,
        is_active: b.is_active,
        public_metadata: b
            .metadata
            .map(|entries| {
                entries
                    .into_iter()
                    .map(|e| (e.key, Value::String(e.value)))
                    .collect::<Metadata>()
            })
            .map(MetadataUpdate::Replace),
        private_metadata: None,
        external_id: None,
        directory_user_name: None,
    };
    let m = s
        .roster
        .update_membership(
            &a,
            org.parse()?,
            MemberRef::Membership(id.parse()?),
            patch,
            &context(),
        )
        .await?;
    Ok(Json(json!({ "membership": OrgMembership::from(m) })))
}

/// The seed `deleteOrgMembership`: removes one membership, returns it as it was.
pub async fn remove(
    State(s): State<AppState>,
    caller: Presented,
    path: Result<Path<(String, String)>, InfisicalError>,
) -> Reply {
    let parsed = (|| {
        let Path((org, id)) = path?;
        let target = MemberRef::Membership(id.parse()?);
        Ok((org.parse()?, vec![target]))
    })();
    let (org, targets) = caller.checked(&s, parsed).await?;
    let removal = s
        .roster
        .remove(org, caller.removal(targets, RemovalOptions::default()))
        .await?;
    let membership = removal.removed.into_iter().next().map(OrgMembership::from);
    Ok(Json(json!({ "membership": membership })))
}

/// The seed `bulkDeleteOrgMemberships`: all or nothing, duplicates once, at most
/// `MAX_BULK_REMOVAL` ids.
pub async fn bulk_remove(
    State(s): State<AppState>,
    caller: Presented,
    path: Result<Path<String>, InfisicalError>,
    body: Result<Body<BulkDelete>, InfisicalError>,
) -> Result<Response, InfisicalError> {
    let parsed = (|| {
        let (Path(org), Body(b)) = (path?, body?);
        let targets = MemberRef::memberships(b.membership_ids)?;
        Ok((org.parse()?, targets))
    })();
    let (org, targets) = caller.checked(&s, parsed).await?;
    let removal = s
        .roster
        .remove(org, caller.removal(targets, RemovalOptions::default()))
        .await?;
    // `{"memberships":[…]}`, written a part at a time: the answer can hold 100,000 memberships.
    let answer = JsonParts::new(
        &br#"{"memberships":["#[..],
        removal.removed,
        OrgMembership::from,
        &b"]}"[..],
    );
    Ok(answer.into_response())
}
