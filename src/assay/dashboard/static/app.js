/* Shared helpers of the assay dashboard: API calls with the stored token, tables, plot theme, polling. */
"use strict";

const Assay = (() => {
  const TOKEN_KEY = "assay.token";

  class ApiError extends Error {
    constructor(status, message, field) { super(message); this.status = status; this.field = field; }
  }

  function token() { return localStorage.getItem(TOKEN_KEY) || ""; }
  function setToken(t) { if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY); }

  function loginUrl() { return "/login?next=" + encodeURIComponent(location.pathname + location.search); }

  /** fetch() with the Bearer token; JSON in and out; a 401 sends the user to the login page. opts.response: a
      fetch() the page already started for this path (its answer is read the same way). */
  async function api(path, opts = {}) {
    const headers = Object.assign({ "X-Requested-With": "assay-dashboard" }, opts.headers || {});
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    const init = { method: opts.method || "GET", headers };
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(opts.json); }
    else if (opts.body !== undefined) init.body = opts.body;
    const r = await (opts.response || fetch(path, init));
    if (r.status === 401 && !opts.noRedirect) { location.href = loginUrl(); throw new ApiError(401, "sign in required"); }
    if (!r.ok) {
      let body = {};
      try { body = await r.json(); } catch (e) { body = { message: r.statusText }; }
      throw new ApiError(r.status, body.message || r.statusText, body.field);
    }
    if (r.status === 204) return null;
    const ct = r.headers.get("content-type") || "";
    return ct.includes("json") ? r.json() : r.text();
  }

  function el(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : String(kid));
    return e;
  }

  function fmt(v, digits = 5) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v === "number") {
      if (!isFinite(v)) return String(v);
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? v.toExponential(3) : String(+v.toPrecision(digits));
    }
    if (typeof v === "boolean") return v ? "yes" : "no";
    return String(v);
  }

  function date(ts) { return ts ? new Date(ts * 1000).toLocaleString() : ""; }

  function message(container, text, kind = "error") {
    container.replaceChildren(text ? el("div", { class: "msg " + kind, role: kind === "error" ? "alert" : "status", text }) : "");
  }

  /** The header: navigation and who is signed in. Resolves to the token (GET /v1/tokens/self) or null. */
  async function header(current) {
    const nav = document.getElementById("nav");
    if (nav) for (const a of nav.querySelectorAll("a")) if (a.dataset.page === current) a.setAttribute("aria-current", "page");
    const who = document.getElementById("who");
    let me = null;
    try { me = await api("/v1/tokens/self"); } catch (e) { if (e.status === 401) throw e; }
    const canWrite = !!me && me.role !== "read" && me.kind !== "share";
    document.body.dataset.canWrite = String(canWrite);
    if (who) {
      const label = !me ? "offline" : me.kind === "local" ? "no sign-in required" :
        `${me.name || "token " + me.id} · ${me.kind === "share" ? "shared, read-only" : me.role}`;
      who.replaceChildren(el("span", { text: label }));
      if (token()) who.append(el("button", { type: "button", onclick: () => { setToken(""); location.href = "/login"; }, text: "Sign out" }));
    }
    return me ? Object.assign({ can_write: canWrite }, me) : null;
  }

  /** CSS variable values, for Plotly layouts that follow the color scheme. */
  function theme() {
    const s = getComputedStyle(document.documentElement);
    const v = (n) => s.getPropertyValue(n).trim();
    return { bg: v("--bg"), fg: v("--fg"), muted: v("--muted"), border: v("--border"), accent: v("--accent"),
      ok: v("--ok"), bad: v("--bad"), warn: v("--warn") };
  }

  // Okabe-Ito: distinguishable with color vision deficiencies.
  const COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"];

  function layout(extra = {}) {
    const t = theme();
    const axis = { gridcolor: t.border, zerolinecolor: t.border, linecolor: t.border, color: t.fg, automargin: true };
    return Object.assign({
      paper_bgcolor: t.bg, plot_bgcolor: t.bg, font: { color: t.fg, size: 12 }, colorway: COLORS,
      margin: { l: 60, r: 20, t: 30, b: 50 }, xaxis: Object.assign({}, axis, extra.xaxis || {}),
      yaxis: Object.assign({}, axis, extra.yaxis || {}), legend: { orientation: "h", y: 1.12 },
      hoverlabel: { namelength: -1 },
    }, Object.fromEntries(Object.entries(extra).filter(([k]) => k !== "xaxis" && k !== "yaxis")));
  }

  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  const PLOTLY_URL = "/dashboard/static/plotly-cartesian-4.1.1.min.js"; // routes.PLOTLY_URL
  let plotlyLoading = null;
  /** Plotly.js (its 1.5 MB "cartesian" bundle) loads beside the page's first data; summaries and tables do not wait. */
  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyLoading) plotlyLoading = new Promise((resolve, reject) => {
      const s = el("script", { src: PLOTLY_URL });
      s.addEventListener("load", () => resolve(window.Plotly));
      s.addEventListener("error", () => { plotlyLoading = null; reject(new Error("could not load Plotly.js")); });
      document.head.append(s);
    });
    return plotlyLoading;
  }

  function plot(div, data, lay) {
    if (typeof div === "string") div = document.getElementById(div);
    return Plotly.react(div, data, lay, CONFIG);
  }

  /** Parse "acc > 0.5, opt = adam" (AND of column comparisons) or plain text (substring match). */
  function parseFilter(text, columns) {
    const parts = text.split(",").map((s) => s.trim()).filter(Boolean);
    const keys = new Map(columns.map((c) => [c.label.toLowerCase(), c]));
    for (const c of columns) keys.set(c.key.toLowerCase(), c);
    const tests = [];
    for (const p of parts) {
      const m = p.match(/^([^<>=!~]+?)\s*(>=|<=|!=|=|<|>|~)\s*(.*)$/);
      const col = m && keys.get(m[1].trim().toLowerCase());
      if (col) {
        const op = m[2], raw = m[3].trim(), num = Number(raw);
        tests.push((row) => {
          const v = col.value(row);
          if (op === "~") return String(v ?? "").toLowerCase().includes(raw.toLowerCase());
          if (v === null || v === undefined) return op === "!=";
          if (typeof v === "boolean") {
            const want = ["yes", "true", "1", "y"].includes(raw.toLowerCase());
            return op === "!=" ? v !== want : op === "=" ? v === want : false;
          }
          const numeric = typeof v === "number" && raw !== "" && !isNaN(num);
          const a = numeric ? v : String(v).toLowerCase(), b = numeric ? num : raw.toLowerCase();
          switch (op) { case ">": return a > b; case "<": return a < b; case ">=": return a >= b;
            case "<=": return a <= b; case "=": return a === b; default: return a !== b; }
        });
      } else {
        const needle = p.toLowerCase();
        tests.push((row) => columns.some((c) => String(c.value(row) ?? "").toLowerCase().includes(needle)));
      }
    }
    return (row) => tests.every((t) => t(row));
  }

  /**
   * A sortable, filterable, paged table. columns: [{key, label, value(row), numeric, render(row)}].
   * State (sort, filter, page) survives setRows(), so live refresh keeps the user's view.
   * With opts.source (async ({offset, limit, sort, order, filter}) => {rows, matched, total}) the server
   * filters, sorts and pages: only one page of rows is ever in the browser.
   */
  class Table {
    constructor(container, columns, opts = {}) {
      this.container = container; this.columns = columns; this.rows = [];
      this.pageSize = opts.pageSize || 50; this.page = 0; this.sortKey = opts.sortKey || null;
      this.sortDir = opts.sortDir || "descending"; this.filter = () => true; this.filterText = "";
      this.rowClass = opts.rowClass || (() => ""); this.caption = opts.caption || "";
      this.onRender = opts.onRender || (() => {}); this.selectable = opts.selectable || null;
      this.source = opts.source || null; this.remote = null; this.seq = 0; this.timer = null; this.error = "";
    }
    setColumns(columns) {
      this.columns = columns;
      if (!this.source) { this.filter = parseFilter(this.filterText, columns); this.draw(); }
      else if (this.remote) this.draw();
    }
    setRows(rows) { this.rows = rows; this.render(); }
    /** Remote tables: show a page the caller already has (e.g. the first one, sent with the page data). */
    setPage(page) { this.seq++; this.remote = page; this.error = ""; this.draw(); }
    setFilter(text) {
      this.filterText = text; this.page = 0;
      if (!this.source) { this.filter = parseFilter(text, this.columns); this.render(); return; }
      clearTimeout(this.timer); this.timer = setTimeout(() => this.render(), 150); // one request per pause in typing
    }
    sortBy(key) {
      if (this.sortKey === key) this.sortDir = this.sortDir === "ascending" ? "descending" : "ascending";
      else { this.sortKey = key; this.sortDir = "ascending"; }
      const focus = () => { const b = this.container.querySelector(`th[data-key="${CSS.escape(key)}"] button`); if (b) b.focus(); };
      const done = this.render();
      if (done && done.then) done.then(focus); else focus();
    }
    view() {
      let rows = this.rows.filter(this.filter);
      const col = this.columns.find((c) => c.key === this.sortKey);
      if (col) {
        const dir = this.sortDir === "ascending" ? 1 : -1;
        rows = rows.map((r) => [col.value(r), r]).sort((a, b) => {
          const x = a[0], y = b[0];
          if (x === y) return 0;
          if (x === null || x === undefined || x === "") return 1;
          if (y === null || y === undefined || y === "") return -1;
          return (x < y ? -1 : 1) * dir;
        }).map((p) => p[1]);
      }
      return rows;
    }
    /** Re-read (remote) or re-derive (local) the visible rows, then draw them. */
    render() {
      if (!this.source) { this.draw(); return null; }
      const mine = ++this.seq;
      return this.source({ offset: this.page * this.pageSize, limit: this.pageSize, sort: this.sortKey || "",
        order: this.sortDir, filter: this.filterText }).then((r) => {
        if (mine !== this.seq) return;
        this.remote = r; this.error = ""; this.draw();
      }, (e) => {
        if (mine !== this.seq) return;
        this.error = e.message; this.draw();
      });
    }
    draw() {
      let slice, matched, total;
      if (this.source) {
        const r = this.remote || { rows: [], matched: 0, total: 0 };
        slice = r.rows; matched = r.matched; total = r.total;
      } else {
        const rows = this.view();
        matched = rows.length; total = this.rows.length;
        const last = Math.max(0, Math.ceil(matched / this.pageSize) - 1);
        this.page = Math.min(this.page, last);
        slice = rows.slice(this.page * this.pageSize, (this.page + 1) * this.pageSize);
        this.shown = rows;
      }
      const pages = Math.max(1, Math.ceil(matched / this.pageSize));
      const head = el("tr", {}, this.columns.map((c) => el("th", {
        scope: "col", class: c.numeric ? "num" : "", "data-key": c.key,
        "aria-sort": this.sortKey === c.key ? this.sortDir : "none",
      }, c.sortable === false ? c.label : el("button", { type: "button", class: "sort", onclick: () => this.sortBy(c.key),
        "aria-label": `sort by ${c.label}` , text: c.label }))));
      const body = slice.map((r) => el("tr", { class: this.rowClass(r) || null }, this.columns.map((c) => el("td",
        { class: c.numeric ? "num" : "" }, c.render ? c.render(r) : fmt(c.value(r))))));
      const table = el("table", {}, this.caption ? el("caption", { class: "visually-hidden", text: this.caption }) : null,
        el("thead", {}, head), el("tbody", {}, body));
      const go = (page) => { this.page = page; this.render(); };
      const pager = el("div", { class: "pager", "aria-live": "polite" },
        el("button", { type: "button", disabled: this.page === 0, onclick: () => go(this.page - 1), text: "‹ Prev" }),
        el("span", { class: "rowcount", text: `${matched} of ${total} rows · page ${this.page + 1} of ${pages}` }),
        el("button", { type: "button", disabled: this.page >= pages - 1, onclick: () => go(this.page + 1), text: "Next ›" }));
      this.container.replaceChildren(
        this.error ? el("div", { class: "msg error", role: "alert", text: this.error }) : "",
        matched || total ? el("div", { class: "scroll" }, table) : el("p", { class: "empty", text: "Nothing yet." }),
        matched > this.pageSize ? pager : el("div", { class: "pager" },
          el("span", { class: "rowcount", text: `${matched} of ${total} rows` })));
      this.onRender(slice);
    }
  }

  /** Call fn every ms while the tab is visible; show the live indicator. */
  function poll(fn, ms = 3000) {
    const live = document.getElementById("live");
    let busy = false;
    const tick = async () => {
      if (document.hidden || busy) return;
      busy = true;
      try { await fn(); if (live) { live.classList.add("on"); live.textContent = "live"; } }
      catch (e) { if (live) { live.classList.remove("on"); live.textContent = "reconnecting…"; } }
      finally { busy = false; }
    };
    return setInterval(tick, ms);
  }

  async function download(path, filename) {
    const text = await api(path);
    const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    const a = el("a", { href: url, download: filename });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  return { api, ApiError, token, setToken, el, fmt, date, message, header, theme, layout, plot, loadPlotly, PLOTLY_CONFIG: CONFIG, Table, poll,
    download, COLORS, parseFilter };
})();
