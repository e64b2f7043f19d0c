//! Former members: what removals removed, kept for the retention window, written with the
//! removal's other records (`events.rs`), read by page, purged. A record names its removal's
//! event, which holds the membership as it was and what the cascade deleted, rather than
//! keeping a copy of them; records written before it did keep their own.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::events::{EventActor, EventData, EventObject};
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;
use serde_json::json;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

const FORMER_COLS: &str = "org_id, membership_id, user_id, membership, project_memberships, \
    credentials, removed_by_kind, removed_by_id, request_id, removed_at, expires_at, event_id";

/// Arguments per former member row.
const FORMER_ARGS: usize = 12;

/// A record's columns (`f`) and its removal event's details (`e`), as `former_row` reads them.
fn former_select() -> String {
    let cols: Vec<String> = FORMER_COLS.split(", ").map(|c| format!("f.{c}")).collect();
    format!(
        "SELECT {}, e.data FROM former_members f LEFT JOIN events e ON e.id = f.event_id",
        cols.join(", ")
    )
}

/// Former members per statement.
pub(super) const FORMER_PER_STATEMENT: usize = 100;

fn json_of<T: serde::Serialize>(what: &str, v: &T) -> CoreResult<String> {
    serde_json::to_string(v).map_err(|e| CoreError::internal(format!("{what}: {e}")))
}

/// `INSERT INTO former_members … VALUES …`, a removal of a membership already recorded (it
/// was reinstated, then removed again) replacing the older record.
pub(super) fn former_insert(former: &[FormerMember], args: &mut Vec<Arg>) -> CoreResult<String> {
    let mut values = Vec::with_capacity(former.len());
    for f in former {
        values.push(format!("({})", placeholders(args.len() + 1, FORMER_ARGS)));
        // Named by its event, a record's details are the event's: none kept twice.
        let details = match f.removal_event {
            Some(_) => [String::new(), String::new(), String::new()],
            None => [
                json_of("former membership", &f.membership)?,
                json_of("former project memberships", &f.project_memberships)?,
                json!({"passwords": f.passwords, "service_tokens": f.service_tokens}).to_string(),
            ],
        };
        args.extend([
            Arg::Uuid(f.membership.organization_id.0),
            Arg::Uuid(f.membership.id.0),
            Arg::OptUuid(f.membership.user_id.map(|u| u.0)),
        ]);
        args.extend(details.map(Arg::Text));
        args.extend([
            Arg::Text(f.removed_by.kind.clone()),
            Arg::OptText(f.removed_by.id.clone()),
            Arg::OptText(f.request_id.clone()),
            ts(f.removed_at),
            ts(f.expires_at),
            Arg::OptUuid(f.removal_event.map(|e| e.0)),
        ]);
    }
    let replaced: Vec<String> = FORMER_COLS
        .split(", ")
        .skip(2)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    Ok(format!(
        "INSERT INTO former_members ({FORMER_COLS}) VALUES {} \
         ON CONFLICT (org_id, membership_id) DO UPDATE SET {}",
        values.join(", "),
        replaced.join(", ")
    ))
}

/// A row of `former_select`: the details from the removal's event where the record names one,
/// else from the record's own copy.
fn former_row(r: &impl SqlRow) -> CoreResult<FormerMember> {
    let removal_event = r.opt_uuid(11)?.map(EventId);
    let (membership, project_memberships, passwords, service_tokens) = match removal_event {
        Some(_) => {
            let data: EventData = serde_json::from_str(
                &r.opt_text(12)?
                    .ok_or_else(|| corrupt("former member's removal event"))?,
            )
            .map_err(|_| corrupt("former member's removal event"))?;
            let EventObject::Membership(membership) = data.object else {
                return Err(corrupt("former member's removal event"));
            };
            let cascade = data.cascade.unwrap_or_default();
            (
                membership,
                cascade.project_memberships,
                cascade.passwords.iter().map(|p| p.id).collect(),
                cascade.service_tokens.iter().map(|t| t.id).collect(),
            )
        }
        None => {
            #[derive(serde::Deserialize)]
            struct Credentials {
                passwords: Vec<PasswordId>,
                service_tokens: Vec<TokenId>,
            }
            let credentials: Credentials = serde_json::from_str(&r.text(5)?)
                .map_err(|_| corrupt("former member's credentials"))?;
            (
                serde_json::from_str(&r.text(3)?).map_err(|_| corrupt("former membership"))?,
                serde_json::from_str(&r.text(4)?)
                    .map_err(|_| corrupt("former project memberships"))?,
                credentials.passwords,
                credentials.service_tokens,
            )
        }
    };
    Ok(FormerMember {
        membership,
        project_memberships,
        passwords,
        service_tokens,
        removed_by: EventActor {
            kind: r.text(6)?,
            id: r.opt_text(7)?,
        },
        request_id: r.opt_text(8)?,
        removed_at: Timestamp(r.int(9)?),
        expires_at: Timestamp(r.int(10)?),
        removal_event,
    })
}

impl<C: Conn> SqlSession<C> {
    pub(super) async fn insert_former_members(
        &mut self,
        former: &[FormerMember],
    ) -> CoreResult<()> {
        for chunk in former.chunks(FORMER_PER_STATEMENT) {
            let mut args = Vec::with_capacity(chunk.len() * FORMER_ARGS);
            let sql = former_insert(chunk, &mut args)?;
            self.0.execute(&sql, args).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<C: Conn> FormerMemberRows for SqlSession<C> {
    async fn list_former_members(
        &mut self,
        org: OrganizationId,
        filter: &FormerMemberFilter,
        page: Page,
    ) -> CoreResult<Vec<FormerMember>> {
        let mut args = vec![Arg::Uuid(org.0)];
        let mut sql = format!(
            "{} LEFT JOIN users u ON u.id = f.user_id WHERE f.org_id = $1",
            former_select()
        );
        if let Some(user) = filter.user_id {
            args.push(Arg::Uuid(user.0));
            sql.push_str(&format!(" AND f.user_id = ${}", args.len()));
        }
        if let Some(email) = &filter.email {
            // The user's address, or the invitation's (in the membership's JSON: the removal
            // event's, or the record's own copy).
            let email = email.to_lowercase();
            let literal = json!(email)
                .to_string()
                .replace('!', "!!")
                .replace('%', "!%")
                .replace('_', "!_");
            args.push(Arg::Text(email));
            let n = args.len();
            args.push(Arg::Text(format!("%\"invite_email\":{literal}%")));
            sql.push_str(&format!(
                " AND (lower(u.email) = ${n} OR lower(f.membership) LIKE ${m} ESCAPE '!' \
                 OR lower(e.data) LIKE ${m} ESCAPE '!')",
                m = n + 1
            ));
        }
        let next = args.len() + 1;
        sql.push_str(&page_sql_after(
            Some("f.org_id"),
            "f.membership_id",
            page,
            next,
            &mut args,
        ));
        self.all(&sql, args, former_row).await
    }

    async fn former_member(
        &mut self,
        org: OrganizationId,
        id: MembershipId,
    ) -> CoreResult<Option<FormerMember>> {
        let sql = format!(
            "{} WHERE f.org_id = $1 AND f.membership_id = $2",
            former_select()
        );
        self.one(&sql, vec![Arg::Uuid(org.0), Arg::Uuid(id.0)], former_row)
            .await
    }

    async fn delete_former_member(
        &mut self,
        org: OrganizationId,
        id: MembershipId,
    ) -> CoreResult<bool> {
        let n = self
            .0
            .execute(
                "DELETE FROM former_members WHERE org_id = $1 AND membership_id = $2",
                vec![Arg::Uuid(org.0), Arg::Uuid(id.0)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn delete_former_members_of_user(&mut self, user: UserId) -> CoreResult<u64> {
        self.0
            .execute(
                "DELETE FROM former_members WHERE user_id = $1",
                vec![Arg::Uuid(user.0)],
            )
            .await
    }

    async fn purge_expired_former_members(&mut self, now: Timestamp) -> CoreResult<u64> {
        self.0
            .execute(
                "DELETE FROM former_members WHERE expires_at < $1",
                vec![ts(now)],
            )
            .await
    }
}
