// The roster console: a client of the native API (/v1) with the user's token, kept in this
// tab's session storage (never in a URL or a cookie). Every value from the server is put on
// the page as text (textContent), never as HTML.
"use strict";

const TOKEN = "roster-token";
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const status = document.getElementById("status");
const signOut = document.getElementById("sign-out");

/** Builds an element: `el("a", {href: "#/"}, "text", child…)`. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else if (value !== false && value != null) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  // A page leaves out what it has not (`null`), which replaceChildren would write as text.
  main.replaceChildren(...nodes.filter((n) => n != null));
  main.focus();
}

function say(text) {
  status.textContent = text;
}

/** Calls the API; a refusal becomes an Error saying the server's message and request id. */
async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN);
      location.hash = "#/signin";
    }
    throw new Error(`${error.message || response.statusText} (request ${error.request_id || "?"})`);
  }
  return data;
}

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))));
}

function failure(error) {
  return el("p", { class: "error", role: "alert" }, error.message);
}

/** The receipt of a removal's dry run: what it will remove (`names`: a label by membership
 * id, as the page showed them). */
function receipt(answer, what, names) {
  const cascade = answer.cascade || { project_memberships: [], passwords: [], service_tokens: [] };
  return el("div", { class: "receipt", id: "receipt" },
    el("p", {}, el("strong", {}, `This will remove ${answer.removed.length} ${what}`),
      `, ${cascade.project_memberships.length} project memberships, ${cascade.passwords.length} passwords and ${cascade.service_tokens.length} service tokens.`),
    el("ul", {}, answer.removed.map((m) => el("li", {}, `${names.get(m.id) || m.invite_email || m.id} (${m.role})`))));
}

/** Shows `answer` (a dry run), then a confirm button that runs `remove`. */
function confirmRemoval(place, answer, what, names, remove) {
  const confirm = el("button", { class: "danger", type: "button", id: "confirm-removal" }, "Confirm removal");
  const cancel = el("button", { type: "button" }, "Cancel");
  const box = el("div", {}, receipt(answer, what, names), el("div", { class: "actions" }, confirm, cancel));
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    try {
      const done = await remove();
      say(`Removed ${done.removed.length} ${what}.`);
      route();
    } catch (e) {
      box.append(failure(e));
    }
  });
  cancel.addEventListener("click", () => box.remove());
  place.replaceChildren(box);
  confirm.focus();
}

function orgNav(org) {
  nav.replaceChildren(
    el("a", { href: `#/orgs/${org}/members` }, "Members"),
    el("a", { href: `#/orgs/${org}/former` }, "Former members"),
    el("a", { href: `#/orgs/${org}/audit` }, "Audit log"),
    el("a", { href: `#/orgs/${org}/webhooks` }, "Webhooks"));
}

async function signInPage() {
  nav.replaceChildren();
  signOut.hidden = true;
  const input = el("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true });
  const problem = el("div");
  const form = el("form", {},
    el("h1", {}, "Sign in"),
    el("label", { for: "token" }, "Token", input),
    el("p", { class: "muted" }, "A roster token (rst_…). It stays in this tab only."),
    el("button", { class: "primary", type: "submit" }, "Sign in"),
    problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN, input.value.trim());
    try {
      await api("GET", "/v1/organizations?limit=1");
      location.hash = "#/orgs";
    } catch (e) {
      sessionStorage.removeItem(TOKEN);
      problem.replaceChildren(failure(e));
    }
  });
  show(form);
  input.focus();
}

async function orgsPage() {
  nav.replaceChildren();
  const list = await api("GET", "/v1/organizations?limit=200");
  return [el("h1", {}, "Organizations"),
    table(["Name", "Slug", "Id"], list.data.map((o) => [
      el("a", { href: `#/orgs/${o.id}/members` }, o.name), o.slug, el("code", {}, o.id)]))];
}

async function membersPage(org, params) {
  orgNav(org);
  const q = params.get("q") || "";
  const role = params.get("role") || "";
  const query = new URLSearchParams({ limit: "50" });
  if (q) query.set("q", q);
  if (role) query.set("role", role);
  if (params.get("cursor")) query.set("cursor", params.get("cursor"));
  const [list, roles] = await Promise.all([
    api("GET", `/v1/organizations/${org}/memberships?${query}`),
    api("GET", `/v1/organizations/${org}/roles`),
  ]);
  const search = el("input", { id: "search", name: "q", type: "search", value: q });
  const roleSelect = el("select", { id: "role", name: "role" },
    el("option", { value: "" }, "Any role"),
    roles.map((r) => el("option", { value: r.key, selected: r.key === role }, r.key)));
  const filters = el("form", { class: "filters", role: "search" },
    el("label", { for: "search" }, "Email or name", search),
    el("label", { for: "role" }, "Role", roleSelect),
    el("button", { type: "submit" }, "Search"));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (search.value) next.set("q", search.value);
    if (roleSelect.value) next.set("role", roleSelect.value);
    location.hash = `#/orgs/${org}/members?${next}`;
  });
  const picked = new Set();
  const rows = list.data.map((m) => [
    el("input", { type: "checkbox", "aria-label": `Select ${m.email || m.id}`,
      onchange: (e) => (e.target.checked ? picked.add(m.id) : picked.delete(m.id)) }),
    el("a", { href: `#/orgs/${org}/members/${m.id}` }, m.email || m.invite_email || m.id),
    [m.first_name, m.last_name].filter(Boolean).join(" "),
    m.role, m.is_active ? "yes" : "no"]);
  const place = el("div");
  const removeSelected = el("button", { class: "danger", type: "button", id: "remove-selected" }, "Remove selected…");
  removeSelected.addEventListener("click", async () => {
    if (!picked.size) return say("Select members first.");
    const body = { membership_ids: [...picked] };
    try {
      const dry = await api("POST", `/v1/organizations/${org}/memberships/bulk-remove?dry_run=true`, body);
      const names = new Map(list.data.map((m) => [m.id, m.email || m.id]));
      confirmRemoval(place, dry, "members", names, () => api("POST", `/v1/organizations/${org}/memberships/bulk-remove`, body));
    } catch (e) {
      place.replaceChildren(failure(e));
    }
  });
  const next = new URLSearchParams(params);
  if (list.next_cursor) next.set("cursor", list.next_cursor);
  return [el("h1", {}, "Members"), filters,
    table(["", "Member", "Name", "Role", "Active"], rows),
    el("div", { class: "actions" }, removeSelected,
      list.next_cursor ? el("a", { href: `#/orgs/${org}/members?${next}`, id: "next-page" }, "Next page") : null),
    place];
}

async function memberPage(org, id) {
  orgNav(org);
  const membership = await api("GET", `/v1/organizations/${org}/memberships/${id}`);
  // The list's form of a member carries the user's email and name; the membership's does not.
  const found = membership.user_id
    ? await api("GET", `/v1/organizations/${org}/memberships?user_id=${membership.user_id}`)
    : { data: [] };
  const m = found.data[0] || membership;
  const [passwords, tokens, projects] = await Promise.all([
    api("GET", `/v1/organizations/${org}/passwords?limit=500`),
    api("GET", `/v1/organizations/${org}/service-tokens?limit=500`),
    api("GET", `/v1/organizations/${org}/projects?limit=100`),
  ]);
  const inProjects = [];
  for (const p of projects.data) {
    const members = await api("GET", `/v1/projects/${p.id}/memberships?limit=500`);
    for (const pm of members.data) if (pm.user_id === m.user_id) inProjects.push([p.name, pm.role]);
  }
  const place = el("div");
  const remove = el("button", { class: "danger", type: "button", id: "remove-member" }, "Remove…");
  remove.addEventListener("click", async () => {
    const path = `/v1/organizations/${org}/memberships/${id}`;
    try {
      const dry = await api("DELETE", `${path}?dry_run=true`);
      confirmRemoval(place, dry, "member", new Map([[m.id, m.email || m.id]]), async () => {
        const done = await api("DELETE", path);
        location.hash = `#/orgs/${org}/members`;
        return done;
      });
    } catch (e) {
      place.replaceChildren(failure(e));
    }
  });
  return [el("h1", {}, m.email || m.invite_email || m.id),
    table(["Membership", "Role", "Active", "Since"], [[el("code", {}, m.id), m.role, m.is_active ? "yes" : "no", m.created_at]]),
    el("h2", {}, "Project memberships"),
    inProjects.length ? table(["Project", "Role"], inProjects) : el("p", { class: "muted" }, "None."),
    el("h2", {}, "Credentials"),
    table(["Kind", "Name", "Id"], [
      ...passwords.data.filter((p) => p.user_id === m.user_id).map((p) => ["password", p.name, p.id]),
      ...tokens.data.filter((t) => t.created_by === m.user_id).map((t) => ["service token", t.name, t.id])]),
    el("div", { class: "actions" }, remove), place];
}

async function formerPage(org) {
  orgNav(org);
  const list = await api("GET", `/v1/organizations/${org}/former-members?limit=200`);
  const place = el("div");
  return [el("h1", {}, "Former members"),
    table(["Member", "Role", "Removed", ""], list.data.map((f) => {
      const back = el("button", { type: "button" }, "Reinstate");
      back.addEventListener("click", async () => {
        try {
          await api("POST", `/v1/organizations/${org}/former-members/${f.membership.id}/reinstate`);
          say("Reinstated.");
          route();
        } catch (e) {
          place.replaceChildren(failure(e));
        }
      });
      const m = f.membership;
      return [m.invite_email || m.user_id || m.id, m.role, f.removed_at, back];
    })), place];
}

async function auditPage(org, params) {
  orgNav(org);
  const query = new URLSearchParams({ limit: "50", order: "desc" });
  if (params.get("cursor")) query.set("cursor", params.get("cursor"));
  const list = await api("GET", `/v1/organizations/${org}/audit-events?${query}`);
  return [el("h1", {}, "Audit log"),
    table(["Time", "Action", "Actor", "Target"], list.data.map((e) => [
      e.created_at, e.action, `${e.actor_kind} ${e.actor_id}`, `${e.target_kind} ${e.target_id}`])),
    list.next_cursor ? el("a", { href: `#/orgs/${org}/audit?cursor=${list.next_cursor}` }, "Older") : null];
}

async function webhooksPage(org) {
  orgNav(org);
  const list = await api("GET", `/v1/organizations/${org}/webhook-endpoints?limit=100`);
  const deliveries = el("div");
  return [el("h1", {}, "Webhook endpoints"),
    table(["URL", "Format", "Disabled", ""], list.data.map((w) => {
      const open = el("button", { type: "button" }, "Deliveries");
      open.addEventListener("click", async () => {
        const d = await api("GET", `/v1/organizations/${org}/webhook-endpoints/${w.id}/deliveries?limit=50&order=desc`);
        deliveries.replaceChildren(el("h2", {}, `Deliveries to ${w.url}`),
          table(["Event", "State", "Status", "At"], d.data.map((a) => [a.event_id, a.delivery_state, a.status_code ?? a.error ?? "", a.created_at])));
      });
      return [w.url, w.format, w.disabled ? "yes" : "no", open];
    })), deliveries];
}

/** Counts the routes taken: a page whose reads finish after the next route began is not shown
 * over that route's page. */
let routes = 0;

/** Shows the page the location's hash names (each page returns what it shows). */
async function route() {
  const mine = ++routes;
  const [path, search] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(search || "");
  const parts = (path || "").split("/").filter(Boolean);
  if (!sessionStorage.getItem(TOKEN) || parts[0] === "signin") return signInPage();
  signOut.hidden = false;
  say("");
  let nodes;
  try {
    const [, org, page, id] = parts;
    const inOrg = parts[0] === "orgs" && parts.length >= 3;
    if (inOrg && page === "members" && id) nodes = await memberPage(org, id);
    else if (inOrg && page === "members") nodes = await membersPage(org, params);
    else if (inOrg && page === "former") nodes = await formerPage(org);
    else if (inOrg && page === "audit") nodes = await auditPage(org, params);
    else if (inOrg && page === "webhooks") nodes = await webhooksPage(org);
    else nodes = await orgsPage();
  } catch (e) {
    nodes = [failure(e)];
  }
  if (mine === routes) show(...nodes);
}

signOut.addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN);
  location.hash = "#/signin";
});
window.addEventListener("hashchange", route);
route();
