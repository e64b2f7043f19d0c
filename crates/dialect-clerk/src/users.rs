//! `/v1/users[/{user_id}]` and `/v1/users/count`.

use axum::Json;
use axum::extract::State;
use roster_core::ids::UserId;
use roster_core::model::UserFilter;
use roster_core::service::{NewUser, UserPatch};
use roster_http::AppState;
use roster_http::request_id::context;
use serde_json::{Value, json};

use crate::error::ClerkError;
use crate::extract::{Auth, Path};
use crate::form::{Form, Params};
use crate::{ids, wire};

type Reply = Result<Json<Value>, ClerkError>;

fn path_user(raw: &str) -> Result<UserId, ClerkError> {
    ids::decode(ids::USER, raw)
        .map(UserId)
        .ok_or_else(|| ClerkError::not_found("user"))
}

fn filter(q: &mut Params) -> UserFilter {
    UserFilter {
        emails: q.all("email_address"),
        query: q.one("query").filter(|v| !v.is_empty()),
    }
}

/// Creates a user from its first email address and names. roster keeps no user passwords, so
/// `password` is refused; `skip_password_requirement` / `skip_password_checks` are accepted.
pub async fn create(State(s): State<AppState>, Auth(a): Auth, mut f: Form) -> Reply {
    let emails = f.strings("email_address")?;
    let email = match emails.as_slice() {
        [one] => one.clone(),
        [] => return Err(ClerkError::param_missing("email_address")),
        _ => {
            return Err(ClerkError::param_invalid(
                "email_address",
                "roster keeps one email address per user",
            ));
        }
    };
    let input = NewUser {
        email,
        first_name: f.string("first_name")?,
        last_name: f.string("last_name")?,
        username: f.string("username")?,
        image_url: None,
    };
    f.boolean("skip_password_requirement")?;
    f.boolean("skip_password_checks")?;
    f.finish()?;
    let user = s
        .roster
        .create_user(Some(&a), input, &context())
        .await
        .map_err(|e| match e {
            roster_core::CoreError::InvalidInput { field, message } if field == "email" => {
                ClerkError::param_invalid("email_address", message)
            }
            other => other.into(),
        })?;
    Ok(Json(wire::user(&user)))
}

/// A bare array, as Clerk answers (the SDK counts with `/users/count`).
pub async fn list(State(s): State<AppState>, Auth(a): Auth, mut q: Params) -> Reply {
    let page = q.page()?;
    let filter = filter(&mut q);
    q.finish()?;
    let users = s.roster.list_users(&a, &filter, page).await?;
    Ok(Json(Value::Array(
        users.items.iter().map(wire::user).collect(),
    )))
}

pub async fn count(State(s): State<AppState>, Auth(a): Auth, mut q: Params) -> Reply {
    let filter = filter(&mut q);
    q.finish()?;
    let n = s.roster.count_users(&a, &filter).await?;
    Ok(Json(json!({"object": "total_count", "total_count": n})))
}

pub async fn get(State(s): State<AppState>, Auth(a): Auth, Path(id): Path<String>) -> Reply {
    Ok(Json(wire::user(&s.roster.user(&a, path_user(&id)?).await?)))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(id): Path<String>,
    mut f: Form,
) -> Reply {
    let patch = UserPatch {
        first_name: f.string("first_name")?.map(Some),
        last_name: f.string("last_name")?.map(Some),
        username: f.string("username")?.map(Some),
        image_url: None,
    };
    f.finish()?;
    Ok(Json(wire::user(
        &s.roster
            .update_user(&a, path_user(&id)?, patch, &context())
            .await?,
    )))
}

/// Deletes the user and their memberships (refused while they are an organization's last admin).
pub async fn delete(State(s): State<AppState>, Auth(a): Auth, Path(id): Path<String>) -> Reply {
    let user = s
        .roster
        .delete_user(&a, path_user(&id)?, &context())
        .await?;
    Ok(Json(wire::deleted("user", wire::user_id(user.id), None)))
}
