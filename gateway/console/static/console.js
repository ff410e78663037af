// Portcullis compliance console: one module over the admin API, no dependencies.
//
// Security boundaries kept here:
//  - server data reaches the page through textContent only (el() below), never as markup;
//  - the credential lives in sessionStorage only, is sent as a bearer header to same-origin
//    absolute paths, and is never written into the page or the console;
//  - a freshly issued key lives in the #new-key element only, until dismissed.

const CREDENTIAL = "portcullis.console.credential";

// The documented sector list (gateway/principal.py SECTORS, docs/principals.md).
const SECTORS = [
  "government",
  "critical_infrastructure",
  "education",
  "state_owned_enterprise",
  "government_foundation",
  "defence",
  "defence_contractor",
  "contractor",
  "legislature",
  "healthcare",
  "financial",
  "private",
  "individual",
];

const AUDIT_FILTERS = ["since", "until", "jurisdiction", "user", "team", "decision", "rule", "backend", "request_id", "error_code", "kind"];
const AUDIT_PAGE = 50;

// Which `can` flag each view needs (null: every signed-in credential).
const VIEWS = {
  overview: { needs: null, show: showOverview },
  audit: { needs: "audit", show: showAudit },
  usage: { needs: "audit", show: () => showReport("usage") },
  transfers: { needs: "audit", show: () => showReport("transfers") },
  denials: { needs: "audit", show: () => showReport("denials") },
  subjects: { needs: "audit", show: showSubjects },
  keys: { needs: "keys", show: showKeys },
  mykeys: { needs: "my_keys", show: showMyKeys },
  policy: { needs: "policy", show: showPolicy },
  config: { needs: "config", show: showConfig },
};

const state = {
  whoami: null,
  generation: 0, // bumped at sign-out: answers to older requests are dropped
  view: null,
  auditEntries: new Map(), // seq -> entry of the rows on screen
  auditNext: null,
  auditLoaded: false,
  reportsLoaded: new Set(), // the report views (usage, transfers, denials) shown since sign-in
  modelsLoaded: false,
  contentRequest: null, // the request id whose captured content the detail offers to read
  decidedUnder: null, // {config, bundle}: the ids of what decided the entry shown
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// DOM building (textContent only)

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const show = (node, visible) => { node.hidden = !visible; };
// replaceChildren() would write a null child as the text "null"; this drops it as el() does
const fill = (node, ...children) => { node.replaceChildren(); return append(node, children); };
const text = (value) => (value === null || value === undefined ? "" : String(value));
const list = (values) => (Array.isArray(values) ? values.join(", ") : "");

// ---------------------------------------------------------------------------------------------
// Status region

function say(message, kind = "info") {
  const status = $("status");
  status.textContent = message;
  status.className = `status ${kind}`;
}

function report(err) {
  if (err instanceof StaleAnswer) return;
  if (err instanceof ApiError && err.status === 401) {
    signOut("The credential was refused.");
  } else if (err instanceof ApiError) {
    say(err.message, "error");
  } else if (err instanceof InputError) {
    say(err.message, "error");
  } else if (err instanceof NetworkError) {
    say("The gateway did not answer.", "error");
  } else {
    say(`The console failed: ${err && err.message ? err.message : "unknown error"}.`, "error");
  }
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, message, type = null, code = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.code = code;
  }
}

class NetworkError extends Error {}
class StaleAnswer extends Error {}
class InputError extends Error {} // a form value the console itself refuses, before any call

function credential() {
  return sessionStorage.getItem(CREDENTIAL);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function errorFrom(response) {
  let message = `The gateway answered HTTP ${response.status}.`;
  let type = null;
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error.message === "string") {
      message = body.error.message;
      type = body.error.type || null;
      code = body.error.code || null;
    }
  } catch {
    // not JSON: keep the generic message, never the raw body
  }
  return new ApiError(response.status, message, type, code);
}

// fetch with the bearer header; `raw`: hand back the Response (for downloads), `accept`: other
// statuses that carry a normal JSON answer (readiness answers 503 when not ready).
async function api(path, { method = "GET", body, raw = false, auth = true, accept = [] } = {}) {
  const generation = state.generation;
  const headers = { Accept: raw ? "*/*" : "application/json" };
  if (auth) {
    const cred = credential();
    if (!cred) throw new ApiError(401, "The credential was refused.");
    headers.Authorization = `Bearer ${cred}`;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
  } catch {
    if (generation !== state.generation) throw new StaleAnswer();
    throw new NetworkError();
  }
  if (generation !== state.generation) throw new StaleAnswer();
  if (!response.ok && !accept.includes(response.status)) throw await errorFrom(response);
  if (raw) return response;
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, "The gateway's answer was not JSON.");
  }
}

// ---------------------------------------------------------------------------------------------
// Form helpers

function formValues(form) {
  const out = {};
  for (const [key, value] of new FormData(form)) {
    if (typeof value === "string" && value.trim() !== "") out[key] = value.trim();
  }
  return out;
}

function names(textValue) {
  return (textValue || "").split(",").map((s) => s.trim()).filter(Boolean);
}

// ISO 8601 without offset (the server reads it as UTC).
function isoUtc(date) {
  return date.toISOString().slice(0, 19);
}

function stamp(date = new Date()) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

function fillSectors() {
  for (const select of document.querySelectorAll("select.sector-select")) {
    select.replaceChildren(
      el("option", { value: "", text: "choose a sector" }),
      ...SECTORS.map((s) => el("option", { value: s, text: s })),
    );
  }
}

function busy(button, on) {
  if (button) button.disabled = on;
}

// ---------------------------------------------------------------------------------------------
// Sign-in, sign-out, navigation

async function signIn(event) {
  event.preventDefault();
  const input = $("credential");
  const value = input.value.trim();
  input.value = "";
  if (!value) {
    say("Enter an admin token or an API key.", "error");
    return;
  }
  sessionStorage.setItem(CREDENTIAL, value);
  await start();
}

async function start() {
  say("Checking the credential…");
  let who;
  try {
    who = await api("/admin/whoami");
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401) {
      forget();
      showSignIn();
      say(err.message, "error");
    } else {
      report(err);
      if (err instanceof NetworkError) showSignIn();
    }
    return;
  }
  state.whoami = who;
  $("whoami").textContent = describe(who);
  show($("session"), true);
  show($("nav"), true);
  show($("signin-screen"), false);
  show($("console"), true);
  for (const button of document.querySelectorAll("#nav button[data-view]")) {
    show(button, allowed(button.dataset.view));
  }
  say("");
  // someone who may only make keys of their own lands on them
  const onlyMine = can("my_keys") && !["audit", "keys", "config", "policy"].some(can);
  await activate(onlyMine ? "mykeys" : "overview");
}

function describe(who) {
  const details = [list(who.roles) || "no roles"];
  if (who.jurisdiction) details.push(who.jurisdiction);
  return `${text(who.actor)} (${details.join("; ")})`;
}

function can(flag) {
  return Boolean(state.whoami && state.whoami.can && state.whoami.can[flag]);
}

function allowed(view) {
  const spec = VIEWS[view];
  if (!spec || !state.whoami) return false;
  return spec.needs === null || can(spec.needs);
}

function forget() {
  sessionStorage.removeItem(CREDENTIAL);
}

// A session from single sign-on is ended at the gateway too (any replica refuses it from then
// on); a pasted key or token is only forgotten by the tab.
// With admin.sso.sign_out_at_provider, the answer names the provider's sign-out page: the
// browser goes there next, and the provider sends it back to the console.
async function endSession() {
  const cred = credential();
  if (!cred || !cred.startsWith("pcc_")) return null;
  try {
    const answer = await api("/admin/console/sign-out", { method: "POST" });
    return typeof answer.provider === "string" && /^https?:\/\//.test(answer.provider)
      ? answer.provider
      : null;
  } catch {
    return null; // expired or already ended: forgetting it is all that is left
  }
}

function signOut(message = "Signed out.") {
  forget();
  state.generation += 1;
  state.whoami = null;
  state.view = null;
  resetViews();
  showSignIn();
  say(message, message === "Signed out." ? "info" : "error");
}

function showSignIn() {
  show($("session"), false);
  show($("nav"), false);
  show($("console"), false);
  show($("signin-screen"), true);
  $("whoami").textContent = "";
  $("credential").focus();
}

function resetViews() {
  dismissKey();
  state.auditEntries.clear();
  state.auditNext = null;
  state.auditLoaded = false;
  state.reportsLoaded.clear();
  state.modelsLoaded = false;
  for (const id of ["readiness", "readiness-summary", "verify-result", "overview-usage", "policy-result", "policy-models",
    "config-hash", "config-revision", "audit-detail"]) {
    $(id).replaceChildren();
  }
  $("mykeys-count").textContent = "";
  $("budgets-period").textContent = "";
  for (const id of ["audit-table", "usage-table", "transfers-table", "denials-table", "subjects-table", "keys-table", "budgets-table", "mykeys-table", "config-table"]) {
    $(id).tBodies[0].replaceChildren();
  }
  for (const name of REPORT_NAMES) $(`${name}-table`).tHead.replaceChildren();
  resetAuditDetail();
  show($("audit-more"), false);
  show($("audit-empty"), false);
  $("subjects-summary").textContent = "";
  for (const form of ["audit-filter", "usage-form", "transfers-form", "denials-form", "subjects-form", "key-create", "mykey-create", "user-keys-revoke", "policy-form"]) $(form).reset();
  for (const section of document.querySelectorAll("section.view")) show(section, false);
}

async function activate(view) {
  if (!allowed(view)) return;
  state.view = view;
  say("");
  for (const section of document.querySelectorAll("section.view")) {
    show(section, section.id === `view-${view}`);
  }
  for (const button of document.querySelectorAll("#nav button[data-view]")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  try {
    await VIEWS[view].show();
  } catch (err) {
    report(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Overview

async function showOverview() {
  const canAudit = can("audit");
  show($("overview-audit"), canAudit);
  show($("overview-usage-panel"), canAudit);
  const work = [loadReadiness()];
  if (canAudit) work.push(loadOverviewUsage());
  if (can("policy")) work.push(loadWeakened()); // an administrator or an auditor
  const results = await Promise.allSettled(work);
  for (const r of results) if (r.status === "rejected") report(r.reason);
}

async function loadReadiness() {
  const answer = await api("/readyz", { auth: false, accept: [503] });
  const ready = answer.status === "ready";
  const summary = $("readiness-summary");
  summary.textContent = ready ? "Ready." : "NOT READY.";
  summary.className = ready ? "ok" : "bad";
  $("readiness").replaceChildren(...Object.entries(answer.checks || {}).map(
    ([name, ok]) => el("li", { className: ok ? "ok" : "bad", text: `${name}: ${ok ? "ok" : "FAILING"}` }),
  ));
}

// Settings in force that weaken enforcement (PII reading off, shadow mode, …): shown only when
// there are some, each with what it means.
async function loadWeakened() {
  const answer = await api("/admin/config/weakened");
  const rows = answer.data || [];
  show($("overview-weakened-panel"), rows.length > 0);
  $("overview-weakened").replaceChildren(...rows.map((w) => el("li", { className: "bad" },
    el("code", { text: text(w.setting) }), document.createTextNode(`: ${text(w.means)}`))));
}

async function loadOverviewUsage() {
  const since = isoUtc(new Date(Date.now() - 24 * 3600 * 1000));
  const answer = await api(`/admin/audit/usage${query({ by: "decision", since })}`);
  const t = answer.totals || {};
  const rows = [
    ["requests", t.requests],
    ["denied", t.denied],
    ["failed", t.failed],
    ["tokens", t.total_tokens],
  ];
  $("overview-usage").replaceChildren(
    ...rows.flatMap(([label, value]) => [el("dt", { text: label }), el("dd", { text: text(value ?? 0) })]),
  );
}

async function verify() {
  const button = $("verify");
  const target = $("verify-result");
  busy(button, true);
  target.replaceChildren(el("p", { text: "Verifying…" }));
  try {
    const v = await api("/admin/audit/verify");
    const counts = `${v.entries} entries, ${v.checkpoints} checkpoints (last at ${v.last_checkpoint}), `
      + `${v.unanchored} unanchored, ${v.purged} purged, ${v.proofs_checked} proofs checked.`;
    if (v.ok) {
      target.replaceChildren(el("p", { className: "ok" }, "Audit trail ", el("strong", { text: "intact" }), ` — ${counts}`));
    } else {
      target.replaceChildren(
        el("p", { className: "bad" }, el("strong", { text: "PROBLEMS" }), ` — ${counts}`),
        el("ul", { className: "problems" }, (v.problems || []).map((p) => el("li", { text: p }))),
      );
    }
  } catch (err) {
    target.replaceChildren();
    report(err);
  } finally {
    busy(button, false);
  }
}

// ---------------------------------------------------------------------------------------------
// Audit trail

async function showAudit() {
  if (!state.auditLoaded) await loadAudit(false);
}

function auditFilter() {
  const values = formValues($("audit-filter"));
  const out = {};
  for (const name of AUDIT_FILTERS) if (values[name]) out[name] = values[name];
  return out;
}

async function loadAudit(more) {
  const tbody = $("audit-table").tBodies[0];
  const params = { limit: AUDIT_PAGE, ...auditFilter() };
  if (more && state.auditNext !== null) params.before = state.auditNext;
  busy($("audit-more"), true);
  try {
    const page = await api(`/admin/audit/entries${query(params)}`);
    if (!more) {
      tbody.replaceChildren();
      state.auditEntries.clear();
    }
    for (const entry of page.data || []) {
      state.auditEntries.set(String(entry.seq), entry);
      tbody.append(auditRow(entry));
    }
    state.auditNext = page.next_before ?? null;
    state.auditLoaded = true;
    show($("audit-more"), state.auditNext !== null);
    show($("audit-empty"), state.auditEntries.size === 0);
  } finally {
    busy($("audit-more"), false);
  }
}

function auditRow(entry) {
  const cells = [
    entry.seq, entry.ts, entry.kind, entry.user, entry.jurisdiction, entry.backend,
    entry.decision, list(entry.rules), entry.request_id,
  ];
  const mono = new Set([0, 1, 8]);
  return el(
    "tr",
    {
      className: `audit-row${entry.purged ? " purged" : ""}${entry.decision === "deny" ? " deny" : ""}`,
      tabindex: "0",
      dataset: { seq: String(entry.seq) },
      "aria-label": `Entry ${entry.seq}, ${text(entry.kind)}`,
    },
    cells.map((value, i) => el("td", { className: mono.has(i) ? "mono" : null, title: text(value) || null, text: text(value) })),
  );
}

function selectAuditRow(row) {
  const entry = state.auditEntries.get(row.dataset.seq);
  if (!entry) return;
  for (const r of row.parentNode.querySelectorAll("tr.selected")) r.classList.remove("selected");
  row.classList.add("selected");
  $("audit-detail-head").textContent = `seq ${entry.seq} · leaf hash ${text(entry.leaf_hash)}`;
  $("audit-detail").textContent = entry.entry === null || entry.entry === undefined
    ? "purged"
    : JSON.stringify(entry.entry, null, 2);
  const captured = Boolean(entry.entry && entry.entry.content_captured === true && entry.request_id);
  state.contentRequest = captured ? entry.request_id : null;
  show($("audit-content"), captured);
  show($("audit-content-note"), captured);
  clearContent();
  // what decided it: the configuration document and the policy bundle kept by their ids
  state.decidedUnder = entry.entry
    ? { config: entry.entry.config_hash || null, bundle: entry.entry.bundle_revision || null }
    : { config: null, bundle: null };
  show($("audit-configuration"), Boolean(state.decidedUnder.config));
  show($("audit-bundle"), Boolean(state.decidedUnder.bundle));
}

function resetAuditDetail() {
  $("audit-detail").textContent = "";
  $("audit-detail-head").textContent = "Select a row to see its entry.";
  state.contentRequest = null;
  clearContent();
  show($("audit-content"), false);
  show($("audit-content-note"), false);
  show($("audit-configuration"), false);
  show($("audit-bundle"), false);
  state.decidedUnder = null;
}

function clearContent() {
  $("audit-content-body").textContent = "";
  show($("audit-content-body"), false);
  $("audit-configuration-body").textContent = "";
  show($("audit-configuration-body"), false);
}

// The configuration an entry was decided under, as the gateway kept it (passwords and webhook
// paths taken out), shown below the entry.
async function readConfiguration() {
  const digest = state.decidedUnder && state.decidedUnder.config;
  if (!digest) return;
  const doc = await api(`/admin/audit/configurations/${encodeURIComponent(digest)}`);
  $("audit-configuration-body").textContent = JSON.stringify(doc, null, 2);
  show($("audit-configuration-body"), true);
}

async function downloadBundle(button) {
  const revision = state.decidedUnder && state.decidedUnder.bundle;
  if (!revision) return;
  busy(button, true);
  try {
    const response = await api(`/admin/audit/bundles/${encodeURIComponent(revision)}`, { raw: true });
    saveBlob(await response.blob(), `policy-bundle-${revision.replace(":", "-")}.tar.gz`);
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

// A request captured under a legal-hold obligation: its content, on demand only (each read is an
// audit entry of its own), shown as text.
async function readContent() {
  const rid = state.contentRequest;
  if (!rid) return;
  const doc = await api(`/admin/audit/content/${encodeURIComponent(rid)}`);
  $("audit-content-body").textContent = JSON.stringify(doc, null, 2);
  show($("audit-content-body"), true);
}

function onAuditTable(event) {
  const row = event.target.closest("tr.audit-row");
  if (!row) return;
  if (event.type === "click") selectAuditRow(row);
  else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    selectAuditRow(row);
  } else if (event.key === "ArrowDown" && row.nextElementSibling) {
    event.preventDefault();
    row.nextElementSibling.focus();
  } else if (event.key === "ArrowUp" && row.previousElementSibling) {
    event.preventDefault();
    row.previousElementSibling.focus();
  }
}

// A download from the page: the blob saved under ``name`` through a link clicked once.
function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  say(`Saved ${blob.size} bytes to ${name}.`, "ok");
}

async function exportAudit(format, button) {
  busy(button, true);
  say(`Exporting ${format.toUpperCase()}…`);
  try {
    const response = await api(`/admin/audit/export${query({ format, ...auditFilter() })}`, { raw: true });
    saveBlob(await response.blob(), `portcullis-audit-${stamp()}.${format}`);
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

// The evidence pack of the audit filter's period, jurisdiction, user, team, decision and
// backend (a pack takes no rule, request id or kind): a signed ZIP, built by the gateway.
const EVIDENCE_FILTERS = ["since", "until", "jurisdiction", "user", "team", "decision", "backend"];

async function exportEvidence(button) {
  busy(button, true);
  say("Building the evidence pack…");
  try {
    const filter = auditFilter();
    const params = {};
    for (const name of EVIDENCE_FILTERS) if (filter[name]) params[name] = filter[name];
    const response = await api(`/admin/audit/evidence${query(params)}`, { raw: true });
    saveBlob(await response.blob(), `portcullis-evidence-${stamp()}.zip`);
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

// ---------------------------------------------------------------------------------------------
// Usage

const USAGE_MEASURES = [
  ["requests", "Requests"],
  ["denied", "Denied"],
  ["failed", "Failed"],
  ["forwarded", "Forwarded"],
  ["shadowed", "Shadowed"], // answered though a limit or budget in shadow mode would have refused
  ["prompt_tokens", "Prompt tokens"],
  ["completion_tokens", "Completion tokens"],
  ["total_tokens", "Total tokens"],
  ["cost_microusd", "Cost (USD)", (v) => (v / 1e6).toFixed(2)], // micro-dollars in the report
];

const measure = ([key, , format], source) => (format ? format(source[key] ?? 0) : text(source[key] ?? 0));

// A report view (usage, transfers, denials): its form, table and measures share its name.
const REPORT_NAMES = ["usage", "transfers", "denials"];
const reportMeasures = (name) => ({ usage: USAGE_MEASURES, transfers: TRANSFER_MEASURES, denials: DENIAL_MEASURES })[name];

async function showReport(name) {
  if (!state.reportsLoaded.has(name)) await loadReportView(name);
}

async function loadReportView(name) {
  const answer = await loadReport(`${name}-form`, `/admin/audit/${name}`);
  if (!answer) return;
  renderReport(`${name}-table`, answer, reportMeasures(name));
  state.reportsLoaded.add(name);
}

// A grouped report's query from its form: the groupings ticked and the range (null: none ticked).
function reportQuery(formId, extra = {}) {
  const form = $(formId);
  const by = [...form.querySelectorAll('input[name="by"]:checked')].map((c) => c.value);
  if (by.length === 0) {
    say("Choose at least one grouping.", "error");
    return null;
  }
  const values = formValues(form);
  return query({ by: by.join(","), since: values.since, until: values.until, ...extra });
}

// A grouped report of the trail (usage, transfers, denials), asked for.
async function loadReport(formId, path) {
  const q = reportQuery(formId);
  if (q === null) return null;
  const answer = await api(`${path}${q}`);
  say(`${(answer.groups || []).length} groups.`);
  return answer;
}

// The same report as the CSV the command line prints, saved as a file.
async function downloadReport(formId, name, button) {
  const q = reportQuery(formId, { format: "csv" });
  if (q === null) return;
  busy(button, true);
  try {
    const response = await api(`/admin/audit/${name}${q}`, { raw: true });
    saveBlob(await response.blob(), `portcullis-${name}-${stamp()}.csv`);
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

function renderReport(tableId, answer, measures) {
  const table = $(tableId);
  const groups = answer.by || [];
  const cell = (m, source) => el("td", { className: m[3] || "num", text: measure(m, source) });
  table.tHead.replaceChildren(el("tr", {},
    groups.map((g) => el("th", { scope: "col", text: g })),
    measures.map(([, label, , cls]) => el("th", { scope: "col", className: cls || "num", text: label }))));
  const rows = (answer.groups || []).map((row) => el("tr", { className: "usage-row" },
    groups.map((g) => el("td", { className: row[g] === null ? "none" : null, text: row[g] === null ? "(none)" : text(row[g]) })),
    measures.map((m) => cell(m, row))));
  const totals = answer.totals || {};
  const totalRow = el("tr", { className: "usage-total" },
    groups.length ? el("th", { scope: "row", colspan: String(groups.length), text: "Total" }) : null,
    measures.map((m) => cell(m, totals)));
  table.tBodies[0].replaceChildren(...rows, totalRow);
}

// ---------------------------------------------------------------------------------------------
// Transfers

// per type, per action: "EMAIL_ADDRESS pseudonymise 12 · PERSON allow 3"
const entitiesText = (entities) => Object.entries(entities || {})
  .map(([type, actions]) => `${type} ${Object.entries(actions).map(([a, n]) => `${a} ${n}`).join(", ")}`)
  .join(" · ") || "none";

const TRANSFER_MEASURES = [
  ["requests", "Requests that reached it"],
  ["answered", "Answered"],
  ["with_personal_data", "With personal data"],
  ["sent_as_is", "Values sent as written"],
  ["protected", "Values replaced"],
  ["uninspectable", "Uninspectable"],
  ["purged", "Purged"],
  ["entities", "Personal data by type and action", entitiesText, "entities"],
];

// ---------------------------------------------------------------------------------------------
// Data subjects

function showSubjects() {
  $("sf-value").focus();
}

// "deepseek-hosted (deepseek, CN): AU_TFN pseudonymise" per backend the request reached
function reachedText(reached) {
  if (!Array.isArray(reached) || reached.length === 0) return "not sent";
  return reached.map((r) => {
    const facts = [r.operator, r.hosting_country, r.self_hosted ? "self-hosted" : null,
      r.answered ? null : "failed after sending"].filter(Boolean).map(text).join(", ");
    const done = Object.entries(r.actions || {})
      .map(([type, acts]) => `${type} ${Object.keys(acts).join("/")}`).join(", ");
    return `${text(r.id)} (${facts}): ${done || "-"}`;
  }).join("; ");
}

// The value goes in a POST body (never a URL) and is cleared from the form once sent.
async function searchSubject(event) {
  event.preventDefault();
  const values = formValues($("subjects-form"));
  const body = { value: $("sf-value").value };
  if (values.type) body.types = [values.type];
  if (values.since) body.since = values.since;
  if (values.until) body.until = values.until;
  $("sf-value").value = "";
  say("Searching…");
  const answer = await api("/admin/audit/subjects", { method: "POST", body });
  const totals = answer.totals || {};
  const rows = (answer.matches || []).map((m) => el("tr", { className: "subject-row" },
    el("td", { text: text(m.ts) }),
    el("td", { className: "mono", text: text(m.request_id) }),
    el("td", { text: `${text(m.user)} (${text(m.jurisdiction)})` }),
    el("td", { text: text(m.model) }),
    el("td", { text: list(m.types) + (m.in_answer && m.in_answer.length ? ` (in the answer: ${list(m.in_answer)})` : "") }),
    el("td", { text: [m.decision, m.status, m.error_code].filter((v) => v !== null && v !== undefined).map(text).join(" ") }),
    el("td", { text: reachedText(m.reached) })));
  $("subjects-table").tBodies[0].replaceChildren(...rows);
  $("subjects-summary").textContent =
    `${totals.requests ?? 0} request(s) held the value, ${totals.forwarded ?? 0} of them sent` +
    (totals.truncated ? " (the newest shown)." : ".") +
    (answer.indexing ? "" : " This gateway keeps no digests now (audit.record_subject_digests or PII inspection is off): newer requests cannot be found.");
  say(`${rows.length} request(s) found.`);
}

// ---------------------------------------------------------------------------------------------
// Denials

// "au-homeaffairs-2025-02-04 (Secretary of the Department of Home Affairs, PSPF Direction 001-2025, 2025-02-04)"
const citationsText = (citations) => (Array.isArray(citations) ? citations : [])
  .map((c) => {
    const named = ["authority", "instrument", "effective_date"].filter((k) => c[k]).map((k) => c[k]);
    return named.length ? `${c.id} (${named.join(", ")})` : c.id;
  })
  .join("; ") || "none";

const DENIAL_MEASURES = [
  ["requests", "Requests"],
  ["people", "People"],
  ["first", "First", (v) => (v ? text(v) : "-"), "when"],
  ["last", "Last", (v) => (v ? text(v) : "-"), "when"],
  ["citations", "Citations", citationsText, "entities"],
];

// ---------------------------------------------------------------------------------------------
// Keys

async function showKeys() {
  await loadKeys();
}

async function loadKeys() {
  const include = $("keys-include-revoked").checked;
  const [answer, budgets, limits] = await Promise.all([
    api(`/admin/keys${query({ include_revoked: include ? "true" : "" })}`),
    api("/admin/budgets"),
    // the keys are shown even when the limiter cannot say where the shared limits stand
    api("/admin/limits").catch((err) => { if (err instanceof StaleAnswer) throw err; return { error: err }; }),
  ]);
  const spend = new Map(); // key id -> its budget row (a rotation chain's keys share one)
  for (const row of budgets.data || []) for (const id of row.key_ids || []) spend.set(id, row);
  $("keys-table").tBodies[0].replaceChildren(...(answer.data || []).map((r) => keyRow(r, spend.get(r.key_id))));
  renderBudgets(budgets);
  renderLimits(limits);
}

function sharedLimitsText(row) {
  const parts = [];
  if (row.requests_per_minute) parts.push(`${row.requests_per_minute} requests/min`);
  if (row.tokens_per_minute) parts.push(`${row.tokens_per_minute} tokens/min`);
  if (row.max_parallel) parts.push(`${row.max_parallel} in flight`);
  return parts.join(", ") || "no limit";
}

function standingText(row) {
  const now = row.standing;
  if (!now) return "not known here";
  const parts = [];
  if (row.requests_per_minute) parts.push(`${now.requests_left} requests left`);
  if (row.tokens_per_minute) parts.push(`${now.tokens_left} tokens left`);
  if (row.max_parallel) parts.push(`${now.in_flight} of ${row.max_parallel} in flight`);
  return parts.join(", ") || "-";
}

function renderLimits(limits) {
  const rows = limits.data || [];
  const minute = limits.window === "sliding" ? "the last 60 seconds" : "this minute's buckets";
  let note = rows.length ? `Where each stands now (${minute}, requests in flight).` : "No limit is shared by people's, teams' or tenants' keys.";
  if (limits.error) note = `Shared limits could not be read: ${limits.error.message}`;
  else if (limits.shadow) note += " Shadow mode: these limits refuse nothing.";
  $("limits-note").textContent = note;
  $("limits-table").tBodies[0].replaceChildren(...rows.map((row) => el("tr", { className: "limit-row" },
    el("td", { text: text(row.scope) }),
    el("td", { text: row.scope === "user" ? `${text(row.user)} (${text(row.tenant)})` : text(row[row.scope]) }),
    el("td", { text: sharedLimitsText(row) }),
    el("td", { text: standingText(row) }))));
}

let budgetsPeriod = null; // the gateway's period, as the last report said

function budgetWhose(row) {
  // a budget renewing on a period of its own says which, and when it renews
  const own = row.period && row.period !== budgetsPeriod ? ` (period ${row.period}, renews ${row.renews_at})` : "";
  if (row.scope === "team") return text(row.team) + own;
  if (row.scope === "tenant") return text(row.tenant) + own;
  if (row.scope === "user") return `${text(row.user)} (${text(row.tenant)})${own}`;
  return list(row.key_ids) + (row.own ? "" : " (default)") + own;
}

function renderBudgets(budgets) {
  const rows = budgets.data || [];
  budgetsPeriod = budgets.period;
  $("budgets-period").textContent = rows.length
    ? `Period ${text(budgets.period)}; renews at ${text(budgets.renews_at)}.`
    : "No spend budget is in force.";
  $("budgets-table").tBodies[0].replaceChildren(...rows.map((row) => el("tr", { className: "budget-row" },
    el("td", { text: text(row.scope) }),
    el("td", { className: row.scope === "key" ? "mono" : null, text: budgetWhose(row) }),
    el("td", { className: "num", text: usd(row.limit_usd) }),
    el("td", { className: "num", text: usd(row.spent_usd) }),
    el("td", { className: "num", text: usd(row.remaining_usd) }))));
}

const usd = (v) => Number(v).toFixed(2);

function budgetText(record, budget) {
  // a key renewing on its own period says which ("per day")
  const per = record.budget_period ? ` per ${record.budget_period}` : "";
  if (budget) return `${usd(budget.spent_usd)} of ${usd(budget.limit_usd)}${per}${budget.own ? "" : " (default)"}`;
  return record.budget_usd === 0 ? "none (own)" : "none";
}

function keyState(record) {
  if (record.revoked_at) return "revoked";
  if (record.expired) return "expired";
  return "active";
}

function keyRow(record, budget) {
  const st = keyState(record);
  const active = st === "active";
  return el("tr", { className: `key-row ${st}`, dataset: { keyId: record.key_id, limits: limitsValue(record) } },
    // the masked form (pcs_<id>_…abcd) where it was kept: the holder can tell which key it is
    el("td", { className: "mono", text: record.masked || record.key_id, title: `key id ${record.key_id}` }),
    el("td", { text: text(record.user) }),
    el("td", { text: text(record.team) }),
    el("td", { text: text(record.jurisdiction) }),
    el("td", { text: text(record.sector) }),
    el("td", { text: list(record.roles) }),
    el("td", { text: record.models === null || record.models === undefined ? "all" : list(record.models) || "none" }),
    el("td", { className: "mono", text: record.networks === null || record.networks === undefined ? "anywhere" : list(record.networks) }),
    el("td", { className: "mono", text: text(record.created_at) }),
    el("td", { className: "mono", text: record.expires_at ? record.expires_at : "never" }),
    el("td", { className: "num", text: budgetText(record, budget) }),
    el("td", { className: "mono", text: limitsText(record) }),
    el("td", { className: `state ${st}`, text: st }),
    el("td", { className: "row-actions" },
      el("button", { type: "button", className: "budget", disabled: !active, "aria-label": `Set the budget of key ${record.key_id}`, text: "Budget" }),
      el("button", { type: "button", className: "networks", disabled: !active, "aria-label": `Set the networks key ${record.key_id} may be used from`, text: "Networks" }),
      el("button", { type: "button", className: "limits", disabled: !active, "aria-label": `Set the limits of key ${record.key_id}`, text: "Limits" }),
      el("button", { type: "button", className: "usage", disabled: !active, "aria-label": `Where key ${record.key_id} stands now`, text: "Usage" }),
      el("button", { type: "button", className: "rotate", disabled: !active, "aria-label": `Rotate key ${record.key_id}`, text: "Rotate" }),
      el("button", { type: "button", className: "revoke danger", disabled: !active, "aria-label": `Revoke key ${record.key_id}`, text: "Revoke" })));
}

async function onKeysTable(event) {
  const button = event.target.closest("button");
  const row = event.target.closest("tr.key-row");
  if (!button || !row || button.disabled) return;
  const id = row.dataset.keyId;
  if (button.classList.contains("budget")) await setKeyBudget(id, button);
  else if (button.classList.contains("networks")) await setKeyNetworks(id, button);
  else if (button.classList.contains("limits")) await setKeyLimits(id, button, row.dataset.limits);
  else if (button.classList.contains("usage")) await showKeyUsage(id, button);
  else if (button.classList.contains("revoke")) await revokeKey(id, button);
  else if (button.classList.contains("rotate")) await rotateKey(id, button);
}

// Where a key stands now (GET /admin/keys/{id}/usage), said in the status line: its requests
// in flight, what its buckets hold this minute, and what is left of each budget it is held to.
async function showKeyUsage(id, button, path = `/admin/keys/${encodeURIComponent(id)}/usage`) {
  busy(button, true);
  try {
    say(usageText(id, await api(path)), "info");
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

function usageText(id, usage) {
  const l = usage.limits || {};
  const left = (value, rate, what) => (rate ? `${value} of ${rate} ${what}` : `unlimited ${what}`);
  const standing = (s) => [
    `${s.in_flight} in flight${s.max_parallel ? ` of at most ${s.max_parallel}` : ""}`,
    `${left(s.requests_left, s.requests_per_minute, "requests")} and ${left(s.tokens_left, s.tokens_per_minute, "tokens")} left this minute`,
  ];
  const parts = standing(l);
  if (usage.user_limits) parts.push(`its person: ${standing(usage.user_limits).join(", ")}`);
  if (usage.team_limits) parts.push(`its team: ${standing(usage.team_limits).join(", ")}`);
  if (usage.tenant_limits) parts.push(`its tenant: ${standing(usage.tenant_limits).join(", ")}`);
  for (const b of usage.budgets || []) {
    parts.push(`${text(b.scope)} budget: ${usd(b.remaining_usd)} of ${usd(b.limit_usd)} US dollars left for ${text(b.period)}`);
  }
  return `Key ${id} now: ${parts.join("; ")}.${l.shared ? "" : " (This replica's count: the limiter is not shared.)"}`;
}

// "AMOUNT" or "AMOUNT, PERIOD": US dollars (0: none; empty: the default) and, optionally, the
// period it renews on (day, week, month; "default": budgets.period; left out: kept)
const BUDGET_PERIODS = { day: "day", week: "week", month: "month", default: null };

async function setKeyBudget(id, button) {
  const answer = window.prompt(`Spend budget of key ${id} in US dollars (0: none; empty: the default), and optionally the period it renews on — e.g. "25" or "5, day" (day, week, month or default):`);
  if (answer === null) return; // cancelled
  const [amount, period, ...rest] = answer.split(",").map((s) => s.trim().toLowerCase());
  const budget = amount === "" ? null : Number(amount);
  if ((budget !== null && !(Number.isFinite(budget) && budget >= 0)) || rest.length || (period !== undefined && !(period in BUDGET_PERIODS))) {
    say('A budget is a number of US dollars, 0 or more (empty: the default), and optionally a period: day, week, month or default.', "error");
    return;
  }
  const body = { budget_usd: budget };
  if (period !== undefined) body.budget_period = BUDGET_PERIODS[period];
  const per = period === undefined ? "" : BUDGET_PERIODS[period] ? ` per ${BUDGET_PERIODS[period]}` : " per the default period";
  await changeKey(id, button, body, () => (budget === null ? `Key ${id} is back on the default budget${per}.` : `Key ${id}'s budget is ${usd(budget)} US dollars${per}.`));
}

// A change to one key from its row: sent, said (from the key's record as changed), the tables
// read again; the button busy meanwhile.
async function changeKey(id, button, body, said) {
  busy(button, true);
  try {
    const record = await api(`/admin/keys/${encodeURIComponent(id)}`, { method: "PATCH", body });
    say(said(record), "ok");
    await loadKeys();
  } catch (err) {
    busy(button, false);
    report(err);
  }
}

// A key's own limits (null: the configured default; 0: none), as the CLI writes them.
const LIMITS = ["requests_per_minute", "tokens_per_minute", "max_parallel"];

function limitWord(value) {
  return value === null || value === undefined ? "default" : value === 0 ? "unlimited" : String(value);
}

function limitWords(record) {
  return LIMITS.map((name) => limitWord(record[name]));
}

function limitsText(record) {
  const [rpm, tpm, inFlight] = limitWords(record);
  return `${rpm} rpm, ${tpm} tpm, ${inFlight} in flight`;
}

function limitsValue(record) {
  return limitWords(record).join(", ");
}

// "rpm, tpm, in flight": each a whole number (0: no limit) or "default"; null when one is not
function parseLimits(answer) {
  const parts = answer.split(",").map((s) => s.trim().toLowerCase());
  if (parts.length !== 3) return null;
  const values = parts.map((p) => (p === "default" || p === "" ? null : p === "unlimited" ? 0 : /^\d{1,10}$/.test(p) ? Number(p) : undefined));
  return values.includes(undefined) ? null : Object.fromEntries(LIMITS.map((name, i) => [name, values[i]]));
}

async function setKeyLimits(id, button, current) {
  const answer = window.prompt(`Limits of key ${id}: requests per minute, tokens per minute, requests in flight at once — each a whole number (0: no limit) or "default":`, current || "default, default, default");
  if (answer === null) return; // cancelled
  const body = parseLimits(answer);
  if (body === null) {
    say('Give three limits, comma-separated: each a whole number (0: no limit) or "default".', "error");
    return;
  }
  await changeKey(id, button, body, (record) => `Key ${id}: ${limitsText(record)}.`);
}

// CIDR blocks, comma-separated; empty: anywhere (the server checks each and names a bad one)
async function setKeyNetworks(id, button) {
  const answer = window.prompt(`Networks key ${id} may be used from (CIDR blocks, comma-separated; empty: anywhere):`);
  if (answer === null) return; // cancelled
  const networks = names(answer);
  await changeKey(id, button, { networks: networks.length ? networks : null }, () =>
    networks.length ? `Key ${id} may be used from ${networks.join(", ")} only.` : `Key ${id} may be used from anywhere.`);
}

async function revokeKey(id, button) {
  if (!window.confirm(`Revoke key ${id}? Requests with it are refused from now on.`)) return;
  busy(button, true);
  try {
    await api(`/admin/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
    say(`Key ${id} revoked.`, "ok");
    await loadKeys();
  } catch (err) {
    busy(button, false);
    report(err);
  }
}

async function rotateKey(id, button) {
  const grace = Number.parseInt($("rotate-grace").value, 10) || 0;
  busy(button, true);
  try {
    const answer = await api(`/admin/keys/${encodeURIComponent(id)}/rotate`, {
      method: "POST",
      body: { grace_seconds: grace },
    });
    const old = answer.replaced || {};
    const fate = old.revoked_at ? "revoked" : `works until ${text(old.expires_at)}`;
    showNewKey(answer.key, `Replacement for ${id}: key id ${answer.key_id} for ${answer.user}. The old key ${fate}.`);
    say(`Key ${id} rotated; the new key id is ${answer.key_id}.`, "ok");
    await loadKeys();
  } catch (err) {
    busy(button, false);
    report(err);
  }
}

async function endSessions(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const user = (formValues(form).user || "").trim();
  const button = form.querySelector('button[type="submit"]');
  busy(button, true);
  try {
    const revokeKeys = $("se-revoke").checked;
    const body = revokeKeys ? { user, revoke_keys: true } : { user };
    const answer = await api("/admin/console/sessions/end", { method: "POST", body });
    const keys = revokeKeys ? ` ${answer.revoked.length} key(s) in their name revoked.` : "";
    say(`Every console session of ${answer.user} begun until ${answer.ended_at} has ended.${keys}`, "ok");
    form.reset();
    if (revokeKeys) await loadKeys();
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

async function revokeUsersKeys(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const user = (formValues(form).user || "").trim();
  if (!window.confirm(`Revoke every working key in the name of ${user}?`)) return;
  const button = form.querySelector('button[type="submit"]');
  busy(button, true);
  try {
    const answer = await api("/admin/keys/revoke", { method: "POST", body: { user } });
    say(`${answer.revoked.length} key(s) of ${answer.user} revoked.`, "ok");
    form.reset();
    await loadKeys();
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

async function createKey(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const v = formValues(form);
  const body = { user: v.user || "", jurisdiction: v.jurisdiction || "", sector: v.sector || "" };
  if (v.team) body.team = v.team;
  if (v.roles) body.roles = names(v.roles);
  if (v.models) body.models = names(v.models);
  if (v.networks) body.networks = names(v.networks);
  if (v.expires_at) body.expires_at = v.expires_at;
  if (v.budget_usd) body.budget_usd = Number(v.budget_usd);
  const button = form.querySelector('button[type="submit"]');
  busy(button, true);
  try {
    const answer = await api("/admin/keys", { method: "POST", body });
    showNewKey(answer.key, `Key id ${answer.key_id} for ${answer.user} (${answer.jurisdiction}, ${answer.sector}).`);
    say(`Key ${answer.key_id} created.`, "ok");
    form.reset();
    await loadKeys();
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

// ---------------------------------------------------------------------------------------------
// My keys: keys a person signed in through single sign-on makes for themselves

async function showMyKeys() {
  await loadMyKeys();
}

async function loadMyKeys() {
  const answer = await api("/admin/me/keys");
  const keys = answer.data || [];
  $("mykeys-table").tBodies[0].replaceChildren(...keys.map(myKeyRow));
  const person = answer.person_budget;
  const spentLine = person ? ` You have spent ${usd(person.spent_usd)} of your ${usd(person.limit_usd)} US dollars for ${text(person.period || answer.period)} across all your keys.` : "";
  $("mykeys-count").textContent = `${keys.length} of at most ${text(answer.max_keys)} working keys.${spentLine}`;
}

function myKeyRow(record) {
  const b = record.budget;
  return el("tr", { className: "mykey-row", dataset: { keyId: record.key_id } },
    el("td", { className: "mono", text: record.masked || record.key_id, title: `key id ${record.key_id}` }),
    el("td", { text: text(record.description) }),
    el("td", { text: record.models === null || record.models === undefined ? "all" : list(record.models) }),
    el("td", { className: "mono", text: text(record.created_at) }),
    el("td", { className: "mono", text: text(record.expires_at) }),
    el("td", { className: "num", text: b ? `${usd(b.spent_usd)} of ${usd(b.limit_usd)}${b.period ? ` in ${b.period}` : ""}` : "none" }),
    el("td", { className: "row-actions" },
      el("button", { type: "button", className: "usage", "aria-label": `Where your key ${record.key_id} stands now`, text: "Usage" }),
      el("button", { type: "button", className: "revoke danger", "aria-label": `Revoke key ${record.key_id}`, text: "Revoke" })));
}

async function onMyKeysTable(event) {
  const button = event.target.closest("button");
  const row = event.target.closest("tr.mykey-row");
  if (!button || !row || button.disabled) return;
  const id = row.dataset.keyId;
  if (button.classList.contains("usage")) {
    await showKeyUsage(id, button, `/admin/me/keys/${encodeURIComponent(id)}/usage`);
    return;
  }
  if (!button.classList.contains("revoke")) return;
  if (!window.confirm(`Revoke your key ${id}? Tools using it stop working at once.`)) return;
  busy(button, true);
  try {
    await api(`/admin/me/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
    say(`Key ${id} revoked.`, "ok");
    await loadMyKeys();
  } catch (err) {
    busy(button, false);
    report(err);
  }
}

async function createMyKey(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const v = formValues(form);
  const body = v.description ? { description: v.description } : {};
  const button = form.querySelector('button[type="submit"]');
  busy(button, true);
  try {
    const answer = await api("/admin/me/keys", { method: "POST", body });
    showNewKey(answer.key, `Key id ${answer.key_id}, yours until ${text(answer.expires_at)}. Use it as an OpenAI API key with this gateway's /v1.`);
    say(`Key ${answer.key_id} made.`, "ok");
    form.reset();
    await loadMyKeys();
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

// The key goes into #new-key and nowhere else; dismissKey() clears it.
function showNewKey(key, note) {
  $("new-key").textContent = text(key);
  $("new-key-note").textContent = note;
  show($("new-key-panel"), true);
  $("copy-key").focus();
}

function dismissKey() {
  $("new-key").textContent = "";
  $("new-key-note").textContent = "";
  show($("new-key-panel"), false);
}

async function copyKey() {
  try {
    await navigator.clipboard.writeText($("new-key").textContent);
    say("Key copied to the clipboard.", "ok");
  } catch {
    say("The browser refused the clipboard: select the key and copy it by hand.", "error");
  }
}

// ---------------------------------------------------------------------------------------------
// Policy what-if

async function showPolicy() {
  if (state.modelsLoaded || !can("config")) return;
  const config = await api("/admin/config");
  fillModels(config);
}

function fillModels(config) {
  const models = new Set();
  for (const b of config.backends || []) {
    for (const m of b.models || []) models.add(m);
    for (const a of Object.keys(b.aliases || {})) models.add(a);
  }
  $("policy-models").replaceChildren(...[...models].sort().map((m) => el("option", { value: m })));
  state.modelsLoaded = true;
}

function parsePii(value) {
  const out = {};
  for (const part of names(value)) {
    const [entity, count = "1"] = part.split("=").map((s) => s.trim());
    const n = Number(count);
    if (!entity || !/^[A-Za-z][A-Za-z0-9_]*$/.test(entity) || !Number.isInteger(n) || n < 0) {
      throw new InputError(`Personal data: '${part}' is not ENTITY=COUNT (e.g. EMAIL_ADDRESS=1).`);
    }
    out[entity] = n;
  }
  return out;
}

async function evaluatePolicy(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector('button[type="submit"]');
  const v = formValues(form);
  $("policy-result").replaceChildren(); // never an old answer beside a new question
  busy(button, true);
  try {
    const body = { jurisdiction: v.jurisdiction || "", sector: v.sector || "" };
    if (v.team) body.team = v.team;
    if (v.roles) body.roles = names(v.roles);
    if (v.model) body.model = v.model;
    if (v.at) body.at = v.at;
    if (v.pii) body.pii = parsePii(v.pii);
    if (v.marking) body.marking = v.marking;
    const answer = await api("/admin/policy/eval", { method: "POST", body });
    renderPolicy(answer.decision || {});
    say("");
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

function renderPolicy(d) {
  const verdict = d.allow ? "ALLOWED" : "DENIED";
  const reasons = d.reasons || [];
  const piiActions = Object.entries(d.pii_actions || {});
  fill($("policy-result"),
    el("p", { id: "policy-verdict", className: `verdict ${d.allow ? "allowed" : "denied"}`, text: verdict }),
    el("dl", { className: "facts" },
      el("dt", { text: "Permitted backends" }),
      el("dd", { className: "mono", text: list(d.permitted_backends) || "none" }),
      el("dt", { text: "Bundle revision" }),
      el("dd", { className: "mono", text: text(d.bundle_revision) }),
      d.obligations ? [el("dt", { text: "Obligations" }), el("dd", { className: "mono", text: JSON.stringify(d.obligations) })] : null),
    el("h3", { text: "Reasons" }),
    reasons.length
      ? el("ul", { className: "reasons" }, reasons.map(reasonItem))
      : el("p", { className: "empty", text: "No reasons given." }),
    piiActions.length ? piiTable(piiActions) : null,
  );
}

function reasonItem(r) {
  return el("li", { className: `reason ${text(r.effect)}` },
    el("span", { className: `effect ${text(r.effect)}`, text: text(r.effect) }), " ",
    el("code", { className: "rule", text: text(r.rule) }), " ",
    el("span", { className: "message", text: text(r.message) }),
    Array.isArray(r.backends) ? el("span", { className: "backends", text: ` (backends: ${list(r.backends) || "none"})` }) : null,
    r.citation ? citation(r.citation) : null);
}

function citation(c) {
  const parts = [c.authority, c.instrument, c.date].filter(Boolean).map(String);
  const url = typeof c.url === "string" && c.url.startsWith("https://") ? c.url : null;
  return el("div", { className: "citation" },
    parts.join(", "),
    c.confidence ? ` (confidence: ${c.confidence})` : null,
    url ? [" — ", el("a", { href: url, rel: "noopener noreferrer", target: "_blank", text: url })] : null);
}

function piiTable(entries) {
  return el("div", { className: "table-wrap" },
    el("table", { className: "data", id: "policy-pii" },
      el("caption", { text: "Personal-data handling per backend" }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: "Backend" }),
        el("th", { scope: "col", text: "Entity → action" }))),
      el("tbody", {}, entries.map(([backend, actions]) => el("tr", {},
        el("td", { className: "mono", text: backend }),
        el("td", { text: Object.entries(actions || {}).map(([e, a]) => `${e}: ${a}`).join(", ") }))))));
}

// ---------------------------------------------------------------------------------------------
// Configuration

async function showConfig() {
  const config = await api("/admin/config");
  $("config-hash").textContent = text(config.config_hash);
  $("config-revision").textContent = text(config.bundle_revision);
  $("config-table").tBodies[0].replaceChildren(...(config.backends || []).map(backendRow));
  const prompts = config.system_prompts || [];
  $("prompts-table").tBodies[0].replaceChildren(...(prompts.length ? prompts.map(promptRow)
    : [el("tr", {}, el("td", { colSpan: 4, className: "empty", text: "None configured." }))]));
  fillModels(config);
}

const yesNo = (v) => (v ? "yes" : "no");

function backendRow(b) {
  const hosting = [b.hosting_country, b.hosting_region].filter(Boolean).join(" / ");
  return el("tr", { className: `backend-row${b.usable ? "" : " unusable"}`, dataset: { backendId: b.id } },
    el("td", { className: "mono", text: text(b.id) }),
    el("td", { text: text(b.operator) }),
    el("td", { text: text(b.model_family) }),
    el("td", { text: text(b.model_origin) }),
    el("td", { text: hosting }),
    el("td", { text: yesNo(b.self_hosted) }),
    el("td", { className: "mono", title: list(b.models), text: list(b.models) }),
    el("td", { className: b.usable ? "ok" : "bad", text: yesNo(b.usable) }),
    el("td", { className: b.circuit_open ? "bad" : null, text: yesNo(b.circuit_open) }));
}

function promptRow(p) {
  return el("tr", {},
    el("td", { className: "mono", text: text(p.id) }),
    el("td", { text: yesNo(p.canary) }),
    el("td", { text: text(p.on_leak) }),
    el("td", { className: "prompt-text", text: text(p.text) }));
}

async function reloadConfig(button) {
  busy(button, true);
  try {
    const r = await api("/admin/config/reload", { method: "POST" });
    const b = r.backends || {};
    const changes = [
      ["added", b.added], ["removed", b.removed], ["changed", b.changed], ["credentials changed", b.credentials_changed],
    ].filter(([, ids]) => ids && ids.length).map(([label, ids]) => `${label}: ${ids.join(", ")}`);
    const parts = [r.applied ? "Configuration reloaded and applied" : "Configuration read; nothing to apply"];
    parts.push(`hash ${text(r.config_hash)}`);
    if (changes.length) parts.push(`backends ${changes.join("; ")}`);
    if (r.sections && r.sections.length) parts.push(`sections: ${r.sections.join(", ")}`);
    if (r.restart_required && r.restart_required.length) parts.push(`restart required for: ${r.restart_required.join(", ")}`);
    say(`${parts.join(" — ")}.`, "ok");
    await showConfig();
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

async function reloadPolicy(button) {
  busy(button, true);
  try {
    const r = await api("/admin/policy/reload", { method: "POST" });
    say(`Policy bundle reloaded: revision ${text(r.bundle_revision)} in force.`, "ok");
    await showConfig();
  } catch (err) {
    report(err);
  } finally {
    busy(button, false);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

function guarded(fn) {
  return (...args) => Promise.resolve(fn(...args)).catch(report);
}

function wire() {
  fillSectors();
  $("signin").addEventListener("submit", guarded(signIn));
  $("signout").addEventListener("click", async () => {
    const provider = await endSession();
    signOut();
    if (provider) location.assign(provider);
  });
  for (const button of document.querySelectorAll("#nav button[data-view]")) {
    button.addEventListener("click", guarded(() => activate(button.dataset.view)));
  }

  $("refresh-readiness").addEventListener("click", guarded(loadReadiness));
  $("audit-content").addEventListener("click", guarded(readContent));
  $("audit-configuration").addEventListener("click", guarded(readConfiguration));
  $("audit-bundle").addEventListener("click", (e) => downloadBundle(e.currentTarget));
  $("verify").addEventListener("click", guarded(verify));

  $("audit-filter").addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    resetAuditDetail();
    await loadAudit(false);
  }));
  // Clearing the filter shows everything again (not when sign-out resets the forms).
  $("audit-filter").addEventListener("reset", () => setTimeout(() => {
    if (state.whoami && state.view === "audit") loadAudit(false).catch(report);
  }, 0));
  $("audit-more").addEventListener("click", guarded(() => loadAudit(true)));
  $("audit-table").addEventListener("click", onAuditTable);
  $("audit-table").addEventListener("keydown", onAuditTable);
  $("export-csv").addEventListener("click", (e) => exportAudit("csv", e.currentTarget));
  $("export-jsonl").addEventListener("click", (e) => exportAudit("jsonl", e.currentTarget));
  $("export-evidence").addEventListener("click", (e) => exportEvidence(e.currentTarget));

  for (const name of REPORT_NAMES) {
    $(`${name}-form`).addEventListener("submit", guarded(async (event) => {
      event.preventDefault();
      await loadReportView(name);
    }));
    $(`${name}-csv`).addEventListener("click", (e) => downloadReport(`${name}-form`, name, e.currentTarget));
  }

  $("subjects-form").addEventListener("submit", guarded(searchSubject));

  $("keys-include-revoked").addEventListener("change", guarded(loadKeys));
  $("keys-table").addEventListener("click", guarded(onKeysTable));
  $("key-create").addEventListener("submit", guarded(createKey));
  $("mykeys-table").addEventListener("click", guarded(onMyKeysTable));
  $("mykey-create").addEventListener("submit", guarded(createMyKey));
  $("sessions-end").addEventListener("submit", guarded(endSessions));
  $("user-keys-revoke").addEventListener("submit", guarded(revokeUsersKeys));
  $("copy-key").addEventListener("click", guarded(copyKey));
  $("dismiss-key").addEventListener("click", dismissKey);

  $("policy-form").addEventListener("submit", guarded(evaluatePolicy));

  $("reload-config").addEventListener("click", (e) => reloadConfig(e.currentTarget));
  $("reload-policy").addEventListener("click", (e) => reloadPolicy(e.currentTarget));
}

// Back from single sign-on: the session (or why there is none) is in the URL's fragment, which
// the browser sent nowhere; keep the session as a pasted credential and clear the address bar.
const SSO_ERRORS = {
  not_permitted: "Your account is in no group given access to the console.",
  denied: "The identity provider did not sign you in.",
  expired: "The sign-in took too long or was started in another browser; try again.",
  invalid_state: "The sign-in could not be matched to this browser; try again.",
  invalid_token: "The identity provider's answer could not be verified; nothing was granted.",
  invalid_grant: "The identity provider refused the sign-in code; try again.",
  provider_unavailable: "The identity provider is not answering; try again later.",
  audit_unavailable: "The audit trail could not record the sign-in, so none was given.",
  address_not_allowed: "The console may not be signed in to from this network (admin.networks).",
  busy: "Too many sign-ins are in progress; try again in a moment.",
};

function fromSso() {
  const match = /^#(sso|sso_error)=([A-Za-z0-9._~-]{1,8192})$/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  if (match[1] === "sso") {
    sessionStorage.setItem(CREDENTIAL, match[2]);
    return null;
  }
  return SSO_ERRORS[match[2]] || "Single sign-on failed.";
}

async function offerSso() {
  try {
    const answer = await fetch("sso/status", { headers: { accept: "application/json" } });
    const enabled = answer.ok && (await answer.json()).enabled === true;
    show($("sso"), enabled);
    show($("sso-sessions"), enabled);
  } catch {
    show($("sso"), false);
    show($("sso-sessions"), false);
  }
}

wire();
const ssoError = fromSso();
offerSso();
if (credential()) {
  start().catch(report);
} else {
  showSignIn();
  if (ssoError) say(ssoError, "error");
}
