//! Query parameters a native route does not declare are refused with 400 `invalid_input`
//! naming the parameter, before the handler runs: a client that asks for something the server
//! lacks (`?dry_run=true` where there is no dry run) must be told so, not served without it.
//! What each route takes is read from the OpenAPI document, so that the two cannot disagree.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use axum::extract::{MatchedPath, Query, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use roster_core::CoreError;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};

use crate::error::ApiError;

/// The query parameters each operation declares, by method and route template.
static DECLARED: LazyLock<HashMap<(HttpMethod, String), HashSet<String>>> = LazyLock::new(|| {
    let doc = crate::openapi::document();
    let mut declared = HashMap::new();
    for (path, item) in doc.paths.paths {
        let operations: [(HttpMethod, &Option<Operation>); 5] = [
            (HttpMethod::Get, &item.get),
            (HttpMethod::Post, &item.post),
            (HttpMethod::Put, &item.put),
            (HttpMethod::Patch, &item.patch),
            (HttpMethod::Delete, &item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let names = operation
                .parameters
                .iter()
                .flatten()
                .filter(|p| p.parameter_in == ParameterIn::Query)
                .map(|p| p.name.clone())
                .collect();
            declared.insert((method, path.clone()), names);
        }
    }
    declared
});

/// Middleware (a route layer, so that the route template is known): refuses the first query
/// parameter its route does not declare.
pub async fn refuse_undeclared(req: Request, next: Next) -> Response {
    if req.uri().query().is_some_and(|q| !q.is_empty()) {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let declared = method_of(req.method())
            .zip(route)
            .and_then(|(method, route)| DECLARED.get(&(method, route.to_owned())));
        let names: Vec<String> = match Query::<Vec<(String, String)>>::try_from_uri(req.uri()) {
            Ok(Query(pairs)) => pairs.into_iter().map(|(name, _)| name).collect(),
            Err(_) => {
                let malformed = CoreError::invalid("query", "the query string cannot be read");
                return ApiError::from(malformed).into_response();
            }
        };
        if let Some(name) = names
            .into_iter()
            .find(|n| !declared.is_some_and(|d| d.contains(n)))
        {
            let message = format!("the query parameter `{name}` is not one this route takes");
            return ApiError::from(CoreError::invalid(name, message)).into_response();
        }
    }
    next.run(req).await
}

fn method_of(m: &axum::http::Method) -> Option<HttpMethod> {
    Some(match *m {
        axum::http::Method::GET => HttpMethod::Get,
        axum::http::Method::POST => HttpMethod::Post,
        axum::http::Method::PUT => HttpMethod::Put,
        axum::http::Method::PATCH => HttpMethod::Patch,
        axum::http::Method::DELETE => HttpMethod::Delete,
        _ => return None,
    })
}
