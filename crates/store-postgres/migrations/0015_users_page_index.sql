-- A page of an organization's users' memberships (Clerk's, SCIM's and PlanetScale's lists
-- leave out invitations by email) walks an index of those alone. Through `(org_id, id)` it
-- read and skipped every invitation in its way: Clerk's pages come newest first, and the
-- invitations are usually the newest, so in the 30-minute soak, whose organization gathers
-- 27,000 pending ones, a page of 20 members cost more with each (p99 4 -> 14.6 ms on SQLite).
-- One entry more to write and delete per user's membership (docs/benchmarks.md).

CREATE INDEX memberships_users_org_id ON memberships (org_id, id) WHERE user_id IS NOT NULL;
