// DAGGER explorer: the live DAG of the node serving this page, drawn on a
// canvas (one lane per creator, newest rounds on top), fed by the node's
// server-sent events stream (/dag/stream). Plain JS, no dependencies.
"use strict";

// Errors are collected where a test (or a curious operator) can read them.
const errors = [];
window.addEventListener("error", (e) => errors.push(String(e.message || e)));
window.addEventListener("unhandledrejection", (e) => errors.push(String(e.reason)));
const consoleError = console.error.bind(console);
console.error = (...args) => { errors.push(args.map(String).join(" ")); consoleError(...args); };

const MAX_EVENTS = 10000;
const ROUND_H = 64;
const GUTTER = 56;
const R = 5;

const S = {
  node: "",
  decided: 0,
  pruned: 0,
  creators: [],           // [{id, stake}] in roster order
  lanes: new Map(),       // creator id -> lane index
  accused: new Set(),     // creators this node holds evidence against
  events: new Map(),      // id -> event
  bySlot: new Map(),      // "creator:seq" -> [ids] (more than one: a fork)
  maxRound: 0,
  minRound: Infinity,
  topRound: null,         // the round drawn at the top (null: follow newest)
  selected: null,
  positions: [],          // [x, y, id] of what was drawn last, for clicks
  frames: 0,
  lastRenderMs: 0,
};

const canvas = document.getElementById("dag");
const ctx = canvas.getContext("2d");
const scroller = document.getElementById("dag-scroll");
const follow = document.getElementById("follow");

function short(id) { return id ? id.slice(0, 8) : ""; }
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }
function laneOf(creator) {
  if (!S.lanes.has(creator)) {
    S.lanes.set(creator, S.lanes.size);
    renderLanes();
  }
  return S.lanes.get(creator);
}

function isFork(ev) {
  const slot = S.bySlot.get(ev.creator + ":" + ev.seq);
  return !!slot && slot.length > 1;
}

function merge(msg) {
  S.node = msg.node;
  S.decided = msg.last_decided_round;
  S.pruned = msg.pruned_through;
  if (msg.creators.length) {
    S.creators = msg.creators;
    for (const c of msg.creators) laneOf(c.id);
  }
  const accused = new Set(msg.accused);
  const changed = accused.size !== S.accused.size || [...accused].some((c) => !S.accused.has(c));
  S.accused = accused;
  if (changed) renderLanes();
  for (const ev of msg.events) {
    const known = S.events.get(ev.id);
    if (!known) {
      const key = ev.creator + ":" + ev.seq;
      const slot = S.bySlot.get(key) || [];
      slot.push(ev.id);
      S.bySlot.set(key, slot);
      laneOf(ev.creator);
    }
    S.events.set(ev.id, Object.assign(known || {}, ev));
    S.maxRound = Math.max(S.maxRound, ev.round);
    S.minRound = Math.min(S.minRound, ev.round);
  }
  trim();
  document.getElementById("node").textContent = "node " + short(S.node);
  document.getElementById("rounds").textContent =
    "decided round " + S.decided + " · newest round " + S.maxRound + " · " + S.events.size + " events in view";
  dirty();
}

// Keep at most MAX_EVENTS, dropping the oldest rounds first.
function trim() {
  if (S.events.size <= MAX_EVENTS) return;
  const sorted = [...S.events.values()].sort((a, b) => a.round - b.round || a.seq - b.seq);
  for (const ev of sorted.slice(0, S.events.size - MAX_EVENTS)) {
    S.events.delete(ev.id);
    const key = ev.creator + ":" + ev.seq;
    const slot = (S.bySlot.get(key) || []).filter((id) => id !== ev.id);
    if (slot.length) S.bySlot.set(key, slot); else S.bySlot.delete(key);
  }
  S.minRound = Infinity;
  for (const ev of S.events.values()) S.minRound = Math.min(S.minRound, ev.round);
}

function renderLanes() {
  const el = document.getElementById("lanes");
  const width = laneWidth();
  el.innerHTML = "";
  for (const [id] of [...S.lanes.entries()].sort((a, b) => a[1] - b[1])) {
    const d = document.createElement("div");
    d.style.width = width + "px";
    const stake = (S.creators.find((c) => c.id === id) || {}).stake;
    d.textContent = short(id) + (id === S.node ? " (this node)" : "");
    d.title = id + (stake !== undefined ? " · stake " + stake : " · not in the roster");
    d.dataset.creator = id;
    if (S.accused.has(id)) { d.className = "accused"; d.textContent += " · fork"; }
    el.appendChild(d);
  }
}

function laneWidth() {
  return Math.max(48, (scroller.clientWidth - GUTTER) / Math.max(1, S.lanes.size));
}

let pending = false;
function dirty() {
  if (!pending) { pending = true; requestAnimationFrame(render); }
}

// Where each event sits: its lane, and inside its round's band spaced by
// sequence number among its creator's events of that round.
function layout(top, bottom) {
  const groups = new Map();
  for (const ev of S.events.values()) {
    if (ev.round > top || ev.round < bottom) continue;
    const key = ev.creator + "@" + ev.round;
    const g = groups.get(key);
    if (g) g.push(ev); else groups.set(key, [ev]);
  }
  const pos = new Map();
  const w = laneWidth();
  for (const g of groups.values()) {
    g.sort((a, b) => a.seq - b.seq || (a.id < b.id ? -1 : 1));
    g.forEach((ev, k) => {
      const lane = S.lanes.get(ev.creator) || 0;
      const forkShift = isFork(ev) ? ((S.bySlot.get(ev.creator + ":" + ev.seq) || []).indexOf(ev.id) * 8 - 4) : 0;
      const x = GUTTER + lane * w + w / 2 + forkShift;
      const y = (top - ev.round) * ROUND_H + ROUND_H - (k + 0.5) * (ROUND_H / g.length);
      pos.set(ev.id, [x, y]);
    });
  }
  return pos;
}

function render() {
  pending = false;
  const started = performance.now();
  const dpr = window.devicePixelRatio || 1;
  const w = scroller.clientWidth, h = scroller.clientHeight;
  if (canvas.width !== w * dpr || canvas.height !== h * dpr) {
    canvas.width = w * dpr; canvas.height = h * dpr;
    canvas.style.width = w + "px"; canvas.style.height = h + "px";
    renderLanes();
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  if (follow.checked || S.topRound === null) S.topRound = S.maxRound;
  const top = S.topRound;
  const bottom = top - Math.ceil(h / ROUND_H);
  // Round bands.
  for (let r = top; r >= bottom; r--) {
    const y = (top - r) * ROUND_H;
    ctx.fillStyle = r % 2 ? "#ffffff" : "#f1f3f6";
    ctx.fillRect(0, y, w, ROUND_H);
    ctx.fillStyle = r <= S.decided ? "#2fa84f" : "#7a8394";
    ctx.font = "11px system-ui";
    ctx.fillText("r" + r, 6, y + 14);
  }
  // The decided frontier: everything below it has its fame decided.
  const fy = (top - S.decided) * ROUND_H;
  ctx.strokeStyle = "#2fa84f"; ctx.setLineDash([6, 4]); ctx.lineWidth = 2;
  ctx.beginPath(); ctx.moveTo(0, fy); ctx.lineTo(w, fy); ctx.stroke();
  ctx.setLineDash([]);

  const pos = layout(top, bottom - 3);
  // Parent edges first, under the events.
  ctx.lineWidth = 1;
  for (const [id, [x, y]] of pos) {
    const ev = S.events.get(id);
    for (const [p, colour] of [[ev.self_parent, "#b8c0cc"], [ev.other_parent, "#8fa6cc"]]) {
      const pp = p && pos.get(p);
      if (!pp) continue;
      ctx.strokeStyle = colour;
      ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(pp[0], pp[1]); ctx.stroke();
    }
  }
  S.positions = [];
  for (const [id, [x, y]] of pos) {
    if (y < -R || y > h + R) continue;
    const ev = S.events.get(id);
    const r = ev.witness ? R + 2 : R;
    ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
    if (isFork(ev)) ctx.fillStyle = "#d62f2f";
    else if (ev.witness && ev.famous === true) ctx.fillStyle = "#e0a800";
    else if (ev.witness && ev.famous === false) ctx.fillStyle = "#9aa3b0";
    else ctx.fillStyle = ev.ordered ? "#2f6fd6" : "#ffffff";
    ctx.fill();
    ctx.lineWidth = ev.witness ? 2 : 1.5;
    ctx.strokeStyle = ev.witness ? "#1d2330" : "#2f6fd6";
    ctx.stroke();
    if (id === S.selected) {
      ctx.strokeStyle = "#d6742f"; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.arc(x, y, r + 4, 0, 2 * Math.PI); ctx.stroke();
    }
    S.positions.push([x, y, id]);
  }
  S.frames++;
  S.lastRenderMs = performance.now() - started;
}

canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  follow.checked = false;
  const step = Math.sign(e.deltaY) * Math.max(1, Math.round(Math.abs(e.deltaY) / ROUND_H));
  S.topRound = Math.min(S.maxRound, Math.max(S.minRound, (S.topRound || S.maxRound) - step));
  dirty();
}, { passive: false });
follow.addEventListener("change", dirty);
window.addEventListener("resize", dirty);

canvas.addEventListener("click", (e) => {
  const rect = canvas.getBoundingClientRect();
  const x = e.clientX - rect.left, y = e.clientY - rect.top;
  let best = null, bestD = 12 * 12;
  for (const [px, py, id] of S.positions) {
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d < bestD) { best = id; bestD = d; }
  }
  if (best) select(best);
});

function time(ns) {
  return ns ? new Date(ns / 1e6).toISOString().replace("T", " ").replace("Z", "") : "—";
}

async function select(id) {
  S.selected = id;
  dirty();
  const el = document.getElementById("details");
  el.innerHTML = "<h2>Event</h2><p class='hint'>loading " + esc(short(id)) + "…</p>";
  const res = await fetch("/events/" + id);
  if (!res.ok) {
    el.innerHTML = "<h2>Event</h2><p class='bad'>" + esc((await res.json()).error || res.status) + "</p>";
    return;
  }
  const e = await res.json();
  const held = S.events.get(id) || {};
  const link = (p) => p ? "<a class='ev' data-id='" + p + "'>" + short(p) + "</a>" : "—";
  const rows = [
    ["id", "<code id='detail-id'>" + e.id + "</code>"],
    ["creator", "<code>" + esc(e.creator) + "</code>" + (S.accused.has(e.creator) ? " <b class='bad'>forked</b>" : "")],
    ["sequence", e.seq],
    ["round", e.round ?? "—"],
    ["witness", e.witness ? "yes" : "no"],
    ["famous", e.famous === null || e.famous === undefined ? (e.witness ? "undecided" : "—") : e.famous ? "yes" : "no"],
    ["ordered", e.ordered ? "yes" : "not yet"],
    ["self-parent", link(e.self_parent)],
    ["other-parent", link(e.other_parent)],
    ["created (creator's clock)", time(e.created_at_ns)],
    ["received here", time(held.received_ns)],
    ["ordered here", time(held.ordered_ns)],
    ["transactions root", "<code>" + e.txs_root + "</code>"],
  ];
  let html = "<h2>Event " + esc(short(e.id)) + "</h2><table>" +
    rows.map(([k, v]) => "<tr><th>" + k + "</th><td>" + v + "</td></tr>").join("") + "</table>";
  html += "<h2>" + e.transactions.length + " transaction(s)</h2>";
  e.transactions.forEach((tx, i) => {
    const report = e.reports && e.reports[i];
    html += report
      ? "<pre class='tx report'>" + esc(JSON.stringify(report, null, 1)) + "</pre>"
      : "<pre class='tx'>" + esc(tx.length > 96 ? tx.slice(0, 96) + "… (" + tx.length / 2 + " bytes)" : tx) + "</pre>";
  });
  el.innerHTML = html;
  for (const a of el.querySelectorAll("a.ev")) a.addEventListener("click", () => select(a.dataset.id));
}

// Live feed.
function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/dag/stream");
  source.addEventListener("dag", (e) => {
    live.textContent = "live"; live.className = "on";
    merge(JSON.parse(e.data));
  });
  source.onerror = () => { live.textContent = "reconnecting"; live.className = "off"; };
}

// Side panels, from the node's other read-only routes.
const series = { tps: [], fin: [], rounds: [] };
let lastMetrics = null;
function metricValue(text, name) {
  const m = text.match(new RegExp("^" + name + "(?:\\{[^}]*\\})? ([0-9.eE+-]+)$", "m"));
  return m ? parseFloat(m[1]) : NaN;
}
function spark(id, values, label) {
  const c = document.getElementById(id), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return;
  const max = Math.max(...finite, 1e-9);
  g.strokeStyle = "#2f6fd6"; g.lineWidth = 1.5; g.beginPath();
  values.forEach((v, i) => {
    const x = (i / 59) * c.width, y = c.height - 2 - (Number.isFinite(v) ? v / max : 0) * (c.height - 4);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
  document.getElementById(label).textContent = finite[finite.length - 1].toFixed(2);
}
async function metrics() {
  const text = await (await fetch("/metrics")).text();
  const now = performance.now() / 1000;
  const m = {
    t: now,
    tps: metricValue(text, "dagger_ordered_tps"),
    sum: metricValue(text, "dagger_finality_latency_seconds_sum"),
    count: metricValue(text, "dagger_finality_latency_seconds_count"),
    rounds: metricValue(text, "dagger_rounds_decided_total"),
  };
  if (lastMetrics) {
    const dt = m.t - lastMetrics.t;
    const dc = m.count - lastMetrics.count;
    const push = (k, v) => { series[k].push(v); if (series[k].length > 60) series[k].shift(); };
    push("tps", m.tps);
    push("fin", dc > 0 ? (m.sum - lastMetrics.sum) / dc : NaN);
    push("rounds", (m.rounds - lastMetrics.rounds) / dt);
    spark("spark-tps", series.tps, "v-tps");
    spark("spark-fin", series.fin, "v-fin");
    spark("spark-rounds", series.rounds, "v-rounds");
  }
  lastMetrics = m;
}
function table(id, head, rows) {
  document.getElementById(id).innerHTML =
    "<tr>" + head.map((h) => "<th>" + h + "</th>").join("") + "</tr>" +
    rows.map((r) => "<tr>" + r.map((c) => "<td>" + c + "</td>").join("") + "</tr>").join("");
}
async function panels() {
  const status = await (await fetch("/status")).json();
  const newest = new Map();
  for (const ev of S.events.values()) newest.set(ev.creator, Math.max(newest.get(ev.creator) || 0, ev.round));
  table("roster", ["creator", "stake", "newest round", "behind"], S.creators.map((c) => [
    "<code>" + esc(short(c.id)) + "</code>" + (S.accused.has(c.id) ? " <b class='bad'>fork</b>" : ""),
    c.stake, newest.get(c.id) ?? "—", newest.has(c.id) ? S.maxRound - newest.get(c.id) : "—"]));
  table("peers", ["peer", "connected", "last sync", "failures", "shut out"], (status.peers || []).map((p) => [
    "<code>" + esc(short(p.id)) + "</code>", p.connected ? "yes" : "<b class='bad'>no</b>",
    p.last_sync_ms_ago === null ? "never" : p.last_sync_ms_ago + " ms ago", p.failures,
    p.banned_for_ms ? p.banned_for_ms + " ms" : ""]));
  const total = status.ordered_txs || 0;
  if (total > (status.order_starts_at || 0)) {
    const from = Math.max(status.order_starts_at || 0, total - 15);
    const order = await (await fetch("/order?from=" + from + "&limit=15")).json();
    table("order", ["#", "consensus time", "event", "bytes"], order.slice().reverse().map((t) => [
      t.position, time(t.consensus_time_ns), "<a class='ev' data-id='" + t.event_id + "'>" + short(t.event_id) + "</a>",
      t.tx.length / 2]));
    for (const a of document.querySelectorAll("#order a.ev")) a.addEventListener("click", () => select(a.dataset.id));
  }
  const evidence = await (await fetch("/evidence")).json();
  document.getElementById("evidence").innerHTML = evidence.length
    ? evidence.map((e) => "<div class='bad'>fork by <code>" + esc(e.creator) + "</code></div>").join("")
    : "<span class='hint'>none</span>";
  const chain = status.chain;
  document.getElementById("leases").innerHTML = chain
    ? "<table><tr><th>provisioner</th><td>" + esc(chain.provisioner) + "</td></tr><tr><th>leases here</th><td>" +
      chain.leases_here + "</td></tr><tr><th>being provisioned here</th><td>" + chain.provisioning_here +
      "</td></tr><tr><th>roster (nodes)</th><td>" + chain.roster + "</td></tr></table>" +
      (chain.leases.length
        ? "<table id='lease-list'><tr><th>request</th><th>VM</th><th>endpoint</th></tr>" +
          chain.leases.map((l) => "<tr data-request='" + esc(l.request) + "'><td><code>" + esc(short(l.request)) +
            "</code></td><td>" + (l.running ? "running" : "starting") + "</td><td><code>" +
            esc(l.endpoint || "—") + "</code></td></tr>").join("") + "</table>"
        : "")
    : "<span class='hint'>not a chain-backed node</span>";
}
async function poll() {
  try { await Promise.all([panels(), metrics()]); } catch (e) { errors.push("panel refresh: " + e); }
  setTimeout(poll, 2000);
}

window.explorer = { state: S, errors, select, render, merge };
connect();
poll();
