// Drives roster's Clerk dialect with Clerk's official Node SDK, unchanged but for `apiUrl`.
// Run by crates/cli/tests/api/clerk.rs with CLERK_API_URL and CLERK_SECRET_KEY set; prints one
// line per step and exits non-zero if any failed.
import assert from "node:assert/strict";
import { createClerkClient } from "@clerk/backend";

const apiUrl = process.env.CLERK_API_URL;
const clerk = createClerkClient({ secretKey: process.env.CLERK_SECRET_KEY, apiUrl });
let passed = 0;
let failed = 0;

async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n${e.stack}\n${JSON.stringify(e.errors ?? null)}`);
  }
}

/** Asserts that `promise` rejects with a Clerk API error of this status and code. */
async function refused(promise, status, code, paramName) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `status of ${JSON.stringify(e.errors)}`);
    assert.equal(e.errors?.[0]?.code, code);
    if (paramName) assert.equal(e.errors[0].meta?.paramName, paramName);
    assert.ok(e.clerkTraceId, "a trace id");
    return e;
  }
  assert.fail(`expected ${status} ${code}`);
}

const ctx = {};

await step("users are created, read and listed", async () => {
  ctx.ada = await clerk.users.createUser({ emailAddress: ["ada@example.com"], firstName: "Ada", lastName: "Lovelace", skipPasswordRequirement: true });
  assert.match(ctx.ada.id, /^user_/);
  assert.equal(ctx.ada.firstName, "Ada");
  assert.equal(ctx.ada.primaryEmailAddress?.emailAddress, "ada@example.com");
  assert.deepEqual(ctx.ada.emailAddresses[0].linkedTo, []);
  ctx.grace = await clerk.users.createUser({ emailAddress: ["grace@example.com"], firstName: "Grace", lastName: "Hopper" });
  ctx.alan = await clerk.users.createUser({ emailAddress: ["alan@example.com"], firstName: "Alan" });
  ctx.edsger = await clerk.users.createUser({ emailAddress: ["edsger@example.com"] });
  const got = await clerk.users.getUser(ctx.grace.id);
  assert.equal(got.lastName, "Hopper");
  assert.equal(typeof got.createdAt, "number");
  const list = await clerk.users.getUserList({ emailAddress: ["ada@example.com", "grace@example.com"] });
  assert.equal(list.totalCount, 2);
  assert.deepEqual(list.data.map((u) => u.id).sort(), [ctx.ada.id, ctx.grace.id].sort());
  const dup = await refused(clerk.users.createUser({ emailAddress: ["ada@example.com"] }), 422, "form_identifier_exists", "email_address");
  assert.ok(dup.errors[0].longMessage);
});

await step("an organization is created with its creator as admin", async () => {
  ctx.org = await clerk.organizations.createOrganization({
    name: "Analytical Engines",
    createdBy: ctx.ada.id,
    maxAllowedMemberships: 3,
    publicMetadata: { tier: "gold", nested: { a: 1, b: 2 } },
  });
  assert.match(ctx.org.id, /^org_/);
  assert.equal(ctx.org.slug, "analytical-engines");
  assert.equal(ctx.org.createdBy, ctx.ada.id);
  assert.equal(ctx.org.maxAllowedMemberships, 3);
  const members = await clerk.organizations.getOrganizationMembershipList({ organizationId: ctx.org.id });
  assert.equal(members.totalCount, 1);
  assert.equal(members.data[0].role, "org:admin");
  assert.equal(members.data[0].publicUserData.userId, ctx.ada.id);
  assert.ok(members.data[0].permissions.includes("org:sys_memberships:manage"));
});

await step("organizations are read by id or slug, listed, updated", async () => {
  const byId = await clerk.organizations.getOrganization({ organizationId: ctx.org.id, includeMembersCount: true });
  assert.equal(byId.membersCount, 1);
  const bySlug = await clerk.organizations.getOrganization({ slug: "analytical-engines" });
  assert.equal(bySlug.id, ctx.org.id);
  await clerk.organizations.createOrganization({ name: "Difference Engines" });
  const list = await clerk.organizations.getOrganizationList({ query: "engines", limit: 1 });
  assert.equal(list.totalCount, 2);
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].name, "Difference Engines", "newest first by default");
  const oldest = await clerk.organizations.getOrganizationList({ query: "engines", orderBy: "created_at", limit: 1 });
  assert.equal(oldest.data[0].id, ctx.org.id);
  const renamed = await clerk.organizations.updateOrganization(ctx.org.id, { name: "Engines", adminDeleteEnabled: false });
  assert.equal(renamed.name, "Engines");
  assert.equal(renamed.adminDeleteEnabled, false);
});

await step("organization metadata is deep-merged (null removes a key) and replaced", async () => {
  const merged = await clerk.organizations.updateOrganizationMetadata(ctx.org.id, {
    publicMetadata: { tier: null, nested: { b: null, c: 3 } },
    privateMetadata: { secret: "x" },
  });
  assert.deepEqual(merged.publicMetadata, { nested: { a: 1, c: 3 } });
  assert.deepEqual(merged.privateMetadata, { secret: "x" });
});

await step("memberships are created, listed with filters, updated", async () => {
  const m = await clerk.organizations.createOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.grace.id, role: "org:member" });
  assert.match(m.id, /^orgmem_/);
  assert.equal(m.role, "org:member");
  assert.equal(m.organization.id, ctx.org.id);
  assert.equal(m.publicUserData.identifier, "grace@example.com");
  assert.deepEqual(m.permissions, ["org:sys_memberships:read"]);
  await refused(
    clerk.organizations.createOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.grace.id, role: "org:member" }),
    400,
    "already_a_member_in_organization",
  );
  const page = await clerk.organizations.getOrganizationMembershipList({ organizationId: ctx.org.id, limit: 1 });
  assert.equal(page.totalCount, 2);
  assert.equal(page.data.length, 1);
  const admins = await clerk.organizations.getOrganizationMembershipList({ organizationId: ctx.org.id, role: ["org:admin"] });
  assert.deepEqual(admins.data.map((x) => x.publicUserData.userId), [ctx.ada.id]);
  const byUser = await clerk.organizations.getOrganizationMembershipList({ organizationId: ctx.org.id, userId: [ctx.grace.id] });
  assert.equal(byUser.totalCount, 1);
  const promoted = await clerk.organizations.updateOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.grace.id, role: "org:admin" });
  assert.equal(promoted.role, "org:admin");
  const tagged = await clerk.organizations.updateOrganizationMembershipMetadata({
    organizationId: ctx.org.id,
    userId: ctx.grace.id,
    publicMetadata: { team: "compilers" },
  });
  assert.deepEqual(tagged.publicMetadata, { team: "compilers" });
});

await step("the membership quota is enforced", async () => {
  await clerk.organizations.createOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.alan.id, role: "org:member" });
  await refused(
    clerk.organizations.createOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.edsger.id, role: "org:member" }),
    403,
    "organization_membership_quota_exceeded",
  );
});

await step("deleteOrganizationMembership returns the removed membership with the count after removal", async () => {
  const removed = await clerk.organizations.deleteOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.alan.id });
  assert.match(removed.id, /^orgmem_/);
  assert.equal(removed.role, "org:member");
  assert.equal(removed.publicUserData.userId, ctx.alan.id);
  assert.equal(removed.publicUserData.firstName, "Alan");
  assert.equal(removed.organization.id, ctx.org.id);
  assert.equal(removed.organization.membersCount, 2);
  const left = await clerk.organizations.getOrganizationMembershipList({ organizationId: ctx.org.id });
  assert.equal(left.totalCount, 2);
  await refused(clerk.organizations.deleteOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.alan.id }), 404, "resource_not_found");
});

await step("the last admin cannot be removed", async () => {
  await clerk.organizations.deleteOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.grace.id });
  await refused(
    clerk.organizations.deleteOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.ada.id }),
    400,
    "organization_minimum_permissions_needed",
  );
  await refused(
    clerk.organizations.updateOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.ada.id, role: "org:member" }),
    400,
    "organization_minimum_permissions_needed",
  );
  const still = await clerk.organizations.getOrganizationMembershipList({ organizationId: ctx.org.id });
  assert.deepEqual(still.data.map((x) => x.role), ["org:admin"]);
});

await step("missing things are 404 and bad parameters 422 naming the parameter", async () => {
  await refused(clerk.organizations.getOrganization({ organizationId: "org_0000000000000000000000" }), 404, "resource_not_found");
  await refused(clerk.organizations.getOrganization({ slug: "no-such-org" }), 404, "resource_not_found");
  await refused(clerk.users.getUser("user_2VdArFEn2gfBqt8sRePmsVPyDHv"), 404, "resource_not_found");
  await refused(clerk.organizations.getOrganizationList({ limit: 1000 }), 422, "form_param_value_invalid", "limit");
  await refused(clerk.organizations.createOrganization({ slug: "nameless" }), 422, "form_param_missing", "name");
  await refused(
    clerk.organizations.createOrganizationMembership({ organizationId: ctx.org.id, userId: ctx.edsger.id, role: "admin" }),
    422,
    "form_param_value_invalid",
    "role",
  );
  await refused(clerk.organizations.updateOrganization(ctx.org.id, { maxAllowedMemberships: "many" }), 422, "form_param_value_invalid", "max_allowed_memberships");
});

await step("an unknown secret key is 401 clerk_key_invalid", async () => {
  const stranger = createClerkClient({ secretKey: "sk_test_not_a_roster_key", apiUrl });
  await refused(stranger.organizations.getOrganizationList(), 401, "clerk_key_invalid");
  const forged = createClerkClient({ secretKey: "rst_0190b2f4d5c67a8b9c0d1e2f3a4b5c6d_" + "0".repeat(64), apiUrl });
  await refused(forged.organizations.getOrganizationList(), 401, "clerk_key_invalid");
});

await step("organizations and users are deleted", async () => {
  const gone = await clerk.organizations.deleteOrganization(ctx.org.id);
  assert.equal(gone.deleted, true);
  assert.equal(gone.id, ctx.org.id);
  await refused(clerk.organizations.getOrganization({ organizationId: ctx.org.id }), 404, "resource_not_found");
  const user = await clerk.users.deleteUser(ctx.edsger.id);
  assert.equal(user.deleted, true);
  await refused(clerk.users.getUser(ctx.edsger.id), 404, "resource_not_found");
});

console.log(`clerk sdk: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
