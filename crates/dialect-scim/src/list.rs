//! What a list asks (RFC 7644 §3.4.2): the query of a GET, or the body of a `.search`
//! turned into one; and the `ListResponse` page it gets.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::Filter;
use crate::wire::list_response;

/// The most resources one list answers (`count` above it is lowered to it).
pub const MAX_RESULTS: usize = 500;

/// The page size when a list names none.
const DEFAULT_COUNT: usize = 100;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl ListQuery {
    /// The parsed filter, if there is one (a bad one: 400 `invalidFilter`).
    pub fn filter(&self) -> Result<Option<Filter>, ScimError> {
        self.filter
            .as_deref()
            .map(Filter::parse)
            .transpose()
            .map_err(|e| ScimError::bad_request("invalidFilter", e))
    }

    /// Where the page starts, from 1 (RFC 7644 §3.4.2.4: a start below 1 is 1).
    pub fn start(&self) -> usize {
        usize::try_from(self.start_index.unwrap_or(1).max(1)).unwrap_or(usize::MAX)
    }

    /// How many the page holds at most (a negative count is 0; at most `MAX_RESULTS`).
    pub fn count(&self) -> usize {
        self.count
            .map_or(DEFAULT_COUNT, |c| usize::try_from(c.max(0)).unwrap_or(0))
            .min(MAX_RESULTS)
    }

    /// `resource` with the attributes asked for (`project`).
    pub fn shape(&self, resource: Value) -> Value {
        project(
            resource,
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }

    /// The `ListResponse` of this query's page of `matching` (every resource that matches).
    pub fn page_of(&self, matching: Vec<Value>) -> Value {
        let total = matching.len();
        let page = matching
            .into_iter()
            .skip(self.start() - 1)
            .take(self.count())
            .collect();
        self.list_response(total, page)
    }

    /// The `ListResponse` of `page` (this query's page, already cut), of `total` in all.
    pub fn list_response(&self, total: usize, page: Vec<Value>) -> Value {
        let page = page.into_iter().map(|r| self.shape(r)).collect();
        list_response(total, self.start(), page)
    }
}

/// `resource` with only the `attributes` asked for, or without the `excluded` ones (RFC 7644
/// §3.4.2.5), by top-level attribute: asking for `name.givenName` returns all of `name`.
/// `id` and `schemas` are always returned.
fn project(resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|a| {
                let a = a.trim();
                let a = a.rsplit_once(':').map_or(a, |(_, rest)| rest);
                a.split('.').next().unwrap_or_default().to_ascii_lowercase()
            })
            .collect()
    };
    let Value::Object(map) = resource else {
        return resource;
    };
    let always = |k: &str| k == "id" || k == "schemas";
    let kept: Map<String, Value> = match (attributes, excluded) {
        (Some(list), _) => {
            let wanted = names(list);
            map.into_iter()
                .filter(|(k, _)| always(k) || wanted.contains(&k.to_ascii_lowercase()))
                .collect()
        }
        (None, Some(list)) => {
            let unwanted = names(list);
            map.into_iter()
                .filter(|(k, _)| always(k) || !unwanted.contains(&k.to_ascii_lowercase()))
                .collect()
        }
        (None, None) => map,
    };
    Value::Object(kept)
}
