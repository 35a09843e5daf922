// knib web console: one page, views chosen by the URL fragment. It talks to
// the public API under /api/v1 only, with the session cookie, and sends the
// session's CSRF token with every write.

const API = "/api/v1";
let session = null; // {account, role, csrf_token}
let lastOp = null; // the final state of the operation the page just followed

const $ = (sel, root = document) => root.querySelector(sel);
const main = () => $("#main");

// el builds an element: el("a", {href: "#/"}, "text", child, ...).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svgEl(tag, attrs = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function flash(msg, ok = false) {
  const f = $("#flash");
  f.textContent = msg;
  f.className = ok ? "ok" : "";
  f.hidden = !msg;
}

class APIError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

// api calls the API; errors carry the API's message.
async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && session && session.csrf_token) opts.headers["X-CSRF-Token"] = session.csrf_token;
  const resp = await fetch(API + path, opts);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    if (resp.status === 401 && path !== "/session") { session = null; location.hash = "#/login"; }
    throw new APIError(resp.status, (data && data.detail) || `${method} ${path}: ${resp.status}`);
  }
  return data;
}

function ready(page) { document.body.dataset.ready = page; }

function fmtTime(t) {
  if (!t || t.startsWith("0001-")) return "";
  return new Date(t).toLocaleString();
}

function age(t) {
  if (!t || t.startsWith("0001-")) return "never";
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function badge(text, kind = "") { return el("span", { class: `badge ${kind}` }, text); }

function statusKind(s) {
  if (["Error", "Failed", "NotValid", "BackupError", "RestoreError", "CompressionError"].includes(s)) return "bad";
  if (["UnableToValidate", "Missing", "Removed"].includes(s)) return "warn";
  if (["BackedUp", "Valid", "Running", "Succeeded", "Compressed"].includes(s)) return "good";
  return "";
}

// allPages follows the Knib-Next-Cursor header of a paged list.
async function allPages(path, max = 20) {
  let out = [];
  let cursor = "";
  for (let i = 0; i < max; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const resp = await fetch(API + path + sep + "limit=1000" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), { credentials: "same-origin" });
    const data = await resp.json();
    if (!resp.ok) throw new APIError(resp.status, data.detail);
    out = out.concat(data);
    cursor = resp.headers.get("Knib-Next-Cursor") || "";
    if (!cursor) break;
  }
  return out;
}

// ---- Log-in -------------------------------------------------------------

function loginPage() {
  const form = el("form", { class: "login", "aria-label": "Log in" },
    el("h1", {}, "Log in to knib"),
    el("label", {}, "Account", el("input", { name: "account", autocomplete: "username", id: "login-account" })),
    el("label", {}, "Password", el("input", { name: "password", type: "password", autocomplete: "current-password", id: "login-password" })),
    el("p", { class: "muted" }, "or"),
    el("label", {}, "API token", el("input", { name: "token", type: "password", autocomplete: "off", id: "login-token" })),
    el("button", { class: "primary", type: "submit", id: "login-submit" }, "Log in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = f.get("token") ? { token: f.get("token") } : { account: f.get("account"), password: f.get("password") };
    try {
      session = await api("POST", "/session", body);
      flash("");
      showSession();
      location.hash = "#/";
    } catch (e) { flash(e.message); }
  });
  main().replaceChildren(form);
  $("#login-account").focus();
  ready("login");
}

function showSession() {
  $("#nav").hidden = !session;
  $("#logout").hidden = !session;
  $("#nav-admin").hidden = !(session && session.role === "admin");
  $("#who").textContent = session ? `${session.account} (${session.role})` : "";
}

// ---- Dashboard ----------------------------------------------------------

let dashSort = { key: "sev", dir: -1 };

// The server aggregates the rows (GET /dashboard, one query), worst first.
async function dashboardPage() {
  main().replaceChildren(el("h1", {}, "Dashboard"), el("p", { class: "muted" }, "Loading…"));
  const d = await api("GET", "/dashboard");
  const rows = d.vms;
  const filter = el("input", { type: "search", placeholder: "Filter by name", "aria-label": "Filter VMs by name", id: "dash-filter" });
  const onlyAtt = el("input", { type: "checkbox", id: "dash-attention" });
  const table = el("table", { id: "dashboard" });
  const at = (e) => (e ? e.at : "");
  const cols = [
    ["VM", "name", (r) => r.name], ["State", "state", (r) => r.state], ["Offering", "offering", (r) => r.offering],
    ["Last backup", "last", (r) => at(r.last_backup)], ["Proven restorable", "proven", (r) => at(r.proven)],
    ["Chain", "chain", (r) => r.chain_length], ["Size", "size", (r) => r.stored_bytes], ["Next backup", "next", (r) => r.next_run || ""],
    ["Needs attention", "sev", (r) => r.severity],
  ];
  // A page of rows at a time: a thousand VMs stay quick to show.
  const perPage = 100;
  let pageNo = 0;
  const pager = el("div", { class: "toolbar", id: "dash-pager" });
  function render(resetPage = true) {
    if (resetPage) pageNo = 0;
    const q = filter.value.toLowerCase();
    const col = cols.find((c) => c[1] === dashSort.key);
    const all = rows.filter((r) => r.name.toLowerCase().includes(q) && (!onlyAtt.checked || r.severity > 0))
      .sort((a, b) => {
        const x = col[2](a), y = col[2](b);
        const c = x < y ? -1 : x > y ? 1 : 0;
        return c * dashSort.dir || a.name.localeCompare(b.name);
      });
    const pages = Math.max(1, Math.ceil(all.length / perPage));
    pageNo = Math.min(pageNo, pages - 1);
    const list = all.slice(pageNo * perPage, (pageNo + 1) * perPage);
    const go = (d) => { pageNo += d; render(false); };
    pager.replaceChildren(
      el("button", { type: "button", id: "dash-prev", disabled: pageNo === 0, onclick: () => go(-1) }, "Previous"),
      el("span", { class: "muted" }, all.length ? `${pageNo * perPage + 1}–${pageNo * perPage + list.length} of ${all.length}` : "no VM"),
      el("button", { type: "button", id: "dash-next", disabled: pageNo >= pages - 1, onclick: () => go(1) }, "Next"));
    const head = el("tr", {}, cols.map(([label, key]) => {
      const th = el("th", { tabindex: "0", scope: "col", "aria-sort": dashSort.key === key ? (dashSort.dir > 0 ? "ascending" : "descending") : "none" },
        label + (dashSort.key === key ? (dashSort.dir > 0 ? " ▲" : " ▼") : ""));
      const sort = () => { dashSort = { key, dir: dashSort.key === key ? -dashSort.dir : 1 }; render(); };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sort(); } });
      return th;
    }));
    const body = list.map((r) => el("tr", { class: `sev-${r.severity}`, "data-vm": r.name },
      el("td", {}, el("a", { href: `#/vm/${encodeURIComponent(r.name)}` }, r.name), el("div", { class: "muted" }, r.account)),
      el("td", {}, badge(r.state, statusKind(r.state))),
      el("td", {}, r.offering || el("span", { class: "muted" }, "none")),
      el("td", {}, r.last_backup ? [age(r.last_backup.at), " ", badge(r.last_backup.status, statusKind(r.last_backup.status))] : el("span", { class: "muted" }, "never")),
      el("td", {}, r.proven ? [age(r.proven.at), " ", el("span", { class: "muted" }, r.proven.how)] : el("span", { class: "muted" }, "not yet")),
      el("td", {}, r.chain_length ? `${r.chain_length} (head ${r.chain_head.slice(0, 8)})` : "0"),
      el("td", {}, bytes(r.stored_bytes)),
      el("td", {}, r.next_run ? fmtTime(r.next_run) : el("span", { class: "muted" }, "not scheduled")),
      el("td", {}, r.attention.length ? r.attention.map((a) => badge(a.what, a.severity >= 3 ? "bad" : "warn")) : badge("ok", "good"))));
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, body));
  }
  filter.addEventListener("input", () => render());
  onlyAtt.addEventListener("change", () => render());
  const low = (d.storages || []).filter((s) => s.low);
  main().replaceChildren(el("h1", {}, "Dashboard"),
    low.length ? el("div", { class: "badge bad", id: "storage-low" }, `Backup storage low on space: ${low.map((s) => `${s.name} (${bytes(s.free)} free of ${bytes(s.capacity)})`).join(", ")}`) : "",
    el("div", { class: "toolbar" }, filter, el("label", {}, onlyAtt, " only what needs attention"),
      el("span", { class: "muted" }, `${rows.length} VMs, ${rows.filter((r) => r.severity > 0).length} need attention`)),
    el("div", { class: "scroll" }, table), pager);
  render();
  ready("dashboard");
}

// ---- VM page ------------------------------------------------------------

// chainGraph draws the VM's backups: each chain a row from its full backup
// through its incrementals, isolated backups on their own row.
function chainGraph(backups) {
  const byID = new Map(backups.map((b) => [b.id, b]));
  const asc = [...backups].sort((a, b) => a.created.localeCompare(b.created));
  const rows = [];
  const rowOf = new Map();
  for (const b of asc) {
    const parent = byID.get(b.parent_id);
    if (b.type === "incremental" && parent && rowOf.has(parent.id)) {
      const r = rowOf.get(parent.id);
      rows[r].push(b);
      rowOf.set(b.id, r);
    } else {
      rows.push([b]);
      rowOf.set(b.id, rows.length - 1);
    }
  }
  const W = 130, H = 46, GX = 40, GY = 24;
  const width = Math.max(...rows.map((r) => r.length), 1) * (W + GX) + 20;
  const svg = svgEl("svg", { class: "chain", id: "chain-graph", width, height: rows.length * (H + GY) + 20, role: "img", "aria-label": "Backup chains" });
  rows.forEach((row, ri) => row.forEach((b, ci) => {
    const x = 10 + ci * (W + GX), y = 10 + ri * (H + GY);
    if (ci > 0) svg.append(svgEl("line", { class: "edge", x1: x - GX, y1: y + H / 2, x2: x, y2: y + H / 2 }));
    const cls = ["node", b.type, b.status === "Removed" ? "removed" : "", b.chain_head ? "head" : "", b.isolated ? "isolated" : ""].join(" ");
    const link = svgEl("a", { href: `#/backup/${b.id}`, "data-backup": b.id });
    link.append(svgEl("g", { class: cls },
      svgEl("rect", { x, y, width: W, height: H, rx: 6 }),
      svgEl("text", { x: x + 8, y: y + 18 }, `${b.type === "full" ? "full" : "inc"} ${b.id.slice(0, 8)}${b.chain_head ? " ★" : ""}`),
      svgEl("text", { x: x + 8, y: y + 36 }, `${b.status}${b.isolated ? " · isolated" : ""}`),
      svgEl("title", {}, `${b.id}\n${b.status}, ${fmtTime(b.created)}`)));
    svg.append(link);
  }));
  return svg;
}

// follow shows an operation's progress, pushed by the server, until it ends.
function follow(op, box, done) {
  const bar = el("div", { class: "w0" });
  const text = el("span", { class: "op-state" }, `${op.kind}: ${op.state}`);
  box.replaceChildren(el("div", { class: "toolbar", "data-operation": op.id }, el("div", { class: "progress", role: "progressbar" }, bar), text));
  const es = new EventSource(`${API}/events?operation=${encodeURIComponent(op.id)}`);
  es.addEventListener("operation", (ev) => {
    const o = JSON.parse(ev.data);
    bar.className = "w" + Math.min(100, Math.round((o.progress || 0) / 10) * 10);
    text.textContent = `${o.kind}: ${o.state}${o.message ? " — " + o.message : ""}${o.error ? " — " + o.error : ""}`;
    text.dataset.state = o.state;
    if (o.state === "Succeeded" || o.state === "Failed") {
      es.close();
      lastOp = { id: o.id, state: o.state, text: text.textContent };
      if (o.state === "Failed") flash(o.error || "the operation failed");
      done(o);
    }
  });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) text.textContent += " (stream closed)"; };
}

// planLines says what a deletion does under the chain rules, as the
// server plans it (POST /backups/delete/plan, a dry run).
function planLines(plan) {
  const short = (ids) => ids.map((i) => i.slice(0, 8)).join(", ");
  const lines = [];
  for (const v of plan.vms) {
    if (v.deleted.length) lines.push(`Deleted with their files: ${short(v.deleted)}.`);
    if (v.mark_removed.length) lines.push(`Only marked Removed, because newer backups need their files (they go with the last of those): ${short(v.mark_removed)}.`);
    if (v.catalogue_only.length) lines.push(`Only forgotten (they have no files): ${short(v.catalogue_only)}.`);
    if (v.merge_head) lines.push(`The chain head goes: its deltas on the disks of ${v.vm} are merged first, and the next backup is full.`);
  }
  return lines;
}

async function vmPage(name) {
  const [vm, backups, snaps, schedules, details] = await Promise.all([
    api("GET", `/vms/${encodeURIComponent(name)}`),
    allPages(`/backups?vm=${encodeURIComponent(name)}`),
    api("GET", `/vms/${encodeURIComponent(name)}/snapshots`).catch(() => []),
    api("GET", `/vms/${encodeURIComponent(name)}/schedules`).catch(() => []),
    api("GET", `/vms/${encodeURIComponent(name)}/details`).catch(() => []),
  ]);
  backups.sort((a, b) => b.created.localeCompare(a.created));
  const opBox = el("div", { id: "op" });
  if (lastOp) {
    // What the last action ended with stays in view after the re-render.
    opBox.append(el("div", { class: "toolbar", "data-operation": lastOp.id }, el("span", { class: "op-state", "data-state": lastOp.state }, lastOp.text)));
    lastOp = null;
  }
  const isolated = el("input", { type: "checkbox", id: "opt-isolated" });
  const quiesce = el("input", { type: "checkbox", id: "opt-quiesce" });
  const backupBtn = el("button", { class: "primary", id: "backup-now", type: "button" }, "Back up now");
  backupBtn.addEventListener("click", async () => {
    try {
      const op = await api("POST", `/vms/${encodeURIComponent(name)}/backups`, { isolated: isolated.checked, quiesce: quiesce.checked });
      follow(op, opBox, () => route());
    } catch (e) { flash(e.message); }
  });
  const finishBtn = el("button", { type: "button", id: "chain-finish" }, "Finish chain");
  finishBtn.addEventListener("click", async () => {
    try { follow(await api("POST", `/vms/${encodeURIComponent(name)}/chain/finish`), opBox, () => route()); } catch (e) { flash(e.message); }
  });
  const act = (label, cls, fn) => {
    const b = el("button", { type: "button", class: cls, "data-action": label.toLowerCase().replace(" ", "-") }, label);
    b.addEventListener("click", fn);
    return b;
  };
  const rows = backups.map((b) => el("tr", { "data-backup": b.id },
    el("td", {}, el("a", { href: `#/backup/${b.id}` }, b.id.slice(0, 8))),
    el("td", {}, b.type, b.isolated ? " (isolated)" : "", b.chain_head ? " ★ head" : ""),
    el("td", {}, badge(b.status, statusKind(b.status))),
    el("td", { class: "hide-narrow" }, badge(b.validation_status, statusKind(b.validation_status)), " ", badge(b.compression_status)),
    el("td", {}, fmtTime(b.created)),
    el("td", { class: "hide-narrow" }, bytes(b.size)),
    el("td", {}, b.status === "BackedUp" ? [
      act("Restore", "", () => restore(b, false, opBox)),
      act("Quick restore", "", () => restore(b, true, opBox)),
      act("Restore disk", "", () => restoreDisk(b, opBox)),
      act("New VM", "", () => createVM(b, opBox)),
      act("Delete", "danger", () => confirmDelete(b, opBox)),
    ] : b.status === "Removed" ? "" : act("Delete", "danger", () => confirmDelete(b, opBox)))));
  const shots = backups.filter((b) => b.has_screenshot);
  main().replaceChildren(
    el("h1", {}, `VM ${vm.name}`),
    el("p", {}, badge(vm.state, statusKind(vm.state)), ` on ${vm.host} · offering ${vm.offering || "none"} · ${vm.vcpus} vCPU · ${bytes(vm.memory_bytes)}`,
      vm.last_error ? el("div", { class: "badge bad" }, vm.last_error) : ""),
    el("div", { class: "toolbar" }, backupBtn, el("label", {}, isolated, " isolated"), el("label", {}, quiesce, " quiesce"), finishBtn,
      el("button", { type: "button", id: "vm-assign", onclick: () => assignVM(vm) }, vm.offering ? "Change offering" : "Assign to an offering"),
      vm.offering ? el("button", { type: "button", id: "vm-unassign", onclick: () => unassignVM(vm) }, "Unassign") : ""),
    opBox,
    el("h2", {}, "Backup chains"), backups.length ? chainGraph(backups) : el("p", { class: "muted" }, "No backups yet."),
    el("h2", {}, "Backups"),
    el("table", {}, el("thead", {}, el("tr", {}, ["ID", "Type", "Status", "Validation / compression", "Created", "Size", "Actions"].map((h, i) =>
      el("th", { class: i === 3 || i === 5 ? "hide-narrow" : "" }, h)))), el("tbody", { id: "backups" }, rows)),
    el("h2", {}, "Disks"),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Target"), el("th", {}, "Source"), el("th", {}, "Backing chain"))),
      el("tbody", {}, vm.disks.map((d) => el("tr", {}, el("td", {}, d.target), el("td", {}, d.source, " ", el("span", { class: "muted" }, `${d.format}, ${bytes(d.virtual_size)}`)),
        el("td", {}, (d.backing_chain || []).map((l) => el("div", {}, l.path))))))),
    el("h2", {}, "Snapshots"),
    snaps.length ? el("ul", {}, snaps.map((s) => el("li", {}, `${s.name} — ${s.status} — ${fmtTime(s.created)}`))) : el("p", { class: "muted" }, "None."),
    el("h2", {}, "Schedules"),
    schedules.length ? el("ul", { id: "schedules" }, schedules.map((s) => el("li", { "data-schedule": s.id },
      `${s.interval} at ${s.at} (${s.timezone || "UTC"})${s.isolated ? ", isolated" : ""}, keep ${s.max_backups || "all"}, next ${fmtTime(s.next_run)} `,
      el("button", { type: "button", "data-action": "edit", onclick: () => editSchedule(vm, s) }, "Edit"),
      el("button", { type: "button", class: "danger", onclick: () => removeSchedule(s) }, "Remove")))) : el("p", { class: "muted" }, "None."),
    el("button", { type: "button", id: "schedule-add", onclick: () => addSchedule(vm) }, "Add a schedule"),
    el("h2", {}, "Details"),
    details.length ? el("ul", { id: "details" }, details.map((d) => el("li", { "data-detail": d.key }, `${d.key} = ${d.value} `,
      el("button", { type: "button", class: "danger", onclick: () => removeDetail(vm, d.key) }, "Remove")))) : el("p", { class: "muted" }, "None."),
    el("button", { type: "button", id: "detail-set", onclick: () => setDetail(vm) }, "Set a detail"),
    el("h2", {}, "Validation screenshots"),
    shots.length ? el("div", { class: "gallery" }, shots.map((b) => el("figure", {},
      el("a", { href: `${API}/backups/${b.id}/screenshot`, target: "_blank", rel: "noopener" }, el("img", { src: `${API}/backups/${b.id}/screenshot`, alt: `Screenshot of ${b.id}` })),
      el("figcaption", {}, `${b.id.slice(0, 8)} ${b.validation_status}`)))) : el("p", { class: "muted" }, "None."));
  ready("vm");
}

// ask shows a confirmation with what the action will do; onYes runs on
// "yes". Escape or "Cancel" closes it.
function ask(title, lines, yesLabel, yesClass, onYes) {
  const dlg = el("dialog", { id: "confirm" },
    el("h2", {}, title),
    el("ul", { id: "confirm-consequences" }, lines.map((l) => el("li", {}, l))),
    el("div", { class: "toolbar" },
      el("button", { type: "button", class: yesClass, id: "confirm-yes" }, yesLabel),
      el("button", { type: "button", id: "confirm-no" }, "Cancel")));
  document.body.append(dlg);
  dlg.addEventListener("close", () => dlg.remove());
  $("#confirm-no", dlg).addEventListener("click", () => dlg.close());
  $("#confirm-yes", dlg).addEventListener("click", () => { dlg.close(); onYes(); });
  dlg.showModal();
  $("#confirm-no", dlg).focus();
}

// formDialog asks for the fields of an action in a dialog; onSubmit gets
// the values and may throw: the API's message then shows in the dialog,
// which stays open. fields: {name, label, type (text, number, checkbox,
// select), options [[value, label]], value, required, placeholder}.
function formDialog(id, title, fields, submitLabel, onSubmit) {
  const form = el("form", { id, "aria-label": title });
  const err = el("p", { class: "badge bad", role: "alert", id: `${id}-error`, hidden: true });
  for (const f of fields) {
    const fid = `${id}-${f.name}`;
    let input;
    if (f.type === "select") {
      input = el("select", { name: f.name, id: fid }, f.options.map(([v, l]) => el("option", { value: v, selected: v === f.value }, l)));
    } else {
      input = el("input", { name: f.name, id: fid, type: f.type || "text", required: f.required, placeholder: f.placeholder,
        value: f.type === "checkbox" ? undefined : f.value, checked: f.type === "checkbox" && f.value, min: f.type === "number" ? "0" : undefined });
    }
    form.append(f.type === "checkbox" ? el("label", { class: "check" }, input, " ", f.label) : el("label", { class: "field" }, f.label, input));
  }
  const dlg = el("dialog", { class: "form" }, el("h2", {}, title), form);
  form.append(err, el("div", { class: "toolbar" },
    el("button", { type: "submit", class: "primary", id: `${id}-submit` }, submitLabel),
    el("button", { type: "button", id: `${id}-cancel`, onclick: () => dlg.close() }, "Cancel")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const vals = {};
    for (const f of fields) {
      const input = form.elements[f.name];
      if (f.type === "checkbox") vals[f.name] = input.checked;
      else if (f.type === "number") vals[f.name] = input.value === "" ? undefined : Number(input.value);
      else vals[f.name] = input.value.trim();
    }
    try {
      await onSubmit(vals);
      dlg.close();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });
  document.body.append(dlg);
  dlg.addEventListener("close", () => dlg.remove());
  dlg.showModal();
  const first = form.querySelector("input, select");
  if (first) first.focus();
}

// done re-renders the page with a message once an action succeeded.
function done(msg) { route().then(() => flash(msg, true)); }

async function restore(b, quick, box) {
  const lines = [`The disks of ${b.vm_name} are replaced by those of backup ${b.id.slice(0, 8)} (${fmtTime(b.created)}).`,
    quick ? "Quick restore: the VM starts at once on the backup files, then its disks are consolidated while it runs."
      : "The VM is stopped while its disks are written."];
  const run = async (host) => {
    const body = quick ? { quick_restore: true } : {};
    if (host) body.host = host;
    follow(await api("POST", `/backups/${b.id}/restore`, body), box, () => route());
  };
  if (session.role !== "admin") {
    ask(`${quick ? "Quick-restore" : "Restore"} ${b.vm_name}?`, lines, quick ? "Quick restore" : "Restore", "primary", async () => {
      try { await run(""); } catch (e) { flash(e.message); }
    });
    return;
  }
  // An admin may restore onto another host of the zone (the VM moves there).
  let hosts = [];
  try { hosts = await api("GET", "/hosts"); } catch (e) { flash(e.message); return; }
  formDialog("restore", `${quick ? "Quick-restore" : "Restore"} ${b.vm_name}?`, [
    { name: "host", label: lines.join(" ") + " Host:", type: "select", options: [["", "its own host"]].concat(hosts.filter((h) => h.enabled).map((h) => [h.name, h.name])), value: "" },
  ], quick ? "Quick restore" : "Restore", async (v) => { await run(v.host); });
}

async function confirmDelete(b, box) {
  let plan;
  try { plan = await api("POST", "/backups/delete/plan", { ids: [b.id] }); } catch (e) { flash(e.message); return; }
  ask(`Delete backup ${b.id.slice(0, 8)}?`, planLines(plan), "Delete", "danger", async () => {
    try { follow(await api("POST", "/backups/delete", { ids: [b.id] }), box, () => route()); } catch (e) { flash(e.message); }
  });
}

// ---- Forms of the VM page ------------------------------------------------

const vmPath = (vm) => `/vms/${encodeURIComponent(vm.name)}`;

async function assignVM(vm) {
  // Admins pick from the offerings; a user names the offering's id.
  let field = { name: "offering", label: "Offering id", required: true };
  try {
    const offerings = await api("GET", "/offerings");
    field = { name: "offering", label: "Offering", type: "select", options: offerings.map((o) => [o.id, o.name]), value: vm.offering_id };
  } catch { /* not an admin */ }
  formDialog("assign", `Assign ${vm.name} to an offering`, [field], "Assign", async (v) => {
    if (vm.offering) await api("POST", `${vmPath(vm)}/unassign`);
    await api("POST", `${vmPath(vm)}/assign`, { offering_id: v.offering });
    done(`${vm.name} is assigned.`);
  });
}

async function unassignVM(vm) {
  ask(`Unassign ${vm.name}?`, ["Its chain ends (its deltas are merged); its backups stay."], "Unassign", "danger", async () => {
    try { await api("POST", `${vmPath(vm)}/unassign`); done(`${vm.name} is unassigned.`); } catch (e) { flash(e.message); }
  });
}

function scheduleFields(sc) {
  return [
    { name: "interval", label: "Every", type: "select", options: [["hourly", "hour"], ["daily", "day"], ["weekly", "week"], ["monthly", "month"]], value: sc.interval },
    { name: "at", label: "At (MM, HH:MM, DAY HH:MM or D HH:MM)", value: sc.at, required: true },
    { name: "timezone", label: "Time zone (IANA)", value: sc.timezone || "UTC" },
    { name: "max_backups", label: "Keep at most (0: all)", type: "number", value: String(sc.max_backups || 0) },
    { name: "isolated", label: "isolated backups", type: "checkbox", value: sc.isolated },
  ];
}

function addSchedule(vm) {
  formDialog("schedule", `Add a schedule to ${vm.name}`, scheduleFields({ interval: "daily", at: "02:00" }), "Add", async (v) => {
    await api("POST", `${vmPath(vm)}/schedules`, v);
    done("Schedule added.");
  });
}

function editSchedule(vm, sc) {
  formDialog("schedule", `Change a schedule of ${vm.name}`, scheduleFields(sc), "Save", async (v) => {
    await api("PUT", `/schedules/${encodeURIComponent(sc.id)}`, v);
    done("Schedule changed.");
  });
}

function removeSchedule(sc) {
  ask("Remove this schedule?", [`${sc.interval} at ${sc.at}: its backups stay.`], "Remove", "danger", async () => {
    try { await api("DELETE", `/schedules/${encodeURIComponent(sc.id)}`); done("Schedule removed."); } catch (e) { flash(e.message); }
  });
}

function setDetail(vm) {
  const keys = ["backupValidationCommand", "backupValidationCommandArguments", "backupValidationCommandExpectedResult",
    "backupValidationCommandTimeout", "backupValidationScreenshotWait", "backupValidationBootTimeout"];
  formDialog("detail", `Set a detail of ${vm.name}`, [
    { name: "key", label: "Detail", type: "select", options: keys.map((k) => [k, k]), value: keys[0] },
    { name: "value", label: "Value", required: true },
  ], "Set", async (v) => {
    await api("PUT", `${vmPath(vm)}/details/${encodeURIComponent(v.key)}`, { value: v.value });
    done(`${v.key} is set.`);
  });
}

function removeDetail(vm, key) {
  ask(`Remove ${key}?`, ["The offering's or the setting's value applies again."], "Remove", "danger", async () => {
    try { await api("DELETE", `${vmPath(vm)}/details/${encodeURIComponent(key)}`); done(`${key} is removed.`); } catch (e) { flash(e.message); }
  });
}

function restoreDisk(b, box) {
  formDialog("restore-disk", `Restore one disk of ${b.id.slice(0, 8)}`, [
    { name: "disk", label: "Disk of the backup", type: "select", options: (b.files || []).map((f) => [f.disk, `${f.disk} (${bytes(f.virtual_size)})`]) },
    { name: "vm", label: "Attach it to the VM", value: b.vm_name, required: true },
    { name: "quick_restore", label: "quick restore (attach at once, consolidate while running)", type: "checkbox" },
  ], "Restore the disk", async (v) => {
    const op = await api("POST", `/backups/${b.id}/restore-volume`, v);
    follow(op, box, () => route());
  });
}

function createVM(b, box) {
  formDialog("create-vm", `New VM from ${b.id.slice(0, 8)}`, [
    { name: "name", label: "Name of the new VM", value: `${b.vm_name}-restored`, required: true },
    { name: "start", label: "start it", type: "checkbox", value: true },
    { name: "quick_restore", label: "quick restore (run at once on the backup, consolidate while running)", type: "checkbox" },
  ], "Create", async (v) => {
    const op = await api("POST", `/backups/${b.id}/create-vm`, v);
    follow(op, box, () => route());
  });
}

// ---- Backup page --------------------------------------------------------

async function backupPage(id) {
  const b = await api("GET", `/backups/${encodeURIComponent(id)}`);
  const siblings = await allPages(`/backups?vm=${encodeURIComponent(b.vm_id)}`);
  const children = siblings.filter((x) => x.parent_id === b.id);
  main().replaceChildren(
    el("h1", {}, `Backup ${b.id}`),
    el("p", {}, "VM ", el("a", { href: `#/vm/${encodeURIComponent(b.vm_name)}` }, b.vm_name), ` · ${b.type}${b.isolated ? " (isolated)" : ""} · position ${b.position} · `,
      badge(b.status, statusKind(b.status)), b.chain_head ? badge("chain head", "good") : "", b.end_of_chain ? badge("end of chain") : ""),
    el("p", {}, `Created ${fmtTime(b.created)} · ${bytes(b.size)} on storage · virtual ${bytes(b.virtual_size)}`, b.error ? el("div", { class: "badge bad" }, b.error) : ""),
    el("p", {}, "Parent: ", b.parent_id ? el("a", { href: `#/backup/${b.parent_id}` }, b.parent_id.slice(0, 8)) : "none",
      " · Children: ", children.length ? children.map((c) => el("a", { href: `#/backup/${c.id}` }, c.id.slice(0, 8) + " ")) : "none"),
    el("h2", {}, "Compression"), el("p", {}, badge(b.compression_status, statusKind(b.compression_status)), b.uncompressed_size ? ` from ${bytes(b.uncompressed_size)}` : ""),
    el("h2", {}, "Validation"),
    el("p", {}, badge(b.validation_status, statusKind(b.validation_status)), " ", b.validation_reason || ""),
    (b.validation_steps || []).length ? el("ul", {}, b.validation_steps.map((s) => el("li", {}, `${s.step}: ${s.outcome}${s.detail ? " — " + s.detail : ""}`))) : "",
    b.has_screenshot ? el("img", { id: "screenshot", src: `${API}/backups/${b.id}/screenshot`, alt: "Validation screenshot", class: "shot" }) : "",
    el("h2", {}, "Files"),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Disk"), el("th", {}, "Path"), el("th", {}, "Size"), el("th", { class: "hide-narrow" }, "Hash"))),
      el("tbody", {}, (b.files || []).map((f) => el("tr", {}, el("td", {}, f.disk), el("td", {}, f.path), el("td", {}, bytes(f.size)),
        el("td", { class: "hide-narrow" }, el("code", {}, f.hash || "")))))),
    el("h2", {}, "Browse files"),
    fileBrowser(b),
  );
  ready("backup");
}

// fileBrowser browses the file systems inside a backup and downloads
// files and directories as tar archives (offerings that allow file
// extraction). The first look starts an isolated helper on the host.
function fileBrowser(b) {
  const box = el("div", { id: "file-browser" });
  const base = `/backups/${encodeURIComponent(b.id)}/files`;
  const join = (dir, name) => (dir === "/" ? "/" : dir + "/") + name;
  const show = async (vol, dir) => {
    box.replaceChildren(el("p", {}, "Reading the backup's file systems (the first look starts an isolated helper: some seconds)…"));
    try {
      const q = new URLSearchParams();
      if (vol) { q.set("disk", vol); q.set("path", dir); }
      const l = await api("GET", `${base}?${q}`);
      if (!vol) {
        box.replaceChildren(el("table", { id: "volumes" },
          el("thead", {}, el("tr", {}, ["Volume", "File system", "Label", "Size", "Used"].map((h) => el("th", {}, h)))),
          el("tbody", {}, (l.volumes || []).map((v) => el("tr", { "data-volume": v.name },
            el("td", {}, v.browsable ? el("button", { type: "button", class: "link", onclick: () => show(v.name, "/") }, v.name) : v.name),
            el("td", {}, v.fs_type), el("td", {}, v.label || ""), el("td", {}, bytes(v.size)), el("td", {}, v.total ? `${bytes(v.used)} of ${bytes(v.total)}` : ""))))));
      } else {
        const parent = dir.replace(/\/[^/]*$/, "") || "/";
        box.replaceChildren(
          el("p", {}, el("button", { type: "button", onclick: () => show() }, "Volumes"), " ",
            dir !== "/" ? el("button", { type: "button", onclick: () => show(vol, parent) }, "Up") : "", " ",
            el("code", { id: "file-path" }, `${l.volume}:${l.path}`), " ",
            el("button", { type: "button", onclick: () => downloadPath(b, vol, dir) }, "Download this directory")),
          el("table", { id: "entries" },
            el("thead", {}, el("tr", {}, ["Name", "Mode", "Owner", "Size", "Modified", ""].map((h) => el("th", {}, h)))),
            el("tbody", {}, (l.entries || []).map((e) => el("tr", { "data-entry": e.name },
              el("td", {}, e.type === "dir" ? el("button", { type: "button", class: "link", onclick: () => show(vol, join(dir, e.name)) }, e.name + "/")
                : e.type === "symlink" ? `${e.name} → ${e.target}` : e.name),
              el("td", {}, `${e.type === "dir" ? "d" : e.type === "symlink" ? "l" : "-"}${(e.mode & 0o7777).toString(8).padStart(4, "0")}`),
              el("td", {}, `${e.uid}:${e.gid}`), el("td", {}, e.type === "file" ? bytes(e.size) : ""), el("td", {}, fmtTime(e.mtime)),
              el("td", {}, el("button", { type: "button", onclick: () => downloadPath(b, vol, join(dir, e.name)) }, "Download")))))));
      }
    } catch (e) {
      box.replaceChildren(el("div", { class: "badge bad", id: "files-error" }, e.message));
    }
    ready("files");
  };
  box.append(el("button", { type: "button", id: "browse-files", onclick: () => show() }, "Browse the backup's files"));
  return box;
}

// downloadPath saves a tar archive of one path of a backup's volume.
async function downloadPath(b, vol, p) {
  const resp = await fetch(`${API}/backups/${encodeURIComponent(b.id)}/files/extract`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": (session && session.csrf_token) || "" },
    body: JSON.stringify({ paths: [p], disk: vol }),
  });
  if (!resp.ok) {
    const d = await resp.json().catch(() => null);
    flash((d && d.detail) || `download: ${resp.status}`);
    return;
  }
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: `${p === "/" ? vol.replace("/", "-") : p.split("/").pop()}.tar` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// ---- Jobs and operations ------------------------------------------------

let jobFilter = { type: "", state: "all" };

async function jobsPage() {
  const q = new URLSearchParams({ limit: "200" });
  if (jobFilter.type) q.set("type", jobFilter.type);
  if (jobFilter.state === "all") q.set("all", "true");
  else if (jobFilter.state === "executing") q.set("executing", "true");
  else if (jobFilter.state === "scheduled") q.set("scheduled", "true");
  const [jobs, ops] = await Promise.all([api("GET", "/jobs?" + q).catch(() => []), api("GET", "/operations?all=true&limit=200")]);
  const typeSel = el("select", { id: "job-type", "aria-label": "Job type" }, [["", "every type"], ["StartCompression", "compression"], ["FinalizeCompression", "compression finalize"],
    ["BackupValidation", "validation"]].map(([v, l]) => el("option", { value: v, selected: v === jobFilter.type }, l)));
  const stateSel = el("select", { id: "job-state", "aria-label": "Job state" }, [["all", "finished too"], ["open", "unfinished"], ["executing", "executing"],
    ["scheduled", "queued for later"]].map(([v, l]) => el("option", { value: v, selected: v === jobFilter.state }, l)));
  const refilter = () => { jobFilter = { type: typeSel.value, state: stateSel.value }; route(); };
  typeSel.addEventListener("change", refilter);
  stateSel.addEventListener("change", refilter);
  const opBody = el("tbody", { id: "operations" });
  const render = (list) => opBody.replaceChildren(...list.map((o) => el("tr", { "data-operation": o.id },
    el("td", {}, o.kind), el("td", {}, badge(o.state, statusKind(o.state))), el("td", {}, `${Math.round(o.progress || 0)}%`),
    el("td", {}, o.message || o.error || ""), el("td", {}, fmtTime(o.updated)))));
  const byID = new Map(ops.map((o) => [o.id, o]));
  render(ops);
  // Live: the server pushes every change of the operations we may see.
  const es = new EventSource(`${API}/events`);
  es.addEventListener("operation", (ev) => {
    const o = JSON.parse(ev.data);
    byID.set(o.id, o);
    render([...byID.values()].sort((a, b) => b.created.localeCompare(a.created)));
  });
  window.addEventListener("hashchange", () => es.close(), { once: true });
  main().replaceChildren(
    el("h1", {}, "Jobs and operations"),
    el("h2", {}, "Operations (live)"),
    el("table", {}, el("thead", {}, el("tr", {}, ["Kind", "State", "Progress", "Message", "Updated"].map((h) => el("th", {}, h)))), opBody),
    el("h2", {}, "Jobs"),
    el("div", { class: "toolbar" }, typeSel, stateSel),
    el("table", {}, el("thead", {}, el("tr", {}, ["Type", "Backup", "State", "Attempts", "Last error"].map((h) => el("th", {}, h)))),
      el("tbody", {}, jobs.map((j) => el("tr", {}, el("td", {}, j.type), el("td", {}, (j.backup_id || "").slice(0, 8)), el("td", {}, badge(j.state, statusKind(j.state))),
        el("td", {}, String(j.attempts)), el("td", {}, j.last_error || ""))))));
  ready("jobs");
}

// ---- Audit log ----------------------------------------------------------

let auditFilter = { account: "", action: "" };

// The newest 200 lines of the audit log (GET /audit): admins read every
// account's, users their own.
async function auditPage() {
  const q = new URLSearchParams({ limit: "200" });
  if (auditFilter.account) q.set("account", auditFilter.account);
  if (auditFilter.action) q.set("action", auditFilter.action);
  const lines = await api("GET", "/audit?" + q);
  const account = el("input", { id: "audit-account", "aria-label": "Account", placeholder: "account", value: auditFilter.account });
  const action = el("input", { id: "audit-action", "aria-label": "Action", placeholder: "action, e.g. POST /backups/{id}/restore", value: auditFilter.action, size: "40" });
  const form = el("form", { class: "toolbar" }, account, action, el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); auditFilter = { account: account.value.trim(), action: action.value.trim() }; route(); });
  if (!session || session.role !== "admin") account.hidden = true;
  main().replaceChildren(
    el("h1", {}, "Audit log"),
    form,
    el("table", { id: "audit" }, el("thead", {}, el("tr", {}, ["Time", "Account", "Source", "Action", "Object", "Result", "Operation"].map((h) =>
      el("th", { class: ["Source", "Object", "Operation"].includes(h) ? "hide-narrow" : undefined }, h)))),
      el("tbody", {}, lines.map((l) => el("tr", { "data-audit": l.id },
        el("td", {}, fmtTime(l.time)), el("td", {}, l.account || "—", l.token_id ? el("div", { class: "muted" }, "token " + l.token_id.slice(0, 8)) : ""),
        el("td", { class: "hide-narrow" }, l.source), el("td", {}, l.action), el("td", { class: "hide-narrow" }, l.object),
        el("td", {}, badge(String(l.status), l.status >= 400 ? "bad" : "good"), l.error ? el("div", { class: "muted" }, l.error) : ""),
        el("td", { class: "hide-narrow" }, l.operation_id ? l.operation_id.slice(0, 8) : ""))))));
  ready("audit");
}

// ---- Admin --------------------------------------------------------------

// settingsScope is the scope whose effective settings the admin page shows.
let settingsScope = { scope: "global", name: "" };

async function adminPage() {
  const sq = new URLSearchParams({ scope: settingsScope.scope });
  if (settingsScope.scope !== "global") sq.set(settingsScope.scope, settingsScope.name);
  const [offerings, hosts, storages, accounts, settings, zones, joins, tokens] = await Promise.all([
    api("GET", "/offerings"), api("GET", "/hosts"), api("GET", "/storages"), api("GET", "/accounts"), api("GET", "/settings?" + sq),
    api("GET", "/zones"), api("GET", "/join-tokens"), api("GET", "/tokens")]);
  const scopeSel = el("select", { id: "settings-scope", "aria-label": "Scope" }, ["global", "zone", "host", "account"].map((x) => el("option", { value: x, selected: x === settingsScope.scope }, x)));
  const names = { zone: zones.map((z) => z.name), host: hosts.map((h) => h.name), account: accounts.map((a) => a.name) };
  const nameSel = el("select", { id: "settings-scope-name", "aria-label": "Scope name", hidden: settingsScope.scope === "global" },
    (names[settingsScope.scope] || []).map((n) => el("option", { value: n, selected: n === settingsScope.name }, n)));
  scopeSel.addEventListener("change", () => { settingsScope = { scope: scopeSel.value, name: (names[scopeSel.value] || [""])[0] || "" }; route(); });
  nameSel.addEventListener("change", () => { settingsScope = { scope: scopeSel.value, name: nameSel.value }; route(); });
  const simple = (cols, list, fn) => el("table", {}, el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, c)))), el("tbody", {}, list.map((x) => el("tr", {}, fn(x).map((v) => el("td", {}, v))))));
  main().replaceChildren(
    el("h1", {}, "Administration"),
    el("div", { class: "toolbar" },
      el("button", { type: "button", id: "offering-create", onclick: createOffering }, "New offering"),
      el("button", { type: "button", id: "account-create", onclick: createAccount }, "New account"),
      el("button", { type: "button", id: "token-create", onclick: () => createToken(accounts) }, "New API token"),
      el("button", { type: "button", id: "join-create", onclick: () => createJoinToken(zones) }, "New join token")),
    el("h2", {}, "Offerings"), simple(["Name", "Compress", "Validate", "Quick restore", "Chain size"], offerings, (o) => [o.name, String(o.compress), String(o.validate), String(o.allow_quick_restore), o.backup_chain_size == null ? "global" : String(o.backup_chain_size)]),
    el("h2", {}, "Hosts"), simple(["Name", "Zone", "State", "Libvirt"], hosts, (h) => [h.name, h.zone, h.enabled ? "enabled" : "disabled", `${h.libvirt_version}, seen ${age(h.last_seen)}`]),
    el("h2", {}, "Storages"), simple(["Name", "Path", "Capacity", "Free", "Used by knib"], storages, (s) => [s.name, s.path, bytes(s.capacity), bytes(s.free), bytes(s.used)]),
    el("h2", {}, "Zones"), simple(["Name", "Hosts", "Storages"], zones, (z) => [z.name, String(z.hosts), String(z.storages)]),
    el("h2", {}, "Join tokens"), simple(["ID", "Zone", "State", "Expires", "Used by"], joins, (j) => [j.id.slice(0, 8), j.zone, badge(j.state), fmtTime(j.expires_at), j.used_by || ""]),
    el("h2", {}, "API tokens"), simple(["ID", "Account", "Role", "Name", "Created", ""], tokens, (t) => [t.id.slice(0, 8), t.account, t.role, t.name, fmtTime(t.created),
      el("button", { type: "button", class: "danger", "data-token": t.id, onclick: () => revokeToken(t) }, "Revoke")]),
    el("h2", {}, "Accounts"), simple(["Name", "Created"], accounts, (a) => [a.name, fmtTime(a.created)]),
    el("h2", {}, "Settings"),
    el("div", { class: "toolbar" }, el("span", {}, "Effective values at"), scopeSel, nameSel),
    el("p", { class: "muted" }, "From says where a value comes from (default, or the scope that set it); one an agent reports is read-only; Settable at lists the scopes a setting may be set at."),
    simple(["Key", "Value", "From", "Settable at", ""], settings, (s) => [s.key, s.value, s.source, ["global"].concat(s.scopes || []).join(", "),
      s.source === "agent" ? badge("read-only") : el("button", { type: "button", "data-setting": s.key, onclick: () => setSetting(s) }, "Set")]));
  ready("admin");
}

function createOffering() {
  formDialog("offering", "New backup offering", [
    { name: "name", label: "Name", required: true },
    { name: "description", label: "Description" },
    { name: "compress", label: "compress backups in the background", type: "checkbox" },
    { name: "validate", label: "validate backups (boot them)", type: "checkbox" },
    { name: "allow_quick_restore", label: "allow quick restore", type: "checkbox", value: true },
    { name: "allow_extract_file", label: "allow file extraction", type: "checkbox", value: true },
    { name: "backup_chain_size", label: "Chain size (empty: the setting; 0: unlimited)", type: "number" },
    { name: "storage_tag", label: "Storage tag" },
  ], "Create", async (v) => {
    await api("POST", "/offerings", v);
    done(`Offering ${v.name} created.`);
  });
}

function createAccount() {
  formDialog("account", "New account", [{ name: "name", label: "Name", required: true }], "Create", async (v) => {
    await api("POST", "/accounts", v);
    done(`Account ${v.name} created; give it a password with knib account passwd, or a token.`);
  });
}

function createToken(accounts) {
  formDialog("token", "New API token", [
    { name: "account", label: "Account", type: "select", options: accounts.map((a) => [a.name, a.name]) },
    { name: "role", label: "Role", type: "select", options: [["user", "user"], ["admin", "admin"]], value: "user" },
    { name: "name", label: "Name", required: true },
  ], "Create", async (v) => {
    const t = await api("POST", "/tokens", v);
    done(`Token for ${v.account} (shown once): ${t.token}`);
  });
}

function revokeToken(t) {
  ask(`Revoke the token ${t.name}?`, [`It stops working at once for ${t.account}, and so do the console sessions started with it.`], "Revoke", "danger", async () => {
    try { await api("DELETE", `/tokens/${encodeURIComponent(t.id)}`); done(`Token ${t.name} revoked.`); } catch (e) { flash(e.message); }
  });
}

function createJoinToken(zones) {
  formDialog("join", "New join token for an agent", [
    { name: "zone", label: "Zone", type: "select", options: zones.map((z) => [z.name, z.name]) },
    { name: "ttl", label: "Valid for (Go duration)", value: "1h" },
  ], "Create", async (v) => {
    const t = await api("POST", "/join-tokens", v);
    done(`Join token (shown once): ${t.token} — run knib agent --join on the new host with it.`);
  });
}

function setSetting(st) {
  const scopes = ["global"].concat(st.scopes || []);
  formDialog("setting", `Set ${st.key}`, [
    { name: "value", label: `Value (${st.type}${st.unit ? ", " + st.unit : ""}; default ${st.default})`, value: st.value, required: true },
    { name: "scope", label: "Scope", type: "select", options: scopes.map((x) => [x, x]), value: "global" },
    { name: "name", label: "Zone, host or account name (not for global)" },
  ], "Set", async (v) => {
    const body = { value: v.value };
    if (v.scope !== "global") {
      if (!v.name) throw new Error(`scope ${v.scope} needs a ${v.scope} name`);
      body[v.scope] = v.name;
    }
    await api("PUT", `/settings/${encodeURIComponent(st.key)}`, body);
    done(`${st.key} set at ${v.scope}${v.name && v.scope !== "global" ? " " + v.name : ""}.`);
  });
}

// ---- Routing ------------------------------------------------------------

async function route() {
  flash("");
  delete document.body.dataset.ready;
  const h = location.hash || "#/";
  if (!session) {
    try { session = await api("GET", "/session"); } catch { session = null; }
  }
  showSession();
  if (!session || h === "#/login") { if (session && h === "#/login") { location.hash = "#/"; return; } loginPage(); return; }
  try {
    let m;
    if ((m = h.match(/^#\/vm\/(.+)$/))) await vmPage(decodeURIComponent(m[1]));
    else if ((m = h.match(/^#\/backup\/(.+)$/))) await backupPage(decodeURIComponent(m[1]));
    else if (h === "#/jobs") await jobsPage();
    else if (h === "#/audit") await auditPage();
    else if (h === "#/admin") await adminPage();
    else await dashboardPage();
  } catch (e) {
    main().replaceChildren(el("h1", {}, "Cannot show this page"), el("p", { id: "page-error" }, e.message));
    ready("error");
  }
  main().focus();
}

$("#logout").addEventListener("click", async () => {
  try { await api("DELETE", "/session"); } catch (e) { flash(e.message); }
  session = null;
  showSession();
  location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();
