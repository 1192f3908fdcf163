// healthd's dashboard: polls /status (and /api/history, /api/series for the charts) and
// draws them. Plain DOM and SVG, no library, no build step. Changing calls (approve,
// reject, pause, resume) send the bearer token kept in sessionStorage for this tab only.
"use strict";

const POLL_MS = 2000;
const HISTORY_MS = 4000;
const TOKEN_KEY = "healthd.token";
const RANK = { critical: 0, degraded: 1, unknown: 2, healthy: 3 };

const state = {
  snap: null,
  history: [],
  selected: null,       // container name whose charts are open
  series: null,         // its /api/series answer
  lastRowsKey: "",
  firstRenderMs: null,  // time from navigation start to the first container table
};
window.healthd = state; // for tests and the curious: what the page last saw

const $ = (id) => document.getElementById(id);

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function fmtBytes(b) {
  if (b == null) return "-";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(b) >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(b < 10 ? 1 : 0) : b.toFixed(0)) + " " + u[i];
}

function fmtDur(s) {
  if (s == null || !isFinite(s)) return "-";
  s = Math.max(0, s);
  if (s < 90) return s.toFixed(0) + " s";
  if (s < 5400) return (s / 60).toFixed(0) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(0) + " d";
}

function ago(now, t) { return t ? fmtDur(now - t) + " ago" : "-"; }

function clock(t) { return new Date(t * 1000).toLocaleTimeString(); }

function fmtValue(resource, v) {
  if (v == null) return "-";
  if (resource === "memory" || resource === "host_memory" || resource === "host_disk") return fmtBytes(v);
  if (resource === "cpu" || resource === "errors") return (v * 100).toFixed(0) + " %";
  if (resource === "latency") return (v * 1000).toFixed(0) + " ms";
  return String(Math.round(v));
}

function showMessage(text, kind) {
  const m = $("message");
  m.textContent = text;
  m.className = kind || "";
  m.hidden = !text;
}

// ---- the token and changing calls ------------------------------------------------------
function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function syncTokenForm() {
  const has = !!token();
  $("token").hidden = has;
  $("token-save").hidden = has;
  $("token-forget").hidden = !has;
}

async function change(path, body) {
  if (!token()) {
    showMessage("This needs healthd's bearer token: enter it above (it is kept for this tab only).");
    $("token").focus();
    return false;
  }
  let resp;
  try {
    resp = await fetch(path, {
      method: "POST",
      headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
  } catch (e) {
    showMessage("healthd did not answer: " + e);
    return false;
  }
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    syncTokenForm();
    showMessage("healthd refused the token (401): nothing was changed. Enter the right token and try again.");
    return false;
  }
  const text = await resp.text();
  if (!resp.ok) {
    showMessage(`healthd said ${resp.status}: ${text.trim()}`);
    return false;
  }
  showMessage(text.trim() || "done", "info");
  poll();
  return true;
}

// ---- fetching ------------------------------------------------------------------------------
async function getJSON(path) {
  const resp = await fetch(path, { cache: "no-store" });
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.json();
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    state.snap = await getJSON("/status");
    render();
    if (state.selected) await loadSeries(state.selected);
    if ($("message").textContent.startsWith("Cannot reach")) showMessage("");
  } catch (e) {
    showMessage("Cannot reach healthd's /status: " + e.message);
    $("engine").textContent = "healthd unreachable";
    $("engine").className = "pill bad";
  } finally {
    polling = false;
  }
}

async function pollHistory() {
  try {
    state.history = await getJSON("/api/history?limit=200");
    renderTimeline();
  } catch (e) {
    // The history is optional (an older healthd, a state file that cannot answer).
    $("timeline").innerHTML = `<li class="muted">history unavailable: ${esc(e.message)}</li>`;
  }
}

async function loadSeries(name) {
  try {
    state.series = await getJSON("/api/series?container=" + encodeURIComponent(name));
  } catch (e) {
    state.series = { container: name, series: [], error: e.message };
  }
  renderDetail();
}

// ---- rendering -----------------------------------------------------------------------------
function render() {
  const s = state.snap;
  const eng = $("engine");
  eng.textContent = (s.engine_connected ? "engine connected" : "engine DISCONNECTED") +
    (s.dry_run ? " · dry-run" : "");
  eng.className = "pill " + (s.engine_connected ? "ok" : "bad");
  const counts = {};
  for (const c of s.containers || []) counts[c.health] = (counts[c.health] || 0) + 1;
  $("counts").innerHTML = Object.keys(RANK).filter((h) => counts[h])
    .map((h) => `<span class="h-${h}">${counts[h]} ${h}</span>`).join(" · ");
  $("updated").textContent = "updated " + clock(s.now);
  renderSteer(s);
  renderHeld(s);
  renderGraphs(s.stacks || {});
  renderSwarm(s.swarm);
  renderRows();
  renderHost(s.host || []);
}

function renderSteer(s) {
  const pending = s.pending || [];
  const maint = s.maintenance || [];
  $("steer-count").textContent = pending.length || maint.length
    ? `${pending.length} awaiting approval, ${maint.length} paused` : "";
  $("pending").innerHTML = pending.length ? pending.map((p) => `
    <div class="pending-item" data-id="${esc(p.id)}">
      <b>${esc(p.action)} ${esc(p.target)}</b>
      <span>${esc(p.explain)}</span>
      <span class="muted">rule ${esc(p.rule)}; asked ${ago(s.now, p.created)}${p.expires ? "; expires in " + fmtDur(p.expires - s.now) : ""}</span>
      <button class="approve" data-id="${esc(p.id)}">Approve</button>
      <button class="reject" data-id="${esc(p.id)}">Reject</button>
    </div>`).join("") : `<p class="muted">No decision awaits approval.</p>`;
  $("maintenance").innerHTML = maint.map((m) => `
    <div class="maint-item" data-target="${esc(m.target)}">
      <b>paused: ${esc(m.target)}</b>
      <span>${esc(m.reason)}</span>
      <span class="muted">by ${esc(m.who)} ${ago(s.now, m.since)}${m.until ? "; resumes in " + fmtDur(m.until - s.now) : ""}</span>
      <button class="resume" data-target="${esc(m.target)}">Resume</button>
    </div>`).join("");
}

function heldReason(c) {
  if (c.held_by) return c.held_by;
  const d = c.decision || "";
  const i = d.indexOf(" [held: ");
  return i >= 0 ? d.slice(i + 8).replace(/\]$/, "") : "";
}

function renderHeld(s) {
  const held = (s.containers || []).filter((c) => heldReason(c));
  const lines = held.map((c) => `<li data-name="${esc(c.name)}"><b>${esc(c.name)}</b>: ` +
    `<span class="held-reason">${esc(heldReason(c))}</span><br><span class="muted">${esc(c.decision)}</span></li>`);
  for (const p of s.pending || []) {
    lines.push(`<li><b>${esc(p.target)}</b>: <span class="held-reason">awaiting approval</span> <span class="muted">${esc(p.explain)}</span></li>`);
  }
  for (const m of s.maintenance || []) {
    lines.push(`<li><b>${esc(m.target)}</b>: <span class="held-reason">maintenance: ${esc(m.reason)}</span></li>`);
  }
  $("held-count").textContent = lines.length ? `(${lines.length})` : "";
  $("held").innerHTML = lines.join("") || `<li class="muted">Nothing is held back.</li>`;
}

// Services of each stack in columns by depth (upstreams left), edges dependent -> upstream.
function renderGraphs(stacks) {
  const services = (stacks.services || []).filter((s) => s.stack || (s.depends_on || []).length);
  $("problems").innerHTML = (stacks.problems || [])
    .map((p) => `<p class="h-critical">stack problem: ${esc(p)}</p>`).join("");
  const byStack = new Map();
  for (const s of services) {
    const k = s.stack || "(no stack)";
    if (!byStack.has(k)) byStack.set(k, []);
    byStack.get(k).push(s);
  }
  const out = [];
  for (const [stack, svcs] of [...byStack.entries()].sort()) out.push(graphSVG(stack, svcs));
  $("graphs").innerHTML = out.join("") || `<p class="muted">No stacks (compose projects or healthd.depends_on labels).</p>`;
}

function graphSVG(stack, svcs) {
  const by = new Map(svcs.map((s) => [s.service, s]));
  const depth = new Map();
  const depthOf = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    const s = by.get(name);
    if (!s || seen.has(name)) return 0;
    seen.add(name);
    let d = 0;
    for (const up of s.depends_on || []) if (by.has(up)) d = Math.max(d, depthOf(up, seen) + 1);
    depth.set(name, d);
    return d;
  };
  for (const s of svcs) depthOf(s.service, new Set());
  const cols = new Map();
  for (const s of svcs) {
    const d = depth.get(s.service) || 0;
    if (!cols.has(d)) cols.set(d, []);
    cols.get(d).push(s);
  }
  const W = 150, H = 44, GX = 50, GY = 14;
  const pos = new Map();
  let maxRows = 0;
  for (const [d, list] of cols) {
    list.sort((a, b) => a.service.localeCompare(b.service));
    list.forEach((s, i) => pos.set(s.service, [8 + d * (W + GX), 8 + i * (H + GY)]));
    maxRows = Math.max(maxRows, list.length);
  }
  const width = 16 + cols.size * (W + GX) - GX;
  const height = 16 + maxRows * (H + GY) - GY;
  const edges = [];
  for (const s of svcs) {
    const [x1, y1] = pos.get(s.service);
    for (const up of s.depends_on || []) {
      if (!pos.has(up)) continue;
      const [x2, y2] = pos.get(up);
      edges.push(`<line class="edge" x1="${x1}" y1="${y1 + H / 2}" x2="${x2 + W}" y2="${y2 + H / 2}" stroke="#90a4ae" marker-end="url(#arrow)"/>`);
    }
  }
  const nodes = svcs.map((s) => {
    const [x, y] = pos.get(s.service);
    const colour = s.failing ? "#ffcdd2" : (s.waiting || []).length ? "#fff3e0" : "#c8e6c9";
    const short = s.stack ? s.service.slice(s.stack.length + 1) : s.service;
    const note = (s.waiting || []).length ? "waiting" : s.failing ? (s.reason || "failing") : "ok";
    return `<g class="node" data-service="${esc(s.service)}"><title>${esc(s.service)}: ${esc(s.reason || note)}${s.last_action ? "\nlast: " + esc(s.last_action) : ""}</title>
      <rect x="${x}" y="${y}" width="${W}" height="${H}" rx="5" fill="${colour}" stroke="#78909c"/>
      <text x="${x + 6}" y="${y + 16}" font-weight="600">${esc(short.slice(0, 22))}</text>
      <text x="${x + 6}" y="${y + 33}">${s.running}/${s.desired} · ${esc(note.slice(0, 18))}</text></g>`;
  });
  return `<div class="graph" data-stack="${esc(stack)}"><h3>${esc(stack)}</h3>
    <svg width="${width}" height="${height}" role="img" aria-label="dependencies of ${esc(stack)}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#90a4ae"/></marker></defs>
    ${edges.join("")}${nodes.join("")}</svg></div>`;
}

function renderSwarm(sw) {
  if (!sw || !(sw.services || []).length) { $("swarm").innerHTML = ""; return; }
  $("swarm").innerHTML = `<h3>Swarm (leader ${esc(sw.leader || "none")})</h3><table><tr><th>service</th><th>mode</th><th>tasks</th><th>update</th><th>decision</th></tr>` +
    sw.services.map((s) => `<tr><td>${esc(s.service)}</td><td>${esc(s.mode)}</td><td>${s.running}/${s.desired}</td><td>${esc(s.update_state || "-")}</td><td>${esc(s.decision || "-")}</td></tr>`).join("") + "</table>";
}

function memFrac(c) {
  const u = c.usage;
  return u && u.mem_bytes != null && u.mem_limit_bytes ? u.mem_bytes / u.mem_limit_bytes : null;
}

function soonestEta(c) {
  let best = null;
  const all = [...(c.forecasts || []), ...((c.signals && c.signals.forecasts) || [])];
  for (const f of all) if (f.eta_s != null && (best == null || f.eta_s < best)) best = f.eta_s;
  return best;
}

function forecastText(c) {
  const all = [...(c.forecasts || []), ...((c.signals && c.signals.forecasts) || [])];
  const parts = [];
  for (const f of all) {
    if (f.state === "learning") parts.push(`${f.resource} learning` + (f.samples_needed ? ` ${f.samples}/${f.samples_needed}` : ""));
    else if (f.eta_s != null) parts.push(`${f.resource} full in ${fmtDur(f.eta_s)}${f.alarm ? " ⚠" : ""}`);
  }
  return parts.join(", ") || (all.length ? "steady" : "-");
}

function bar(frac) {
  if (frac == null) return "-";
  const pct = Math.max(0, Math.min(1, frac)) * 100;
  return `<span class="bar${frac > 0.85 ? " hot" : ""}"><i style="width:${pct.toFixed(0)}%"></i></span> ${pct.toFixed(0)}%`;
}

function visibleRows() {
  const s = state.snap;
  const q = $("filter").value.trim().toLowerCase();
  const hf = $("health-filter").value;
  let rows = (s.containers || []).filter((c) => {
    if (hf === "problem" ? c.health === "healthy" : hf && c.health !== hf) return false;
    if (!q) return true;
    return [c.name, c.service, c.status, (c.reasons || []).join(" "), c.decision, c.last_action]
      .some((v) => v && String(v).toLowerCase().includes(q));
  });
  const key = {
    name: (c) => c.name,
    health: (c) => RANK[c.health] ?? 9,
    memory: (c) => -(memFrac(c) ?? -1),
    cpu: (c) => -((c.usage && c.usage.cpu_fraction) ?? -1),
    eta: (c) => soonestEta(c) ?? Infinity,
  }[$("sort").value] || ((c) => c.name);
  rows = rows.map((c) => [key(c), c]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 :
    a[1].name.localeCompare(b[1].name))).map((p) => p[1]);
  return rows;
}

function rowHTML(c, now) {
  const held = heldReason(c);
  const reason = (c.reasons || []).join("; ") || (c.status !== "running" ? c.status : "");
  const decision = c.decision ? `<div class="muted decision">${esc(c.decision)}</div>` : "";
  const last = c.last_action ? `${esc(c.last_action)} <span class="tag ${esc(c.last_action_outcome)}">${esc(c.last_action_outcome)}</span> <span class="muted">${ago(now, c.last_action_at)}</span>` : "-";
  const cpu = c.usage ? c.usage.cpu_fraction : null;
  return `<tr class="row${state.selected === c.name ? " selected" : ""}" data-name="${esc(c.name)}" data-health="${esc(c.health)}">
    <td>${esc(c.name)}</td><td>${esc(c.service || "-")}</td>
    <td class="h-${esc(c.health)}">${esc(c.health)}</td>
    <td class="reason">${esc(reason || "-")}${held ? ` <b>held: ${esc(held)}</b>` : ""}${decision}</td>
    <td>${bar(memFrac(c))}${c.usage && c.usage.mem_bytes != null ? " " + fmtBytes(c.usage.mem_bytes) : ""}</td>
    <td>${bar(cpu)}</td><td>${esc(forecastText(c))}</td><td>${last}</td></tr>`;
}

function renderRows() {
  const s = state.snap;
  const rows = visibleRows();
  const group = $("group").checked;
  const key = JSON.stringify([s.now, rows.length, $("filter").value, $("health-filter").value,
    $("sort").value, group, state.selected]);
  if (key === state.lastRowsKey) return;
  state.lastRowsKey = key;
  const parts = [];
  if (group) {
    const groups = new Map();
    for (const c of rows) {
      const svc = c.service || "";
      const stack = svc.includes("/") ? svc.split("/")[0] : "(no stack)";
      if (!groups.has(stack)) groups.set(stack, []);
      groups.get(stack).push(c);
    }
    for (const [stack, list] of [...groups.entries()].sort((a, b) =>
      (a[0] === "(no stack)") - (b[0] === "(no stack)") || a[0].localeCompare(b[0]))) {
      parts.push(`<tr class="group"><td colspan="8">${esc(stack)} <span class="muted">${list.length}</span></td></tr>`);
      for (const c of list) parts.push(rowHTML(c, s.now));
    }
  } else {
    for (const c of rows) parts.push(rowHTML(c, s.now));
  }
  $("rows").innerHTML = parts.join("");
  $("shown").textContent = `(${rows.length} of ${(s.containers || []).length} shown)`;
  if (state.firstRenderMs == null) {
    state.firstRenderMs = performance.now();
    document.body.dataset.firstRenderMs = state.firstRenderMs.toFixed(0);
  }
}

function renderTimeline() {
  const now = state.snap ? state.snap.now : Date.now() / 1000;
  $("timeline").innerHTML = state.history.map((r) => `<li data-id="${r.id}" data-container="${esc(r.container)}">
    <span class="muted">${clock(r.at)}</span> <span class="tag ${esc(r.outcome)}">${esc(r.outcome)}</span>
    <span class="explanation">${esc(r.explanation)}</span>${r.error ? ` <span class="h-critical">error: ${esc(r.error)}</span>` : ""}
    <span class="muted">${ago(now, r.at)}</span></li>`).join("") || `<li class="muted">No decision recorded yet.</li>`;
}

function renderHost(rows) {
  $("host").innerHTML = rows.map((h) => `<div>${esc(h.resource)}: ${fmtValue(h.resource, h.value)} of ${fmtValue(h.resource, h.limit)}` +
    (h.eta_s != null ? ` · full in ${fmtDur(h.eta_s)}` : h.state === "learning" ? ` · learning ${h.samples}/${h.samples_needed}` : " · steady") + "</div>").join("") ||
    `<p class="muted">No host figures yet.</p>`;
}

// ---- charts ----------------------------------------------------------------------------
function chartSVG(sr) {
  const W = 440, H = 190, L = 62, R = 12, T = 36, B = 22;
  const pts = sr.points || [];
  const fc = sr.forecast || [];
  if (!pts.length) return `<svg class="chart" data-resource="${esc(sr.resource)}" width="${W}" height="${H}"><text x="10" y="20">${esc(sr.resource)}: no samples yet</text></svg>`;
  const last = pts[pts.length - 1];
  const t0 = pts[0][0];
  const seen = Math.max(last[0] - t0, 1);
  // Far enough right to show the predicted exhaustion and its interval, but never so far
  // that the samples shrink to a sliver: at most 3x what was seen, or 2 minutes.
  const reach = last[0] + Math.max(3 * seen, 120);
  let t1 = last[0];
  for (const p of fc) t1 = Math.max(t1, Math.min(p[0], reach));
  const hasEta = sr.eta_s != null && sr.at != null;
  if (hasEta) t1 = Math.max(t1, Math.min(sr.at + (sr.upper_s ?? sr.eta_s) * 1.05, reach));
  if (t1 <= t0) t1 = t0 + 1;
  let vmax = sr.limit || 0;
  for (const p of pts) vmax = Math.max(vmax, p[1]);
  vmax = vmax > 0 ? vmax * 1.08 : 1;
  const cx = (t) => Math.max(L, Math.min(W - R, L + (W - L - R) * (t - t0) / (t1 - t0)));
  const y = (v) => T + (H - T - B) * (1 - Math.max(0, Math.min(v, vmax)) / vmax);
  const poly = (ps) => ps.map((p, i) => (i ? "L" : "M") + cx(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join("");
  const parts = [`<line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/>`,
    `<line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/>`,
    `<text x="2" y="${T + 4}">${fmtValue(sr.resource, vmax)}</text>`,
    `<text x="2" y="${H - B}">0</text>`,
    `<text x="${L}" y="${H - 6}">${clock(t0)}</text>`,
    `<text x="${W - R}" y="${H - 6}" text-anchor="end">${clock(t1)}</text>`];
  if (sr.limit) {
    parts.push(`<line class="limit" x1="${L}" y1="${y(sr.limit)}" x2="${W - R}" y2="${y(sr.limit)}"/>`,
      `<text x="${L + 4}" y="${y(sr.limit) - 3}" fill="#c62828">limit ${fmtValue(sr.resource, sr.limit)}</text>`);
  }
  let eta;
  if (hasEta) {
    // No upper bound: the limit may never be reached at the slowest rate the data allows.
    const lo = sr.at + (sr.lower_s ?? sr.eta_s), hi = sr.upper_s != null ? sr.at + sr.upper_s : t1;
    const vy = y(sr.value ?? last[1]), ly = y(sr.limit || vmax);
    // The interval of the exhaustion time: a cone from the last sample to the limit.
    parts.push(`<polygon class="interval" points="${cx(sr.at)},${vy} ${cx(lo)},${ly} ${cx(hi)},${ly}"><title>exhaustion between ${clock(lo)} and ${clock(hi)}</title></polygon>`);
    const xe = cx(sr.at + sr.eta_s);
    parts.push(`<line class="eta-line" x1="${xe}" y1="${T}" x2="${xe}" y2="${H - B}"/>`);
    const beyond = sr.at + sr.eta_s > t1 ? " →" : "";
    eta = `exhaustion at ${clock(sr.at + sr.eta_s)}${beyond} (in ${fmtDur(sr.eta_s)}, ${sr.lower_s != null ? fmtDur(sr.lower_s) : "?"}–${sr.upper_s != null ? fmtDur(sr.upper_s) : "∞"})${sr.alarm ? " ⚠ alarm" : ""}`;
  } else if (sr.state === "learning") {
    eta = "forecast: learning";
  } else {
    eta = "forecast: not heading for its limit";
  }
  parts.push(`<path class="samples" d="${poly(pts)}"/>`);
  if (fc.length) parts.push(`<path class="forecast" d="${poly(fc)}"><title>forecast</title></path>`);
  const title = `${sr.resource} ${fmtValue(sr.resource, sr.value)}${sr.limit ? " of " + fmtValue(sr.resource, sr.limit) : ""}`;
  parts.push(`<text x="4" y="13" font-weight="600">${esc(title)}</text>`,
    `<text class="eta${hasEta ? " h-critical" : ""}" x="4" y="28">${esc(eta)}</text>`);
  return `<svg class="chart" data-resource="${esc(sr.resource)}" data-forecast="${fc.length ? "yes" : "no"}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${parts.join("")}</svg>`;
}

function renderDetail() {
  const d = $("detail");
  if (!state.selected) { d.hidden = true; d.innerHTML = ""; return; }
  const c = ((state.snap && state.snap.containers) || []).find((x) => x.name === state.selected);
  const sr = state.series && state.series.container === state.selected ? state.series : null;
  d.hidden = false;
  d.innerHTML = `<div><b>${esc(state.selected)}</b> ${c ? `<span class="h-${esc(c.health)}">${esc(c.health)}</span> · ${esc(c.decision || c.last_action || "nothing to do")}` : "(gone)"}
    <button id="detail-close" type="button">close</button></div>
    <div class="charts">${sr ? (sr.series.length ? sr.series.map(chartSVG).join("") : `<p class="muted">${esc(sr.error || "no series yet")}</p>`) : "loading…"}</div>`;
}

function select(name) {
  state.selected = name;
  state.series = null;
  state.lastRowsKey = "";
  history.replaceState(null, "", name ? "#container=" + encodeURIComponent(name) : "#");
  renderDetail();
  if (state.snap) renderRows();
  if (name) loadSeries(name);
}

// ---- wiring ----------------------------------------------------------------------------
function wire() {
  for (const id of ["filter", "health-filter", "sort", "group"]) {
    $(id).addEventListener("input", () => state.snap && renderRows());
    $(id).addEventListener("change", () => state.snap && renderRows());
  }
  $("rows").addEventListener("click", (e) => {
    const tr = e.target.closest("tr.row");
    if (tr) select(tr.dataset.name === state.selected ? null : tr.dataset.name);
  });
  $("detail").addEventListener("click", (e) => { if (e.target.id === "detail-close") select(null); });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("token").value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    $("token").value = "";
    syncTokenForm();
    showMessage(v ? "Token kept for this tab." : "", "info");
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    syncTokenForm();
  });
  $("steer").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.classList.contains("approve")) change("/api/approve/" + encodeURIComponent(b.dataset.id));
    else if (b.classList.contains("reject")) change("/api/reject/" + encodeURIComponent(b.dataset.id));
    else if (b.classList.contains("resume")) change("/api/resume", { target: b.dataset.target });
  });
  $("pause-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const m = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/.exec($("pause-for").value.trim());
    if (!m) { showMessage("pause for: a duration such as 90s, 30m, 2h or 1d"); return; }
    const forS = parseFloat(m[1]) * ({ s: 1, m: 60, h: 3600, d: 86400 }[m[2] || "s"]);
    change("/api/pause", { target: $("pause-target").value.trim() || "host", for_s: forS,
      reason: $("pause-reason").value.trim(), who: "dashboard" });
  });
  const h = /container=([^&]+)/.exec(location.hash);
  if (h) select(decodeURIComponent(h[1]));
  syncTokenForm();
}

wire();
poll();
pollHistory();
setInterval(poll, POLL_MS);
setInterval(pollHistory, HISTORY_MS);
