//! Users: their rows and filters, and the organizations each belongs to.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const USER_COLS: &str =
    "id, email, first_name, last_name, username, image_url, created_at, updated_at";

/// The `WHERE` of a filtered user query.
pub(super) fn user_filter_sql(filter: &UserFilter, args: &mut Vec<Arg>) -> String {
    let mut sql = " WHERE 1 = 1".to_owned();
    let emails = filter
        .emails
        .iter()
        .map(|e| Arg::Text(e.to_lowercase()))
        .collect();
    sql.push_str(&in_list("email_normalized", emails, args));
    if let Some(q) = &filter.query {
        args.push(Arg::Text(contains_pattern(q)));
        let n = args.len();
        sql.push_str(&format!(
            " AND (email_normalized LIKE ${n} ESCAPE '!' \
             OR LOWER(COALESCE(first_name, '') || ' ' || COALESCE(last_name, '')) LIKE ${n} ESCAPE '!' \
             OR LOWER(COALESCE(username, '')) LIKE ${n} ESCAPE '!')"
        ));
    }
    sql
}

pub(super) fn user_row(r: &impl SqlRow) -> CoreResult<User> {
    Ok(User {
        id: UserId(r.uuid(0)?),
        email: r.text(1)?,
        first_name: r.opt_text(2)?,
        last_name: r.opt_text(3)?,
        username: r.opt_text(4)?,
        image_url: r.opt_text(5)?,
        created_at: Timestamp(r.int(6)?),
        updated_at: Timestamp(r.int(7)?),
    })
}

#[async_trait]
impl<C: Conn> UserRows for SqlSession<C> {
    async fn insert_user(&mut self, u: &User) -> CoreResult<()> {
        self.0
            .execute(
                &format!("INSERT INTO users ({USER_COLS}, email_normalized) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
                vec![
                    Arg::Uuid(u.id.0),
                    Arg::Text(u.email.clone()),
                    Arg::OptText(u.first_name.clone()),
                    Arg::OptText(u.last_name.clone()),
                    Arg::OptText(u.username.clone()),
                    Arg::OptText(u.image_url.clone()),
                    ts(u.created_at),
                    ts(u.updated_at),
                    Arg::Text(u.email.to_lowercase()),
                ],
            )
            .await
            .map(drop)
    }

    async fn user(&mut self, id: UserId) -> CoreResult<Option<User>> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
            vec![Arg::Uuid(id.0)],
            user_row,
        )
        .await
    }

    async fn user_by_email(&mut self, email: &str) -> CoreResult<Option<User>> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE email_normalized = $1"),
            vec![Arg::Text(email.to_lowercase())],
            user_row,
        )
        .await
    }

    async fn users_by_ids(&mut self, ids: &[UserId]) -> CoreResult<Vec<User>> {
        let head = format!("SELECT {USER_COLS} FROM users WHERE id IN");
        self.fetch_in(&head, &[], ids, |u| u.0, "", user_row).await
    }

    async fn list_users(&mut self, filter: &UserFilter, page: Page) -> CoreResult<Vec<User>> {
        let mut args = Vec::new();
        let mut sql = format!(
            "SELECT {USER_COLS} FROM users{}",
            user_filter_sql(filter, &mut args)
        );
        let next = args.len() + 1;
        sql.push_str(&page_sql("id", page, next, &mut args));
        self.all(&sql, args, user_row).await
    }

    async fn count_users(&mut self, filter: &UserFilter) -> CoreResult<i64> {
        let mut args = Vec::new();
        let sql = format!(
            "SELECT COUNT(*) FROM users{}",
            user_filter_sql(filter, &mut args)
        );
        self.count(&sql, args).await
    }

    async fn update_user(&mut self, u: &User) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE users SET first_name = $2, last_name = $3, username = $4, image_url = $5, updated_at = $6 WHERE id = $1",
                vec![
                    Arg::Uuid(u.id.0),
                    Arg::OptText(u.first_name.clone()),
                    Arg::OptText(u.last_name.clone()),
                    Arg::OptText(u.username.clone()),
                    Arg::OptText(u.image_url.clone()),
                    ts(u.updated_at),
                ],
            )
            .await
            .map(drop)
    }

    async fn delete_user(&mut self, id: UserId) -> CoreResult<()> {
        for sql in [
            "DELETE FROM project_memberships WHERE user_id = $1",
            "DELETE FROM passwords WHERE user_id = $1",
            "DELETE FROM tokens WHERE user_id = $1",
            "DELETE FROM memberships WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            self.0.execute(sql, vec![Arg::Uuid(id.0)]).await?;
        }
        Ok(())
    }

    async fn organizations_of_user(&mut self, user: UserId) -> CoreResult<Vec<OrganizationId>> {
        self.all(
            "SELECT org_id FROM memberships WHERE user_id = $1",
            vec![Arg::Uuid(user.0)],
            |r| r.uuid(0).map(OrganizationId),
        )
        .await
    }
}
