//! Reading what removal requests name: the memberships every target of a batch names, read
//! once for all its organizations (a `Pool` each), and each request's share of them (`Found`): every membership once however it
//! is named, and for each target which one it names. Read a thousand at a time and packed as
//! read, so that a 100,000-member removal never holds its memberships whole.

use std::collections::{HashMap, HashSet};

use crate::error::CoreResult;
use crate::ids::*;
use crate::model::*;
use crate::removed::Removed;
use crate::store::Session;

/// What one request's targets named, as read.
pub(in crate::service) struct Found {
    /// The memberships named, each once, in the order the targets first name them.
    pub members: Removed,
    /// For each target, the position in `members` of the membership it names, if any.
    pub named: Vec<Option<u32>>,
}

impl Found {
    /// The memberships still there once `gone` (removed by earlier requests of the batch) are
    /// taken away, and the targets that name nothing then, in request order and each once.
    pub(in crate::service) fn without(
        mut self,
        targets: &[MemberRef],
        gone: &HashSet<MembershipId>,
    ) -> (Removed, Vec<MemberRef>) {
        let is_gone: Vec<bool> = if gone.is_empty() {
            Vec::new()
        } else {
            self.members.ids().map(|id| gone.contains(&id)).collect()
        };
        let named_nothing = |at: &Option<u32>| match at {
            None => true,
            Some(at) => is_gone.get(*at as usize).copied().unwrap_or(false),
        };
        let (mut missing, mut seen) = (Vec::new(), HashSet::new());
        for (t, at) in targets.iter().zip(&self.named) {
            if named_nothing(at) && seen.insert(*t) {
                missing.push(*t);
            }
        }
        if is_gone.contains(&true) {
            self.members.retain(|id| !gone.contains(&id));
        }
        (self.members, missing)
    }
}

/// Every membership the targets of a batch name, as read, with lookups by id and by user.
pub(in crate::service) struct Pool {
    rows: Removed,
    by_id: Positions,
    by_user: Positions,
}

impl Pool {
    /// Reads the memberships `targets` name in their organizations (`orgs`, every organization
    /// a target names), for all of them at once: by id, then by user (one named both ways is
    /// read twice), each organization's packed as each part is read. The lookups are positions
    /// sorted by key and searched by bisection: hash maps and a set over 100,000 memberships
    /// took a fifth as much memory as the memberships themselves. Positions fit in `u32`: at
    /// most 2 × `MAX_BULK_REMOVAL` rows.
    pub(in crate::service) async fn read<'a>(
        s: &mut dyn Session,
        orgs: &[OrganizationId],
        targets: impl Iterator<Item = &'a MemberRef> + Clone,
    ) -> CoreResult<HashMap<OrganizationId, Pool>> {
        if orgs.is_empty() {
            return Ok(HashMap::new());
        }
        let by_ids = targets
            .clone()
            .filter(|t| matches!(t, MemberRef::Membership(_)))
            .count();
        let mut ids = Vec::with_capacity(by_ids);
        let mut users = Vec::new();
        for t in targets {
            match t {
                MemberRef::Membership(id) => ids.push(*id),
                MemberRef::User(u) => users.push(*u),
            }
        }
        let capacity = if orgs.len() == 1 {
            ids.len() + users.len()
        } else {
            0
        };
        let mut read: HashMap<OrganizationId, (Removed, usize)> = orgs
            .iter()
            .map(|org| (*org, (Removed::with_capacity(capacity), 0)))
            .collect();
        for part in ids.chunks(READ_AT_A_TIME) {
            pack(&mut read, s.memberships_by_ids(orgs, part).await?);
        }
        drop(ids);
        for (rows, read_by_id) in read.values_mut() {
            *read_by_id = rows.len();
        }
        for part in users.chunks(READ_AT_A_TIME) {
            pack(&mut read, s.memberships_by_users(orgs, part).await?);
        }
        drop(users);
        Ok(read
            .into_iter()
            .map(|(org, (rows, read_by_id))| {
                let by_id = Positions::sorted(0..read_by_id, |i| rows.id_at(i));
                let by_user = Positions::sorted(
                    (read_by_id..rows.len()).filter(|&i| rows.user_at(i).is_some()),
                    |i| rows.user_at(i),
                );
                let pool = Pool {
                    rows,
                    by_id,
                    by_user,
                };
                (org, pool)
            })
            .collect())
    }

    /// Whether any membership read is an active admin.
    pub(in crate::service) fn has_active_admins(&self) -> bool {
        self.rows.active_admins().next().is_some()
    }

    /// Where the membership `t` names is, if it was read. A membership also read by id is
    /// always found at its by-id position, so that it is one membership however it is named.
    fn position(&self, t: &MemberRef) -> Option<usize> {
        let rows = &self.rows;
        match t {
            MemberRef::Membership(id) => self.by_id.find(id, |i| rows.id_at(i)),
            MemberRef::User(u) => self.by_user.find(&Some(*u), |i| rows.user_at(i)).map(|at| {
                self.by_id
                    .find(&rows.id_at(at), |i| rows.id_at(i))
                    .unwrap_or(at)
            }),
        }
    }

    /// The positions of the memberships `targets` name, each once in first-named order, and
    /// for each target the index in that order of the one it names.
    fn order(&self, targets: &[MemberRef]) -> (Vec<u32>, Vec<Option<u32>>) {
        // Index in `order` by position; `u32::MAX` for a position not taken yet.
        let mut index_of = vec![u32::MAX; self.rows.len()];
        let mut order: Vec<u32> = Vec::with_capacity(targets.len());
        let named = targets
            .iter()
            .map(|t| {
                let at = self.position(t)?;
                if index_of[at] == u32::MAX {
                    index_of[at] = order.len() as u32;
                    order.push(at as u32);
                }
                Some(index_of[at])
            })
            .collect();
        (order, named)
    }

    /// What `targets` name, copied out of the pool (one request among several).
    pub(in crate::service) fn found_for(&self, targets: &[MemberRef]) -> Found {
        let (order, named) = self.order(targets);
        let members = order.iter().map(|&at| self.rows.at(at as usize)).collect();
        Found { members, named }
    }

    /// What `targets` name, the pool rearranged in place (a request alone: a large one is
    /// never held twice).
    pub(in crate::service) fn into_found(self, targets: &[MemberRef]) -> Found {
        let (order, named) = self.order(targets);
        let Pool { mut rows, .. } = self;
        rows.arrange(&order);
        Found {
            members: rows,
            named,
        }
    }
}

/// Packs each membership `found` into its organization's rows, as read.
fn pack(read: &mut HashMap<OrganizationId, (Removed, usize)>, found: Vec<Membership>) {
    for m in found {
        if let Some((rows, _)) = read.get_mut(&m.organization_id) {
            rows.push(m);
        }
    }
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
