//! Parsing of user input into domain values ("parse, don't validate"): each function either
//! returns the clean value or an `InvalidInput` naming the field.

use crate::error::{CoreError, CoreResult};

pub const MAX_NAME_LEN: usize = 256;

pub fn name(field: &str, value: &str) -> CoreResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(CoreError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if v.chars().count() > MAX_NAME_LEN {
        return Err(CoreError::invalid(
            field,
            format!("{field} is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(v.to_owned())
}

pub fn optional_text(field: &str, value: Option<String>) -> CoreResult<Option<String>> {
    value.map(|v| name(field, &v)).transpose()
}

/// Lowercase letters, digits and single hyphens, 1 to 63 characters, not starting or ending
/// with a hyphen.
pub fn slug(field: &str, value: &str) -> CoreResult<String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if ok {
        Ok(value.to_owned())
    } else {
        Err(CoreError::invalid(
            field,
            format!(
                "`{value}` is not a valid {field}: use 1 to 63 lowercase letters, digits and single hyphens"
            ),
        ))
    }
}

/// A slug derived from a name: "Acme Corp." → "acme-corp".
pub fn slug_from_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "org".to_owned()
    } else {
        out
    }
}

pub fn email(field: &str, value: &str) -> CoreResult<String> {
    let v = value.trim();
    let valid = v.len() <= 320
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(v.to_owned())
    } else {
        Err(CoreError::invalid(
            field,
            format!("`{value}` is not a valid email address"),
        ))
    }
}

/// Role keys: lowercase letters, digits, `-` and `_`, 1 to 64 characters.
pub fn role_key(field: &str, value: &str) -> CoreResult<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(CoreError::invalid(
            field,
            format!("`{value}` is not a valid role key"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_derived_from_names() {
        assert_eq!(slug_from_name("Acme Corp."), "acme-corp");
        assert_eq!(slug_from_name("  ---  "), "org");
        assert!(slug("slug", &slug_from_name("Ünïcode & Co")).is_ok());
    }

    #[test]
    fn malformed_emails_are_refused() {
        assert!(email("email", "ada@example.com").is_ok());
        for bad in ["ada", "@example.com", "ada@example", "a da@example.com"] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }
}
