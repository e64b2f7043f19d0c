//! Former members: what removals removed, kept for the retention window, written with the
//! removal's other records (`events.rs`), read by page, purged.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::events::EventActor;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;
use serde_json::json;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

const FORMER_COLS: &str = "org_id, membership_id, user_id, membership, project_memberships, \
    credentials, removed_by_kind, removed_by_id, request_id, removed_at, expires_at";

/// Arguments per former member row.
const FORMER_ARGS: usize = 11;

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
        let credentials = json!({"passwords": f.passwords, "service_tokens": f.service_tokens});
        args.extend([
            Arg::Uuid(f.membership.organization_id.0),
            Arg::Uuid(f.membership.id.0),
            Arg::OptUuid(f.membership.user_id.map(|u| u.0)),
            Arg::Text(json_of("former membership", &f.membership)?),
            Arg::Text(json_of(
                "former project memberships",
                &f.project_memberships,
            )?),
            Arg::Text(credentials.to_string()),
            Arg::Text(f.removed_by.kind.clone()),
            Arg::OptText(f.removed_by.id.clone()),
            Arg::OptText(f.request_id.clone()),
            ts(f.removed_at),
            ts(f.expires_at),
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

fn former_row(r: &impl SqlRow) -> CoreResult<FormerMember> {
    #[derive(serde::Deserialize)]
    struct Credentials {
        passwords: Vec<PasswordId>,
        service_tokens: Vec<TokenId>,
    }
    let credentials: Credentials =
        serde_json::from_str(&r.text(5)?).map_err(|_| corrupt("former member's credentials"))?;
    Ok(FormerMember {
        membership: serde_json::from_str(&r.text(3)?).map_err(|_| corrupt("former membership"))?,
        project_memberships: serde_json::from_str(&r.text(4)?)
            .map_err(|_| corrupt("former project memberships"))?,
        passwords: credentials.passwords,
        service_tokens: credentials.service_tokens,
        removed_by: EventActor {
            kind: r.text(6)?,
            id: r.opt_text(7)?,
        },
        request_id: r.opt_text(8)?,
        removed_at: Timestamp(r.int(9)?),
        expires_at: Timestamp(r.int(10)?),
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
        let cols: Vec<String> = FORMER_COLS.split(", ").map(|c| format!("f.{c}")).collect();
        let mut args = vec![Arg::Uuid(org.0)];
        let mut sql = format!(
            "SELECT {} FROM former_members f LEFT JOIN users u ON u.id = f.user_id \
             WHERE f.org_id = $1",
            cols.join(", ")
        );
        if let Some(user) = filter.user_id {
            args.push(Arg::Uuid(user.0));
            sql.push_str(&format!(" AND f.user_id = ${}", args.len()));
        }
        if let Some(email) = &filter.email {
            // The user's address, or the invitation's (kept in the membership's JSON).
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
                " AND (lower(u.email) = ${n} OR lower(f.membership) LIKE ${} ESCAPE '!')",
                n + 1
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
            "SELECT {FORMER_COLS} FROM former_members WHERE org_id = $1 AND membership_id = $2"
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
