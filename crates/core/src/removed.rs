//! The memberships a removal removed, as it holds them until its answer is written: packed, so
//! that a bulk removal of 100,000 members holds about 64 bytes a member instead of a whole
//! `Membership` each (264 bytes, and a heap string for its role key). That was most of the
//! server's memory at the peak of such a request (measured when this landed; see its commit).
//!
//! Model code only: no store, no HTTP.

use crate::ids::*;
use crate::model::{Membership, MembershipStatus};
use crate::timestamp::Timestamp;

type ShapeKey = (OrganizationId, RoleId, MembershipStatus, bool);

/// What one removed membership has of its own when its other fields are its shape's.
#[derive(Clone, Debug)]
struct Packed {
    id: MembershipId,
    user_id: Option<UserId>,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// Which of `Removed::shapes` holds the other fields.
    shape: u32,
}

/// Removed memberships, in order. A membership with nothing of its own beyond its ids and
/// timestamps (no invitation, login, favorites or metadata: a bulk removal's usual member)
/// shares its shape with every other such membership of its role, status and activity; any
/// other membership keeps a shape of its own (then it takes a little more than a whole
/// `Membership`).
#[derive(Clone, Debug, Default)]
pub struct Removed {
    rows: Vec<Packed>,
    /// Every field the rows do not hold, as a whole membership (its id, user and timestamps
    /// are those of the first row of that shape, and are not read).
    shapes: Vec<Membership>,
    /// The shared shapes, by organization, role, status and activity: a few (the roles in use
    /// times two and two), so a list searched in order, with no hashing for a single removal.
    shared: Vec<(ShapeKey, u32)>,
}

impl Removed {
    pub fn with_capacity(n: usize) -> Self {
        Removed {
            rows: Vec::with_capacity(n),
            ..Removed::default()
        }
    }

    pub fn push(&mut self, m: Membership) {
        let row = Packed {
            id: m.id,
            user_id: m.user_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
            shape: 0,
        };
        let shape = if has_only_shared_fields(&m) {
            let key = (m.organization_id, m.role_id, m.status, m.is_active);
            match self.shared.iter().find(|(k, _)| *k == key) {
                Some(&(_, shape)) => shape,
                None => {
                    let shape = self.add_shape(m);
                    self.shared.push((key, shape));
                    shape
                }
            }
        } else {
            self.add_shape(m)
        };
        self.rows.push(Packed { shape, ..row });
    }

    fn add_shape(&mut self, m: Membership) -> u32 {
        self.shapes.push(m);
        // At most one shape a row, and rows are at most 2 × `MAX_BULK_REMOVAL`.
        (self.shapes.len() - 1) as u32
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The memberships, each whole (built as it is read).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Membership> + '_ {
        self.rows.iter().map(|r| unpack(&self.shapes, r))
    }

    pub fn first(&self) -> Option<Membership> {
        self.iter().next()
    }

    pub fn ids(&self) -> impl ExactSizeIterator<Item = MembershipId> + '_ {
        self.rows.iter().map(|r| r.id)
    }

    /// The users of the memberships that have one (invitations have none).
    pub fn user_ids(&self) -> impl Iterator<Item = UserId> + '_ {
        self.rows.iter().filter_map(|r| r.user_id)
    }

    /// Each membership's id and user.
    pub(crate) fn ids_and_users(
        &self,
    ) -> impl Iterator<Item = (MembershipId, Option<UserId>)> + '_ {
        self.rows.iter().map(|r| (r.id, r.user_id))
    }

    /// The id of the membership at `i` (`i < len()`).
    pub(crate) fn id_at(&self, i: usize) -> MembershipId {
        self.rows[i].id
    }

    /// The user of the membership at `i` (`i < len()`).
    pub(crate) fn user_at(&self, i: usize) -> Option<UserId> {
        self.rows[i].user_id
    }

    /// The membership at `i` (`i < len()`), whole.
    pub(crate) fn at(&self, i: usize) -> Membership {
        unpack(&self.shapes, &self.rows[i])
    }

    /// Keeps only the memberships whose ids `keep` accepts, in order.
    pub(crate) fn retain(&mut self, keep: impl Fn(MembershipId) -> bool) {
        self.rows.retain(|r| keep(r.id));
    }

    /// The ids of the active admins among them (see `Membership::is_active_admin`).
    pub fn active_admins(&self) -> impl Iterator<Item = MembershipId> + Clone + '_ {
        self.rows.iter().filter_map(|r| {
            let s = &self.shapes[r.shape as usize];
            Membership::counts_as_active_admin(r.user_id, &s.role_key, s.status, s.is_active)
                .then_some(r.id)
        })
    }

    /// Puts the memberships at `order[0]`, `order[1]`, … first, in that order, and drops the
    /// rest (`order` names each position at most once). A shape only a dropped membership had
    /// stays: only a removal naming a membership twice drops any.
    pub(crate) fn arrange(&mut self, order: &[u32]) {
        arrange(&mut self.rows, order);
    }
}

/// Whether a membership's fields other than its ids and timestamps are the ones every plain
/// membership of its role, status and activity has.
fn has_only_shared_fields(m: &Membership) -> bool {
    m.invite_email.is_none()
        && m.last_invited_at.is_none()
        && m.last_login_auth_method.is_none()
        && m.last_login_time.is_none()
        && m.project_favorites.is_none()
        && m.public_metadata.is_empty()
        && m.private_metadata.is_empty()
        && m.external_id.is_none()
        && m.directory_user_name.is_none()
}

fn unpack(shapes: &[Membership], r: &Packed) -> Membership {
    Membership {
        id: r.id,
        user_id: r.user_id,
        created_at: r.created_at,
        updated_at: r.updated_at,
        ..shapes[r.shape as usize].clone()
    }
}

impl PartialEq for Removed {
    /// The same memberships in the same order, however they are packed.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl From<Vec<Membership>> for Removed {
    fn from(ms: Vec<Membership>) -> Self {
        ms.into_iter().collect()
    }
}

impl FromIterator<Membership> for Removed {
    fn from_iter<I: IntoIterator<Item = Membership>>(ms: I) -> Self {
        let ms = ms.into_iter();
        let mut removed = Removed::with_capacity(ms.size_hint().0);
        for m in ms {
            removed.push(m);
        }
        removed
    }
}

impl IntoIterator for Removed {
    type Item = Membership;
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        IntoIter {
            rows: self.rows.into_iter(),
            shapes: self.shapes,
        }
    }
}

/// The memberships of a `Removed`, each whole (built as it is taken).
#[derive(Debug)]
pub struct IntoIter {
    rows: std::vec::IntoIter<Packed>,
    shapes: Vec<Membership>,
}

impl Iterator for IntoIter {
    type Item = Membership;
    fn next(&mut self) -> Option<Membership> {
        let r = self.rows.next()?;
        Some(unpack(&self.shapes, &r))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

impl ExactSizeIterator for IntoIter {}

/// Puts `items[order[0]], items[order[1]], …` first, in that order, and drops the rest, moving
/// items in place (`order` names each position at most once).
fn arrange<T>(items: &mut Vec<T>, order: &[u32]) {
    // `now_at[k]`: where the item first at position k is now; `first_at[i]`: which item (by
    // its first position) is now at position i.
    let mut now_at: Vec<u32> = (0..items.len() as u32).collect();
    let mut first_at = now_at.clone();
    for (i, &wanted) in order.iter().enumerate() {
        let from = now_at[wanted as usize];
        items.swap(i, from as usize);
        let displaced = first_at[i];
        first_at[from as usize] = displaced;
        now_at[displaced as usize] = from;
        first_at[i] = wanted;
        now_at[wanted as usize] = i as u32;
    }
    items.truncate(order.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ROLE_ADMIN;

    fn membership(role: RoleId, role_key: &str) -> Membership {
        let now = Timestamp::now();
        Membership {
            id: MembershipId::new(),
            organization_id: OrganizationId(uuid::Uuid::nil()),
            user_id: Some(UserId::new()),
            invite_email: None,
            role_id: role,
            role_key: role_key.into(),
            status: MembershipStatus::Accepted,
            is_active: true,
            last_invited_at: None,
            last_login_auth_method: None,
            last_login_time: None,
            project_favorites: None,
            public_metadata: Default::default(),
            private_metadata: Default::default(),
            created_at: now,
            updated_at: Timestamp(now.0 + 1),
            external_id: None,
            directory_user_name: None,
        }
    }

    #[test]
    fn packed_memberships_come_back_whole_and_in_order() {
        let (admin, member) = (RoleId::new(), RoleId::new());
        let mut ms: Vec<Membership> = (0..6)
            .map(|i| membership(if i % 3 == 0 { admin } else { member }, "member"))
            .collect();
        ms[1].public_metadata.insert("team".into(), "core".into());
        ms[2].invite_email = Some("ada@example.com".into());
        ms[2].user_id = None;
        ms[4].is_active = false;
        ms[5].last_login_time = Some(Timestamp(7));
        let removed = Removed::from(ms.clone());
        assert_eq!(removed.len(), 6);
        assert_eq!(removed.iter().collect::<Vec<_>>(), ms);
        assert_eq!(removed.clone().into_iter().collect::<Vec<_>>(), ms);
        assert_eq!(
            removed.ids().collect::<Vec<_>>(),
            ms.iter().map(|m| m.id).collect::<Vec<_>>()
        );
        let users: Vec<UserId> = ms.iter().filter_map(|m| m.user_id).collect();
        assert_eq!(removed.user_ids().collect::<Vec<_>>(), users);
        assert_eq!(removed.first(), ms.first().cloned());
    }

    #[test]
    fn plain_memberships_of_one_role_status_and_activity_share_one_shape() {
        let role = RoleId::new();
        let mut ms: Vec<Membership> = (0..100).map(|_| membership(role, "member")).collect();
        ms[50].is_active = false;
        ms[99].private_metadata.insert("k".into(), 1.into());
        let removed = Removed::from(ms);
        // Active plain, inactive plain, and the one with metadata of its own.
        assert_eq!(removed.shapes.len(), 3);
    }

    #[test]
    fn the_active_admins_are_those_membership_counts_as_such() {
        let role = RoleId::new();
        let mut ms: Vec<Membership> = (0..5).map(|_| membership(role, ROLE_ADMIN)).collect();
        ms[1].is_active = false;
        ms[2].status = MembershipStatus::Invited;
        ms[3].user_id = None;
        let expected: Vec<MembershipId> = ms
            .iter()
            .filter(|m| m.is_active_admin())
            .map(|m| m.id)
            .collect();
        assert_eq!(expected.len(), 2);
        let removed = Removed::from(ms);
        assert_eq!(removed.active_admins().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn removals_are_equal_when_their_memberships_are_however_they_were_packed() {
        let role = RoleId::new();
        let a = membership(role, "member");
        let mut b = membership(role, "member");
        b.public_metadata.insert("x".into(), 1.into());
        // Packed in another order, then arranged into the same one.
        let mut other = Removed::from(vec![b.clone(), a.clone()]);
        other.arrange(&[1, 0]);
        assert_eq!(Removed::from(vec![a.clone(), b.clone()]), other);
        assert_ne!(
            Removed::from(vec![a.clone(), b.clone()]),
            Removed::from(vec![b, a])
        );
    }

    #[test]
    fn arrange_puts_the_named_items_first_in_the_order_given_and_drops_the_rest() {
        // Every order of 3 of 6 items, and a few of all 6, against picking them one by one.
        let items: Vec<String> = (0..6).map(|i| format!("item {i}")).collect();
        let mut orders = Vec::new();
        for a in 0..6 {
            for b in (0..6).filter(|b| *b != a) {
                for c in (0..6).filter(|c| *c != a && *c != b) {
                    orders.push(vec![a, b, c]);
                }
            }
        }
        orders.extend([
            vec![],
            vec![5, 4, 3, 2, 1, 0],
            vec![1, 0, 3, 2, 5, 4],
            vec![2, 0, 1],
        ]);
        for order in orders {
            let mut arranged = items.clone();
            arrange(&mut arranged, &order);
            let picked: Vec<String> = order.iter().map(|i| items[*i as usize].clone()).collect();
            assert_eq!(arranged, picked, "order {order:?}");
        }
    }
}
