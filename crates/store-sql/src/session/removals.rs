//! How a batch of removals opens in one statement where the backend allows it (PostgreSQL):
//! its organizations locked, its callers' tokens and the memberships it names read, in one
//! round trip instead of three (`Session::open_removals`).

use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::store::{OpenedRemovals, read_tokens_then_lock};

use super::memberships::{MEMBERSHIP_SELECT, membership_row};
use super::*;
use crate::conn::{Arg, Conn, SqlRow};

/// What each row of the opening statement is, in its first column.
const TOKEN_ROW: i64 = 0;
const ORGANIZATION_ROW: i64 = 1;
const MEMBER_BY_ID_ROW: i64 = 2;
const MEMBER_BY_USER_ROW: i64 = 3;

/// Where each part's columns start in a row: the kind, a token's, an organization's id and
/// slug, a membership's.
const TOKEN_AT: usize = 1;
const ORGANIZATION_AT: usize = TOKEN_AT + TOKEN_COLUMNS;
const MEMBERSHIP_AT: usize = ORGANIZATION_AT + 2;

/// How many columns `MEMBERSHIP_SELECT` reads.
const MEMBERSHIP_COLUMNS: usize = 18;

/// The columns `MEMBERSHIP_SELECT` reads, and its `FROM` (the last: the role's key is a
/// subquery with a `FROM` of its own).
fn membership_columns() -> (&'static str, &'static str) {
    let from = MEMBERSHIP_SELECT
        .rfind(" FROM ")
        .unwrap_or(MEMBERSHIP_SELECT.len());
    let columns = "SELECT ".len().min(from);
    (
        &MEMBERSHIP_SELECT[columns..from],
        &MEMBERSHIP_SELECT[from..],
    )
}

/// `n` NULLs, for the columns a row of one kind does not have.
fn nulls(n: usize) -> String {
    vec!["NULL"; n].join(", ")
}

/// NULLs of the types of `table`'s columns `columns` (a comma list; an `alias.` prefix or a
/// subquery reading `(SELECT alias.column FROM other …)` is read as that column of that
/// table). The first branch of a `UNION ALL` pads with these: where two branches have an
/// untyped NULL, PostgreSQL takes the column for text, and a later branch's uuid fails.
fn typed_nulls(table: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| {
            let c = c.trim();
            match c.strip_prefix("(SELECT ") {
                Some(sub) => {
                    // `(SELECT r.role_key FROM roles r …)`: the column of the other table.
                    let column = sub.split_whitespace().next().unwrap_or_default();
                    let column = column.rsplit('.').next().unwrap_or(column);
                    let other = sub.split(" FROM ").nth(1).unwrap_or_default();
                    let other = other.split_whitespace().next().unwrap_or_default();
                    format!("(NULL::{other}).{column}")
                }
                None => format!("(NULL::{table}).{}", c.rsplit('.').next().unwrap_or(c)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Session::open_removals` for the SQL stores: in one statement where `Conn::WRITES_IN_WITH`
/// and the lists are short enough, else the default's statements (the memberships then left
/// to the caller).
pub(super) async fn open_removals<C: Conn>(
    s: &mut SqlSession<C>,
    ids: &[OrganizationId],
    tokens: &[TokenId],
    members: &[MembershipId],
    users: &[UserId],
) -> CoreResult<OpenedRemovals> {
    let read_members = members.len() + users.len() <= CHUNK;
    let (members, users) = if read_members {
        (members, users)
    } else {
        (&[][..], &[][..])
    };
    let nothing_but_locks = tokens.is_empty() && members.is_empty() && users.is_empty();
    if !C::WRITES_IN_WITH || ids.is_empty() || tokens.len() > CHUNK || nothing_but_locks {
        return read_tokens_then_lock(s, ids, tokens).await;
    }
    // A row per organization locked (`FOR UPDATE` in id order, as
    // `PgConn::lock_organization_slugs`), then one per token and per membership found, each
    // with NULLs for the others' columns. The transaction holds these locks from its `BEGIN`
    // (`Store::begin_locking`), so the statement waits for nobody and reads as things are
    // once the locks are held.
    let (membership_cols, membership_from) = membership_columns();
    let org_list = placeholders(1, ids.len());
    let mut args: Vec<Arg> = ids.iter().map(|o| Arg::Uuid(o.0)).collect();
    let mut sql = format!(
        "WITH locked AS (SELECT id, slug FROM organizations WHERE id IN ({org_list}) \
           ORDER BY id FOR UPDATE) \
         SELECT {ORGANIZATION_ROW}, {}, id, slug, {} FROM locked",
        typed_nulls("tokens", TOKEN_COLS),
        typed_nulls("memberships", membership_cols),
    );
    let no_membership = nulls(MEMBERSHIP_COLUMNS);
    if !tokens.is_empty() {
        sql.push_str(&format!(
            " UNION ALL SELECT {TOKEN_ROW}, {TOKEN_COLS}, NULL, NULL, {no_membership} \
             FROM tokens WHERE id IN ({})",
            placeholders(args.len() + 1, tokens.len())
        ));
        args.extend(tokens.iter().map(|t| Arg::Uuid(t.0)));
    }
    let no_token = nulls(TOKEN_COLUMNS);
    for (kind, column, named) in [
        (
            MEMBER_BY_ID_ROW,
            "m.id",
            members.iter().map(|m| m.0).collect::<Vec<_>>(),
        ),
        (
            MEMBER_BY_USER_ROW,
            "m.user_id",
            users.iter().map(|u| u.0).collect(),
        ),
    ] {
        if named.is_empty() {
            continue;
        }
        sql.push_str(&format!(
            " UNION ALL SELECT {kind}, {no_token}, NULL, NULL, {membership_cols}{membership_from} \
             WHERE m.org_id IN ({org_list}) AND {column} IN ({})",
            placeholders(args.len() + 1, named.len())
        ));
        args.extend(named.into_iter().map(Arg::Uuid));
    }
    let rows = s.0.fetch_all(&sql, args).await?;
    let mut opened = OpenedRemovals {
        organizations: Vec::with_capacity(ids.len()),
        tokens: Vec::with_capacity(tokens.len()),
        memberships: read_members.then(|| (Vec::new(), Vec::new())),
    };
    for r in &rows {
        let member = |r: &C::Row| membership_row(&Columns(r, MEMBERSHIP_AT));
        match (r.int(0)?, opened.memberships.as_mut()) {
            (ORGANIZATION_ROW, _) => opened.organizations.push((
                OrganizationId(r.uuid(ORGANIZATION_AT)?),
                r.text(ORGANIZATION_AT + 1)?,
            )),
            (TOKEN_ROW, _) => opened.tokens.push(token_row(&Columns(r, TOKEN_AT))?),
            (MEMBER_BY_ID_ROW, Some((by_id, _))) => by_id.push(member(r)?),
            (MEMBER_BY_USER_ROW, Some((_, by_user))) => by_user.push(member(r)?),
            _ => return Err(corrupt("kind of a removal batch's opening row")),
        }
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_membership_column_count_matches_the_membership_columns() {
        let (columns, from) = membership_columns();
        assert_eq!(columns.split(',').count(), MEMBERSHIP_COLUMNS);
        assert_eq!(from, " FROM memberships m");
    }

    #[test]
    fn typed_nulls_name_each_columns_table_and_column() {
        assert_eq!(
            typed_nulls(
                "memberships",
                "m.id, (SELECT r.role_key FROM roles r WHERE r.id = m.role_id), status"
            ),
            "(NULL::memberships).id, (NULL::roles).role_key, (NULL::memberships).status"
        );
    }
}
