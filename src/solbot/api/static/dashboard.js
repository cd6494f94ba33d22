// SOL-Bot live dashboard: one GET of /api/dashboard, then server-sent events (with a token
// configured: opened with a ticket bought with the token, else the JSON view polled).
"use strict";

const REGIME_COLOURS = {
  UPTREND: "rgba(38,166,154,0.13)",
  DOWNTREND: "rgba(239,83,80,0.13)",
  RANGE: "rgba(121,134,203,0.15)",
  EMERGENCY: "rgba(255,183,77,0.30)",
};
const MAX_BARS = 300;
const state = { bars: new Map(), regimes: new Map(), equity: new Map(), fills: new Map(), last: null };
let symbol = new URLSearchParams(location.search).get("symbol"); // null: the bot's first symbol
let source = null; // the open EventSource
let token = null; // kept in memory only: never stored, sent only to the control and ticket routes
const $ = (id) => document.getElementById(id);
window.__dashboardLoadId = Math.random().toString(36).slice(2); // tests: proves no reload

const PLOT_LAYOUT = {
  paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
  font: { color: "#e6e8ee", size: 11 }, margin: { l: 8, r: 64, t: 20, b: 28 },
  showlegend: false, hovermode: "x unified",
  xaxis: { type: "date", gridcolor: "#262b35", rangeslider: { visible: false } },
  yaxis: { gridcolor: "#262b35", side: "right" },
};
const PLOT_CONFIG = { displayModeBar: false, responsive: true };

function num(s) { return s === null || s === undefined ? NaN : Number(s); }
function fmt(v, digits = 2) {
  const n = num(v);
  return Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "—";
}
function signed(el, v, digits = 2) {
  const n = num(v);
  el.textContent = (n > 0 ? "+" : "") + fmt(v, digits);
  el.classList.toggle("pos", n > 0);
  el.classList.toggle("neg", n < 0);
}
function duration(sec) {
  sec = Math.floor(sec);
  const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s}s`;
}
function qtyDigits(q) { const n = Math.abs(num(q)); return n > 0 && n < 1 ? 5 : 3; } // 0.01234 BTC, 12.345 SOL
function utc(ms) { return new Date(ms).toISOString().replace("T", " ").slice(0, 16); }
function say(text, kind = "info") { const m = $("message"); m.textContent = text; m.className = kind; }

function merge(view) {
  view.bars.forEach((b, i) => { state.bars.set(b[0], b); state.regimes.set(b[0], view.regimes[i]); });
  const keys = [...state.bars.keys()].sort((a, b) => a - b);
  for (const k of keys.slice(0, Math.max(0, keys.length - MAX_BARS))) { state.bars.delete(k); state.regimes.delete(k); }
  view.equity.forEach(([ts, v]) => state.equity.set(ts, v));
  view.fills.forEach((f) => state.fills.set(`${f.ts}|${f.side}|${f.price}|${f.qty}`, f));
  state.last = view;
}

function regimeShapes(bars) {
  const shapes = [];
  let start = null, current = null;
  const close = (endTs) => {
    if (current && REGIME_COLOURS[current]) {
      shapes.push({ type: "rect", xref: "x", yref: "paper", x0: start, x1: endTs, y0: 0, y1: 1,
                    fillcolor: REGIME_COLOURS[current], line: { width: 0 }, layer: "below" });
    }
  };
  for (const b of bars) {
    const r = state.regimes.get(b[0]);
    if (r !== current) { close(b[0]); start = b[0]; current = r; }
  }
  if (bars.length) close(bars[bars.length - 1][0]);
  return shapes;
}

function drawPrice() {
  const bars = [...state.bars.values()].sort((a, b) => a[0] - b[0]);
  const x = bars.map((b) => new Date(b[0]));
  const first = bars.length ? bars[0][0] : 0;
  const fills = [...state.fills.values()].filter((f) => f.ts >= first);
  const side = (s) => fills.filter((f) => f.side === s);
  const traces = [
    { type: "candlestick", name: state.last.symbol, x, open: bars.map((b) => b[1]), high: bars.map((b) => b[2]),
      low: bars.map((b) => b[3]), close: bars.map((b) => b[4]),
      increasing: { line: { color: "#26a69a" } }, decreasing: { line: { color: "#ef5350" } } },
    { type: "scatter", mode: "markers", name: "buy", x: side("buy").map((f) => new Date(f.ts)),
      y: side("buy").map((f) => num(f.price)), marker: { symbol: "triangle-up", size: 10, color: "#26a69a", line: { color: "#fff", width: 1 } } },
    { type: "scatter", mode: "markers", name: "sell", x: side("sell").map((f) => new Date(f.ts)),
      y: side("sell").map((f) => num(f.price)), marker: { symbol: "triangle-down", size: 10, color: "#ef5350", line: { color: "#fff", width: 1 } } },
  ];
  const regime = state.regimes.get(bars.length ? bars[bars.length - 1][0] : 0) || "—";
  Plotly.react("price-chart", traces, { ...PLOT_LAYOUT, shapes: regimeShapes(bars),
    annotations: [{ xref: "paper", yref: "paper", x: 0, y: 1, xanchor: "left", yanchor: "top", showarrow: false,
                    text: `regime: ${regime}`, font: { color: "#8a92a3" } }] }, PLOT_CONFIG);
}

function drawEquity() {
  const pts = [...state.equity.entries()].sort((a, b) => a[0] - b[0]);
  let peak = -Infinity;
  const dd = pts.map(([, v]) => { peak = Math.max(peak, v); return peak > 0 ? (v / peak - 1) * 100 : 0; });
  const x = pts.map(([ts]) => new Date(ts));
  Plotly.react("equity-chart", [
    { type: "scatter", mode: "lines", name: "equity", x, y: pts.map(([, v]) => v), line: { color: "#4fc3f7", width: 2 } },
    { type: "scatter", mode: "lines", name: "drawdown %", x, y: dd, yaxis: "y2", fill: "tozeroy",
      line: { color: "#ef5350", width: 1 }, fillcolor: "rgba(239,83,80,0.2)" },
  ], { ...PLOT_LAYOUT, xaxis: { ...PLOT_LAYOUT.xaxis, anchor: "y2" }, yaxis: { ...PLOT_LAYOUT.yaxis, domain: [0.35, 1] },
       yaxis2: { gridcolor: "#262b35", side: "right", domain: [0, 0.28], ticksuffix: "%" } }, PLOT_CONFIG);
}

function drawPnl(acct) {
  const pnl = num(acct.daily_pnl), limit = num(acct.daily_loss_limit);
  const span = Math.max(limit * 1.2, Math.abs(pnl) * 1.2, 1);
  Plotly.react("pnl-chart", [
    { type: "bar", orientation: "h", x: [pnl], y: ["today"], marker: { color: pnl >= 0 ? "#26a69a" : "#ef5350" },
      text: [fmt(pnl)], textposition: "auto", hovertemplate: "daily PnL %{x:.2f}<extra></extra>" },
  ], { ...PLOT_LAYOUT, hovermode: "closest", xaxis: { gridcolor: "#262b35", range: [-span, Math.max(span * 0.6, pnl * 1.2)], zeroline: true, zerolinecolor: "#8a92a3" },
       yaxis: { visible: false },
       shapes: [
         { type: "line", x0: -limit, x1: -limit, y0: 0, y1: 1, yref: "paper", line: { color: "#ef5350", width: 2, dash: "dash" } },
         { type: "line", x0: -0.8 * limit, x1: -0.8 * limit, y0: 0, y1: 1, yref: "paper", line: { color: "#ffb74d", width: 1, dash: "dot" } },
       ],
       annotations: [{ x: -limit, y: 1, yref: "paper", text: `limit −${fmt(limit)}`, showarrow: false, yanchor: "bottom", font: { color: "#ef5350" } }] },
    PLOT_CONFIG);
}

function table(id, rows, cells) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = body.insertRow();
    const td = tr.insertCell();
    td.colSpan = $(id).querySelectorAll("th").length;
    td.className = "empty";
    td.textContent = "none";
    return;
  }
  for (const r of rows) {
    const tr = body.insertRow();
    for (const [text, cls] of cells(r)) { const td = tr.insertCell(); td.textContent = text; if (cls) td.className = cls; }
  }
}

function symbolQuery(sep) { return symbol ? `${sep}symbol=${encodeURIComponent(symbol)}` : ""; }

function renderSymbols(v) {
  const several = v.symbols.length > 1;
  $("symbol-pick").hidden = !several;
  $("symbols-card").hidden = !several;
  if (!several) return;
  const sel = $("symbol-select");
  if (sel.options.length !== v.symbols.length) {
    sel.replaceChildren(...v.symbols.map((x) => new Option(x.symbol, x.symbol)));
  }
  sel.value = v.symbol;
  const acct = v.account;
  $("exposure").textContent = `${fmt(acct.exposure)} ${acct.quote}, cap ${(num(acct.exposure_cap) * 100).toFixed(0)} %`;
  table("symbols", v.symbols, (x) => [[x.symbol, x.symbol === v.symbol ? "pos" : ""], [`${(num(x.weight) * 100).toFixed(1)} %`],
    [fmt(x.equity)], [`${fmt(x.position, 4)} ${x.base}`], [x.trading_state, x.trading_state === "ACTIVE" ? "pos" : "neg"],
    [x.last_data ? utc(x.last_data) : "—"]]);
}

function render() {
  const v = state.last;
  renderSymbols(v);
  const st = v.status, acct = v.account;
  $("title-sub").textContent = `${v.symbol} · ${v.timeframe} · ${v.mode} on ${v.market} · v${v.version}`;
  const ts = $("trading-state");
  ts.textContent = st.paused ? "PAUSED" : st.trading_state;
  ts.className = "pill " + (st.trading_state === "ACTIVE" && !st.paused ? "ok" : st.trading_state === "HALTED" ? "bad" : "warn");
  ts.title = st.reason || "";
  const ks = $("kill-state");
  ks.textContent = st.kill_switch ? "kill switch ENGAGED" : "kill switch off";
  ks.className = "pill " + (st.kill_switch ? "bad" : "ok");
  $("kill-banner").classList.toggle("show", st.kill_switch);
  $("kill-reason").textContent = st.kill_reason || "flag present";
  $("kill-btn").disabled = st.kill_switch;
  $("equity").textContent = `${fmt(acct.equity)} ${acct.quote}`;
  signed($("total-pnl"), acct.total_pnl);
  signed($("daily-pnl"), acct.daily_pnl);
  $("daily-limit").textContent = `limit −${fmt(acct.daily_loss_limit)} (${(num(acct.daily_loss_limit_ratio) * 100).toFixed(1)} %)`;
  $("position").textContent = `${fmt(v.position.qty, qtyDigits(v.position.qty))} ${acct.base}`;
  $("position-sub").textContent = v.position.avg_price ? `avg ${fmt(v.position.avg_price)} · uPnL ${fmt(v.position.unrealised)}` : "flat";
  $("uptime").textContent = duration(st.uptime);
  $("bars-count").textContent = `${st.bars_processed.toLocaleString("en-US")} bars`;
  $("last-data").textContent = st.last_data ? utc(st.last_data) : "—";
  $("health").textContent = st.healthy ? "healthy" : st.problems.join(", ");
  $("health").className = "sub " + (st.healthy ? "pos" : "neg");
  $("footer").textContent = `SOL-Bot ${v.version} · updated ${new Date(v.now * 1000).toISOString().slice(11, 19)} UTC`;
  drawPrice();
  drawEquity();
  drawPnl(acct);
  table("orders", v.orders, (o) => [[o.side, o.side], [o.type], [fmt(o.qty, qtyDigits(o.qty))], [o.price ? fmt(o.price) : "market"], [o.status]]);
  const fills = [...state.fills.values()].sort((a, b) => b.ts - a.ts).slice(0, 20);
  table("fills", fills, (f) => [[utc(f.ts)], [f.side, f.side], [fmt(f.qty, qtyDigits(f.qty))], [fmt(f.price)], [f.fee]]);
}

const POLL_MS = 5000; // without the token (when one is configured): the JSON view this often
let poller = null;

function since() { return state.bars.size ? Math.max(...state.bars.keys()) : -1; }

function needsTicket() { return !!(state.last && state.last.status.token_configured); }

const AWAY = "away"; // the bot did not answer

async function ticket() {
  // an EventSource cannot send the bearer token: trade it for a short-lived ticket
  if (!token) return null;
  try {
    const r = await fetch("/api/dashboard/ticket", { method: "POST", headers: { "Authorization": `Bearer ${token}` } });
    if (!r.ok) { if (r.status === 401) token = null; return null; }
    return (await r.json()).ticket;
  } catch (err) { return AWAY; }
}

function poll() {
  // a token is configured and the page does not hold it: the JSON view every few seconds
  if (poller) return;
  $("conn").textContent = "polling";
  $("conn").className = "pill warn";
  $("conn").title = "live updates need the control token: click to enter it";
  poller = setInterval(async () => {
    try {
      const r = await fetch(`/api/dashboard?since=${since()}${symbolQuery("&")}`);
      if (r.ok) { merge(await r.json()); render(); lastUpdate = Date.now(); }
    } catch (err) { /* the bot is away: the next poll tries again */ }
  }, POLL_MS);
}

async function connect() {
  let extra = "";
  if (needsTicket()) {
    const t = await ticket();
    if (t === AWAY) { setTimeout(connect, 3000); return; }
    if (!t) { poll(); return; }
    extra = `&ticket=${encodeURIComponent(t)}`;
  }
  if (poller) { clearInterval(poller); poller = null; }
  $("conn").title = "";
  const es = new EventSource(`/api/dashboard/stream?since=${since()}${extra}${symbolQuery("&")}`);
  source = es;
  es.addEventListener("update", (e) => {
    merge(JSON.parse(e.data));
    render();
    lastUpdate = Date.now();
    $("conn").textContent = "live";
    $("conn").className = "pill ok";
  });
  es.onerror = () => {
    $("conn").textContent = state.last && state.last.status.kill_switch ? "bot stopped" : "reconnecting";
    $("conn").className = "pill bad";
    // refused (401 for an old ticket, 503 when full) or ended: the browser gives up; try again
    if (es.readyState === EventSource.CLOSED && source === es) setTimeout(connect, 3000);
  };
}

$("conn").addEventListener("click", async () => {
  if (!poller) return;
  const given = await askToken("Control token (for live updates)", false);
  if (given === null) return;
  token = given;
  const t = await ticket();
  if (t && t !== AWAY) { if (source) source.close(); connect(); }
  else say("the token was refused", "error");
});

// the stream sends at least every 5 s: silence for 15 s means the page shows old numbers
let lastUpdate = Date.now();
setInterval(() => {
  if (Date.now() - lastUpdate > 15000 && $("conn").textContent === "live") {
    $("conn").textContent = "stale";
    $("conn").className = "pill warn";
  }
}, 1000);

function askToken(title, always) {
  return new Promise((resolve) => {
    if (token && !always) { resolve(token); return; }
    const dlg = $("token-dialog");
    $("token-title").textContent = title;
    $("token-input").value = token || "";
    dlg.returnValue = "";
    dlg.onclose = () => resolve(dlg.returnValue === "ok" ? $("token-input").value : null);
    dlg.showModal();
  });
}

async function control(path, title, body, always) {
  const given = await askToken(title, always);
  if (given === null) { say("cancelled"); return null; }
  let r;
  try {
    r = await fetch(path, { method: "POST", headers: { "Authorization": `Bearer ${given}`, "Content-Type": "application/json" },
                            body: JSON.stringify(body || {}) });
  } catch (err) { say(`${path}: ${err}`, "error"); return null; }
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) {
    token = null;
    say(`${path} refused (${r.status}): ${answer.detail || r.statusText}`, "error");
    return null;
  }
  token = given;
  if (poller) connect(); // the token is known now: live updates
  return answer;
}

$("kill-btn").addEventListener("click", async () => {
  const answer = await control("/api/kill", "Engage the kill switch: cancel every order and stop", { reason: "dashboard kill button" }, true);
  if (!answer) return;
  say(`kill switch engaged: ${answer.reason}`, "error");
  if (state.last) { state.last.status.kill_switch = true; state.last.status.kill_reason = answer.reason; render(); }
});
$("pause-btn").addEventListener("click", async () => {
  if (await control("/api/pause", "Pause trading (orders stay, no new ones)")) say("paused");
});
$("resume-btn").addEventListener("click", async () => {
  if (await control("/api/resume", "Resume trading")) say("resumed");
});

async function start() {
  try {
    const r = await fetch(`/api/dashboard${symbolQuery("?")}`);
    merge(await r.json());
    render();
  } catch (err) { say(`cannot load /api/dashboard: ${err}`, "error"); }
  connect();
}

$("symbol-select").addEventListener("change", (e) => {
  symbol = e.target.value; // another symbol's chart, position, orders and fills; same account
  if (source) source.close();
  state.bars.clear(); state.regimes.clear(); state.fills.clear();
  history.replaceState(null, "", `?symbol=${encodeURIComponent(symbol)}`);
  start();
});

start();
