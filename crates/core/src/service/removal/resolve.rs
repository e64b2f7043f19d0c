//! Reading what a removal request names: every target in request order, each membership
//! once however it is named, read a thousand at a time and packed as read, so that a
//! 100,000-member removal never holds its memberships whole.

use std::collections::HashSet;

use crate::error::CoreResult;
use crate::ids::*;
use crate::model::*;
use crate::removed::Removed;
use crate::store::Session;

use super::rules::none_such;

/// Resolves every target in request order, dropping duplicates. Any target that is not a
/// membership of `org` fails the whole request; the error names them all (up to a cap).
pub(in crate::service) async fn resolve_many(
    s: &mut dyn Session,
    org: OrganizationId,
    targets: &[MemberRef],
) -> CoreResult<Removed> {
    let by_ids = targets
        .iter()
        .filter(|t| matches!(t, MemberRef::Membership(_)))
        .count();
    let mut ids = Vec::with_capacity(by_ids);
    let mut users = Vec::with_capacity(targets.len() - by_ids);
    for t in targets {
        match t {
            MemberRef::Membership(id) => ids.push(*id),
            MemberRef::User(u) => users.push(*u),
        }
    }
    // Every membership found, by id then by user (one named both ways is read twice), packed
    // as each part is read: a bulk removal never holds its 100,000 memberships whole. The
    // answer is this put in request order in place. The lookups are positions sorted by key
    // and searched by bisection: hash maps and a set over 100,000 memberships took a fifth as
    // much memory as the memberships themselves. Positions fit in `u32`: at most
    // 2 × `MAX_BULK_REMOVAL` rows.
    let mut found = Removed::with_capacity(targets.len());
    for part in ids.chunks(READ_AT_A_TIME) {
        for m in s.memberships_by_ids(org, part).await? {
            found.push(m);
        }
    }
    drop(ids);
    let read_by_id = found.len();
    for part in users.chunks(READ_AT_A_TIME) {
        for m in s.memberships_by_users(org, part).await? {
            found.push(m);
        }
    }
    drop(users);
    let by_id = Positions::sorted(0..read_by_id, |i| found.id_at(i));
    let by_user = Positions::sorted(
        (read_by_id..found.len()).filter(|&i| found.user_at(i).is_some()),
        |i| found.user_at(i),
    );
    let mut taken = vec![false; found.len()];
    let mut order: Vec<u32> = Vec::with_capacity(targets.len());
    let (mut missing, mut missing_seen) = (Vec::new(), HashSet::new());
    for t in targets {
        let at = match t {
            MemberRef::Membership(id) => by_id.find(id, |i| found.id_at(i)),
            // A membership also named by id is taken at its by-id position, so that it is
            // removed once however it is named.
            MemberRef::User(u) => by_user.find(&Some(*u), |i| found.user_at(i)).map(|at| {
                by_id
                    .find(&found.id_at(at), |i| found.id_at(i))
                    .unwrap_or(at)
            }),
        };
        match at {
            Some(at) if !std::mem::replace(&mut taken[at], true) => order.push(at as u32),
            Some(_) => {}
            None if missing_seen.insert(*t) => missing.push(*t),
            None => {}
        }
    }
    drop((by_id, by_user, taken));
    if !missing.is_empty() {
        return Err(none_such(targets, &missing));
    }
    found.arrange(&order);
    Ok(found)
}

/// Memberships a large removal reads in one go, packing them before it reads more (the SQL
/// stores read as many in one statement).
pub(in crate::service) const READ_AT_A_TIME: usize = 1000;

/// Positions in a vector, sorted by a key of the item at each: a lookup by key in a few bytes a
/// position.
pub(in crate::service) struct Positions(Vec<u32>);

impl Positions {
    fn sorted<K: Ord>(positions: impl Iterator<Item = usize>, key: impl Fn(usize) -> K) -> Self {
        let mut sorted: Vec<u32> = positions.map(|i| i as u32).collect();
        sorted.sort_unstable_by_key(|&i| key(i as usize));
        Positions(sorted)
    }

    /// The position of the item whose key is `wanted`, if there is one (`key` as sorted by).
    fn find<K: Ord>(&self, wanted: &K, key: impl Fn(usize) -> K) -> Option<usize> {
        self.0
            .binary_search_by(|&i| key(i as usize).cmp(wanted))
            .ok()
            .map(|k| self.0[k] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::Positions;

    #[test]
    fn positions_find_each_item_by_its_key_and_nothing_for_a_key_no_item_has() {
        let items = [40, 10, 30, 20, 50];
        // Only the positions given are searched: 4 (key 50) is left out.
        let by_key = Positions::sorted(0..4, |i| items[i]);
        for (at, key) in items[..4].iter().enumerate() {
            assert_eq!(by_key.find(key, |i| items[i]), Some(at), "key {key}");
        }
        for absent in [0, 15, 50, 60] {
            assert_eq!(by_key.find(&absent, |i| items[i]), None, "key {absent}");
        }
    }
}
