-- A page of a parent's rows is read in id order from a `(parent, id)` index, so that it costs
-- the same at any depth and in any size of parent (`parent_page_condition` in roster-store-sql).
-- Memberships, identities and audit events had theirs from the start; these lists did not, and
-- a page found its parent's rows through another index and sorted them all, or walked the
-- primary key filtering by parent. Each index is one more entry to write and delete per row:
-- the cost is measured against the bulk removals in docs/benchmarks.md (twelfth session).

CREATE INDEX projects_org_id ON projects (org_id, id);
CREATE INDEX passwords_org_id ON passwords (org_id, id);
CREATE INDEX project_memberships_project_id ON project_memberships (project_id, id);
CREATE INDEX identity_project_memberships_project_id ON identity_project_memberships (project_id, id);
