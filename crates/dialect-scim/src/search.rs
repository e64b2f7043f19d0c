//! Searching with POST (RFC 7644 §3.4.3): `/Users/.search`, `/Groups/.search`, and `/.search`
//! over both, each a `SearchRequest` body read as the query of a GET would be.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_http::AppState;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ScimError;
use crate::extract::{Auth, Body, Path};
use crate::list::ListQuery;
use crate::wire::list_response;
use crate::{groups, scim_json, users};

pub const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchRequest {
    schemas: Vec<String>,
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<Vec<String>>,
    excluded_attributes: Option<Vec<String>>,
    /// Sorting is not supported (`ServiceProviderConfig` says so): refused if asked.
    sort_by: Option<String>,
    sort_order: Option<String>,
}

impl SearchRequest {
    fn into_query(self) -> Result<ListQuery, ScimError> {
        if !self.schemas.iter().any(|s| s == SEARCH_SCHEMA) {
            return Err(ScimError::bad_request(
                "invalidSyntax",
                format!("a search names the schema {SEARCH_SCHEMA}"),
            ));
        }
        if self.sort_by.is_some() || self.sort_order.is_some() {
            return Err(ScimError::bad_request(
                "invalidValue",
                "sorting is not supported (ServiceProviderConfig: sort)",
            ));
        }
        Ok(ListQuery {
            filter: self.filter,
            start_index: self.start_index,
            count: self.count,
            attributes: self.attributes.map(|a| a.join(",")),
            excluded_attributes: self.excluded_attributes.map(|a| a.join(",")),
        })
    }
}

pub async fn users(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(named): Path<String>,
    headers: HeaderMap,
    Body(request): Body<SearchRequest>,
) -> Result<Response, ScimError> {
    let q = request.into_query()?;
    let found = users::search(&s, &a, &named, &q, &headers).await?;
    Ok(scim_json(StatusCode::OK, &found))
}

pub async fn groups(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(named): Path<String>,
    headers: HeaderMap,
    Body(request): Body<SearchRequest>,
) -> Result<Response, ScimError> {
    let q = request.into_query()?;
    let found = groups::search(&s, &a, &named, &q, &headers).await?;
    Ok(scim_json(StatusCode::OK, &found))
}

/// `/.search`: Users, then Groups, matching the filter, paged together.
pub async fn all(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(named): Path<String>,
    headers: HeaderMap,
    Body(request): Body<SearchRequest>,
) -> Result<Response, ScimError> {
    let q = request.into_query()?;
    let (start, count) = (q.start(), q.count());
    let users = users::search(&s, &a, &named, &q, &headers).await?;
    let users_total = total_of(&users);
    let mut page = resources_of(users);
    // The groups' share of the page: from where the users end.
    let room = count - page.len();
    let groups_query = ListQuery {
        start_index: Some(
            i64::try_from(start.saturating_sub(users_total).max(1)).unwrap_or(i64::MAX),
        ),
        count: Some(i64::try_from(room).unwrap_or(0)),
        ..q
    };
    let groups = groups::search(&s, &a, &named, &groups_query, &headers).await?;
    let groups_total = total_of(&groups);
    if room > 0 {
        page.extend(resources_of(groups));
    }
    // Already shaped by each search.
    Ok(scim_json(
        StatusCode::OK,
        &list_response(users_total + groups_total, start, page),
    ))
}

fn total_of(list: &Value) -> usize {
    list["totalResults"]
        .as_u64()
        .and_then(|t| usize::try_from(t).ok())
        .unwrap_or(0)
}

fn resources_of(list: Value) -> Vec<Value> {
    match list {
        Value::Object(mut o) => match o.remove("Resources") {
            Some(Value::Array(r)) => r,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
