//! SCIM filters (RFC 7644 §3.4.2.2): parsed into an expression, evaluated against a resource as
//! this mount renders it (its JSON), so that what a filter sees is exactly what a client reads.
//! Attribute names are case-insensitive; string comparisons are too, as every attribute this
//! mount serves is `caseExact: false` but `id`.
//!
//! Supported: `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (…)`, parentheses, and
//! sub-attributes (`name.familyName`, `emails.value`). A multi-valued attribute matches if any
//! of its values does. Value filters in brackets (`emails[type eq "work"]`) are refused as
//! `invalidFilter`.

use serde_json::Value;

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare {
        path: Vec<String>,
        op: Op,
        value: Value,
    },
    Present(Vec<String>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Filter {
    /// Parses `text`, or says where it went wrong.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, at: 0 };
        let f = p.or()?;
        match p.peek() {
            None => Ok(f),
            Some(t) => Err(format!("unexpected {t:?} after a complete filter")),
        }
    }

    /// Whether `resource` (a rendered SCIM resource) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(resource) && b.matches(resource),
            Filter::Or(a, b) => a.matches(resource) || b.matches(resource),
            Filter::Not(f) => !f.matches(resource),
            Filter::Present(path) => values_at(resource, path)
                .iter()
                .any(|v| !v.is_null() && v.as_str() != Some("")),
            Filter::Compare { path, op, value } => {
                let found = values_at(resource, path);
                if *op == Op::Ne {
                    return !found.iter().any(|v| compare(v, Op::Eq, value));
                }
                found.iter().any(|v| compare(v, *op, value))
            }
        }
    }

    /// Whether the filter reads the top-level attribute `name` anywhere (case-insensitively):
    /// a resource rendered without it cannot be matched against this filter.
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => a.mentions(name) || b.mentions(name),
            Filter::Not(f) => f.mentions(name),
            Filter::Present(path) | Filter::Compare { path, .. } => {
                path.first().is_some_and(|p| p.eq_ignore_ascii_case(name))
            }
        }
    }

    /// The value every match must have at `path` (case-insensitively), where the filter says
    /// so: `userName eq "a"`, or such a comparison `and` anything. A mount may read only those
    /// resources, and still evaluates the whole filter on them.
    pub fn required_eq(&self, path: &[&str]) -> Option<&Value> {
        match self {
            Filter::Compare {
                path: p,
                op: Op::Eq,
                value,
            } if same_path(p, path) => Some(value),
            Filter::And(a, b) => a.required_eq(path).or_else(|| b.required_eq(path)),
            _ => None,
        }
    }
}

fn same_path(a: &[String], b: &[&str]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// The values at `path` in `v`, through multi-valued attributes (arrays) at any step.
fn values_at<'a>(v: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
    };
    match v {
        Value::Object(map) => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(first))
            .map(|(_, child)| values_at(child, rest))
            .unwrap_or_default(),
        Value::Array(items) => items.iter().flat_map(|i| values_at(i, path)).collect(),
        _ => Vec::new(),
    }
}

fn compare(found: &Value, op: Op, wanted: &Value) -> bool {
    match (found, wanted) {
        (Value::String(f), Value::String(w)) => {
            let (f, w) = (f.to_lowercase(), w.to_lowercase());
            match op {
                Op::Eq => f == w,
                Op::Ne => f != w,
                Op::Co => f.contains(&w),
                Op::Sw => f.starts_with(&w),
                Op::Ew => f.ends_with(&w),
                Op::Gt => f > w,
                Op::Ge => f >= w,
                Op::Lt => f < w,
                Op::Le => f <= w,
            }
        }
        (Value::Bool(f), Value::Bool(w)) => match op {
            Op::Eq => f == w,
            Op::Ne => f != w,
            _ => false,
        },
        (Value::Number(f), Value::Number(w)) => {
            let (f, w) = (
                f.as_f64().unwrap_or(f64::NAN),
                w.as_f64().unwrap_or(f64::NAN),
            );
            match op {
                Op::Eq => f == w,
                Op::Ne => f != w,
                Op::Gt => f > w,
                Op::Ge => f >= w,
                Op::Lt => f < w,
                Op::Le => f <= w,
                _ => false,
            }
        }
        (_, Value::Null) => match op {
            Op::Eq => found.is_null(),
            Op::Ne => !found.is_null(),
            _ => false,
        },
        _ => false,
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Literal(Value),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '[' | ']' => {
                return Err("value filters in brackets are not supported".to_owned());
            }
            '"' => {
                // A JSON string, escapes included.
                let mut end = None;
                let mut escaped = false;
                for (j, d) in text[i + 1..].char_indices() {
                    match d {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i + 1 + j);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or("a string is not closed")?;
                let literal: Value = serde_json::from_str(&text[i..=end])
                    .map_err(|e| format!("a string cannot be read: {e}"))?;
                tokens.push(Token::Literal(literal));
                while chars.peek().is_some_and(|&(j, _)| j <= end) {
                    chars.next();
                }
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_whitespace() || "()[]\"".contains(d) {
                        break;
                    }
                    word.push(d);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.next();
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.atom()?;
        while self.keyword("and") {
            self.next();
            left = Filter::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.next();
            return match self.atom()? {
                grouped @ (Filter::And(..) | Filter::Or(..) | Filter::Compare { .. }) => {
                    Ok(Filter::Not(Box::new(grouped)))
                }
                other => Ok(Filter::Not(Box::new(other))),
            };
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("a parenthesis is not closed".to_owned()),
                }
            }
            Some(Token::Word(attr)) => {
                let path = attribute_path(&attr)?;
                let op = match self.next() {
                    Some(Token::Word(op)) => op.to_ascii_lowercase(),
                    other => {
                        return Err(format!("expected an operator after {attr}, not {other:?}"));
                    }
                };
                if op == "pr" {
                    return Ok(Filter::Present(path));
                }
                let op = match op.as_str() {
                    "eq" => Op::Eq,
                    "ne" => Op::Ne,
                    "co" => Op::Co,
                    "sw" => Op::Sw,
                    "ew" => Op::Ew,
                    "gt" => Op::Gt,
                    "ge" => Op::Ge,
                    "lt" => Op::Lt,
                    "le" => Op::Le,
                    _ => return Err(format!("unknown operator {op}")),
                };
                let value = match self.next() {
                    Some(Token::Literal(v)) => v,
                    Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        "null" => Value::Null,
                        _ => serde_json::from_str::<serde_json::Number>(&w)
                            .map(Value::Number)
                            .map_err(|_| format!("{w} is not a value (strings are quoted)"))?,
                    },
                    other => return Err(format!("expected a value after {attr}, not {other:?}")),
                };
                Ok(Filter::Compare { path, op, value })
            }
            other => Err(format!("expected an attribute, not {other:?}")),
        }
    }
}

/// `name.familyName` → [name, familyName]; a full URN prefix of the core User schema is
/// dropped (`urn:ietf:params:scim:schemas:core:2.0:User:userName`).
fn attribute_path(attr: &str) -> Result<Vec<String>, String> {
    let short = attr.rsplit_once(':').map_or(
        attr,
        |(urn, rest)| if urn.contains("scim") { rest } else { attr },
    );
    let path: Vec<String> = short.split('.').map(str::to_owned).collect();
    if path.iter().any(|p| {
        p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    }) {
        return Err(format!("{attr} is not an attribute path"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "userName": "Ada@Example.com",
            "externalId": "00u1",
            "active": true,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.com", "primary": true}, {"value": "ada@home.example"}],
        })
    }

    fn matches(f: &str) -> bool {
        Filter::parse(f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .matches(&user())
    }

    #[test]
    fn the_filters_identity_providers_send_match_as_the_rfc_says() {
        assert!(
            matches(r#"userName eq "ada@example.com""#),
            "case-insensitive"
        );
        assert!(matches(r#"externalId eq "00u1""#));
        assert!(
            matches(r#"emails.value eq "ada@home.example""#),
            "any value"
        );
        assert!(matches("active eq true"));
        assert!(!matches("active eq false"));
        assert!(matches(r#"userName eq "x" or externalId eq "00u1""#));
        assert!(!matches(
            r#"userName eq "ada@example.com" and active eq false"#
        ));
        assert!(matches(
            r#"name.familyName sw "love" and (active eq true or userName eq "x")"#
        ));
        assert!(matches(r#"not (userName eq "x")"#));
        assert!(matches("name.givenName pr"));
        assert!(!matches("title pr"));
        assert!(
            matches(r#"USERNAME Eq "ADA@EXAMPLE.COM""#),
            "names and operators any case"
        );
        assert!(matches(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ada@example.com""#
        ));
        assert!(matches(r#"userName ne "someone@else.example""#));
    }

    #[test]
    fn a_malformed_filter_says_what_is_wrong() {
        for bad in [
            "userName",
            r#"userName eq"#,
            r#"userName is "x""#,
            r#"userName eq "x"#,
            r#"(userName eq "x""#,
            r#"userName eq "x" and"#,
            r#"emails[type eq "work"].value eq "x""#,
            r#"userName eq x"#,
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn the_equality_a_filter_requires_is_found_for_reading_less() {
        let f = Filter::parse(r#"userName eq "a@example.com" and active eq true"#).unwrap();
        assert_eq!(f.required_eq(&["userName"]), Some(&json!("a@example.com")));
        let f = Filter::parse(r#"userName eq "a" or active eq true"#).unwrap();
        assert_eq!(f.required_eq(&["userName"]), None);
    }
}
