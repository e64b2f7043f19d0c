//! Request parameters the way Clerk reports problems with them: every missing, invalid or
//! unknown parameter is a 422 naming it in `meta.param_name`. Bodies are JSON objects; query
//! strings may repeat a key for a list (`user_id=a&user_id=b`), as the SDK sends them.

use std::collections::BTreeSet;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use roster_core::model::Metadata;
use serde_json::{Map, Value};

use crate::error::ClerkError;

/// A JSON body, read parameter by parameter.
pub struct Form {
    params: Map<String, Value>,
    taken: BTreeSet<String>,
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = ClerkError;
    async fn from_request(req: Request, _state: &S) -> Result<Self, ClerkError> {
        let (_, bytes) = roster_http::extract::read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Form {
                params: Map::new(),
                taken: BTreeSet::new(),
            });
        }
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(params)) => Ok(Form {
                params,
                taken: BTreeSet::new(),
            }),
            Ok(_) => Err(ClerkError::malformed(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ClerkError::malformed(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }
}

impl Form {
    fn take(&mut self, name: &str) -> Option<Value> {
        self.taken.insert(name.to_owned());
        self.params.get(name).cloned().filter(|v| !v.is_null())
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>, ClerkError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ClerkError::param_invalid(
                name,
                format!("{name} must be a string"),
            )),
        }
    }

    pub fn required_string(&mut self, name: &str) -> Result<String, ClerkError> {
        match self.string(name)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ClerkError::param_missing(name)),
        }
    }

    pub fn integer(&mut self, name: &str) -> Result<Option<i64>, ClerkError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                ClerkError::param_invalid(name, format!("{name} must be an integer"))
            }),
        }
    }

    pub fn boolean(&mut self, name: &str) -> Result<Option<bool>, ClerkError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(ClerkError::param_invalid(
                name,
                format!("{name} must be a boolean"),
            )),
        }
    }

    pub fn object(&mut self, name: &str) -> Result<Option<Metadata>, ClerkError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(ClerkError::param_invalid(
                name,
                format!("{name} must be an object"),
            )),
        }
    }

    pub fn strings(&mut self, name: &str) -> Result<Vec<String>, ClerkError> {
        match self.take(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s]),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ClerkError::param_invalid(
                        name,
                        format!("{name} must be a list of strings"),
                    )),
                })
                .collect(),
            Some(_) => Err(ClerkError::param_invalid(
                name,
                format!("{name} must be a list of strings"),
            )),
        }
    }

    /// Refuses any parameter the handler did not read.
    pub fn finish(self) -> Result<(), ClerkError> {
        match self.params.keys().find(|k| !self.taken.contains(*k)) {
            Some(k) => Err(ClerkError::param_unknown(k)),
            None => Ok(()),
        }
    }
}

/// The query string, read parameter by parameter.
pub struct Params {
    pairs: Vec<(String, String)>,
    taken: BTreeSet<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ClerkError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ClerkError> {
        let pairs = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.trim_end_matches("[]").to_owned(), v.into_owned()))
            .collect();
        Ok(Params {
            pairs,
            taken: BTreeSet::new(),
        })
    }
}

impl Params {
    pub fn all(&mut self, name: &str) -> Vec<String> {
        self.taken.insert(name.to_owned());
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn one(&mut self, name: &str) -> Option<String> {
        self.all(name).into_iter().last()
    }

    pub fn integer(&mut self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ClerkError> {
        match self.one(name) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ClerkError::param_invalid(
                    name,
                    format!("{name} must be an integer between {min} and {max}"),
                )),
            },
        }
    }

    pub fn boolean(&mut self, name: &str) -> Result<bool, ClerkError> {
        match self.one(name).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ClerkError::param_invalid(
                name,
                format!("{name} must be true or false"),
            )),
        }
    }

    /// `limit` (1..=500, default 10) and `offset` (0 or more).
    pub fn page(&mut self) -> Result<roster_core::model::Page, ClerkError> {
        let limit = self.integer("limit", 1, 500)?.unwrap_or(10);
        let offset = self.integer("offset", 0, i64::MAX)?.unwrap_or(0);
        let descending = match self.one("order_by").as_deref() {
            None | Some("-created_at") => true,
            Some("created_at" | "+created_at") => false,
            Some(other) => {
                return Err(ClerkError::param_invalid(
                    "order_by",
                    format!(
                        "ordering by `{other}` is not supported; use created_at or -created_at"
                    ),
                ));
            }
        };
        Ok(roster_core::model::Page {
            after: None,
            offset: offset as u64,
            limit: limit as u32,
            descending,
        })
    }

    /// Refuses any parameter the handler did not read.
    pub fn finish(self) -> Result<(), ClerkError> {
        match self.pairs.iter().find(|(k, _)| !self.taken.contains(k)) {
            Some((k, _)) => Err(ClerkError::param_unknown(k)),
            None => Ok(()),
        }
    }
}
