/* Experiment page: summary, convergence, importance, parallel coordinates, slice, contour, Pareto front,
   tasks, history, suggestions, manual entry and CSV upload, generated code. Refreshes live. */
"use strict";
(() => {
  const { api, el, fmt, date, Table, plot, layout } = Assay;
  const expId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const msg = document.getElementById("msg");
  const $ = (id) => document.getElementById(id);
  let D = null, rows = [], marker = null, formKey = null, canWrite = true;

  const exp = () => D.experiment;
  const params = () => exp().parameters;
  const metrics = () => exp().metrics;
  const optimized = () => metrics().filter((m) => m.strategy === "optimize");
  const isCat = (p) => p.type === "categorical";
  const has = (v) => v !== null && v !== undefined;

  /** The plotted rows: every observation up to the server's limit, else its sample (best and newest kept). */
  function buildRows() {
    const c = D.points, best = new Set(D.best_rows);
    rows = c.id.map((id, k) => ({
      k, n: c.n[k], id, failed: c.failed[k], feasible: c.feasible[k], task: c.task[k], best: best.has(k),
      p: Object.fromEntries(params().map((p) => [p.name, c.params[p.name][k]])),
      m: Object.fromEntries(metrics().map((m) => [m.name, c.metrics[m.name][k]])),
    }));
  }

  function fillSelect(sel, options, preferred) {
    const keep = sel.value;
    const values = options.map((o) => (typeof o === "string" ? o : o.value));
    if (sel.dataset.opts !== values.join("\u0001")) {
      sel.replaceChildren(...options.map((o) => el("option", typeof o === "string" ? { value: o, text: o } : o)));
      sel.dataset.opts = values.join("\u0001");
    }
    sel.value = values.includes(keep) ? keep : (preferred !== undefined && values.includes(preferred) ? preferred : values[0] || "");
  }

  // -- summary ---------------------------------------------------------------------------------
  function renderSummary() {
    const e = exp(), pr = e.progress || {};
    document.title = `${e.name} · assay`;
    $("title").replaceChildren(e.name, " ", el("span", { class: `badge ${e.state}`, text: e.state === "deleted" ? "archived" : e.state }));
    $("subtitle").replaceChildren(`Experiment ${e.id} · ${e.type}${e.project ? " · project " + e.project : ""} · created ${date(e.created)}`,
      e.development ? " · development" : "", " ",
      canWrite ? el("button", { type: "button", id: "archive", onclick: toggleArchive,
        text: e.state === "deleted" ? "Unarchive" : "Archive" }) : "");
    const budget = e.observation_budget;
    const used = pr.observation_budget_consumed || 0;
    const card = (k, v, extra) => el("div", { class: "card" }, el("div", { class: "k", text: k }), el("div", { class: "v", text: v }), extra || "");
    const opt = optimized();
    const bestTxt = D.best_rows.length === 1 && opt.length ? fmt(rows[D.best_rows[0]].m[opt[0].name])
      : D.best_rows.length > 1 ? `${D.best_rows.length} on the front` : "—";
    $("cards").replaceChildren(
      card("Observations", `${pr.observation_count || 0}${budget ? " / " + budget : ""}`,
        budget ? el("progress", { max: budget, value: Math.min(used, budget), "aria-label": "budget used" }) : ""),
      card("Budget used", budget ? `${Math.round(100 * used / budget)}%` : fmt(used)),
      card("Failed", String(pr.failed_observation_count || 0)),
      card("Open suggestions", String(pr.open_suggestion_count || 0)),
      card(opt.length === 1 ? `Best ${opt[0].name} (${opt[0].objective})` : "Best", bestTxt),
    );
  }

  async function toggleArchive() {
    const state = exp().state === "deleted" ? "active" : "deleted";
    try { await api(`/v1/experiments/${expId}`, { method: "PUT", json: { state } }); await refresh(true); }
    catch (e) { Assay.message(msg, e.message); }
  }

  function renderBest() {
    const best = D.best_rows.map((i) => rows[i]);
    const t = new Table($("best"), [
      { key: "id", label: "Observation", value: (r) => r.id },
      ...(exp().tasks ? [{ key: "task", label: "Task", value: (r) => r.task }] : []),
      ...params().map((p) => ({ key: "p:" + p.name, label: p.name, numeric: !isCat(p), value: (r) => r.p[p.name] })),
      ...metrics().map((m) => ({ key: "m:" + m.name, label: m.name, numeric: true, value: (r) => r.m[m.name] })),
    ], { pageSize: 20, caption: "Best assignments" });
    if (!best.length) $("best").replaceChildren(el("p", { class: "empty", text: "No feasible observation yet." }));
    else t.setRows(best);
  }

  // -- plots -------------------------------------------------------------------------------------
  /** Convergence: every observation as a marker, the best value seen so far as a step line (charts.js, no Plotly). */
  function renderTrace() {
    const sel = $("trace-metric");
    const opt = optimized().length ? optimized() : metrics();
    fillSelect(sel, opt.map((m) => m.name));
    const m = metrics().find((x) => x.name === sel.value);
    if (!m) return;
    const pts = rows.filter((r) => !r.failed && has(r.m[m.name]));
    const tr = D.trace[m.name] || { x: [], y: [] };
    const last = tr.y.length ? tr.y[tr.y.length - 1] : null;
    Assay.chart("plot-trace", {
      x: { title: "observation #" }, y: { title: m.name },
      series: [
        { kind: "markers", name: "observations", x: pts.map((r) => r.n), y: pts.map((r) => r.m[m.name]), color: Assay.theme().accent,
          symbol: pts.map((r) => (r.feasible ? "circle" : "x")), size: 6, opacity: 0.55,
          text: (i) => `observation ${pts[i].id}${pts[i].feasible ? "" : " (infeasible)"} · #${pts[i].n}: ${fmt(pts[i].m[m.name])}` },
        { kind: "line", name: `best ${m.name}`, x: tr.x, y: tr.y, step: true, color: Assay.COLORS[1],
          text: (i) => `best ${m.name} after #${tr.x[i]}: ${fmt(tr.y[i])}` },
      ],
      label: `Best ${m.name} seen by observation number: ${pts.length} observations drawn` +
        (has(last) ? `; best ${m.name} ${fmt(last)} after observation #${tr.x[tr.x.length - 1]}.` : "."),
    });
  }

  // The optimizer's own importances (extremely randomized trees, as GET /v1/experiments/{id}/metric_importances;
  // the server keeps them per change marker) are fetched after every plot is drawn and replace the quick
  // correlation ratio the page data carries.
  let forest = { marker: null, data: null };
  async function fetchForest() {
    if (!D.importance.metric || forest.marker === marker) return;
    const mine = marker;
    const r = await api(`/dashboard/api/experiments/${expId}/importances`);
    if (mine !== marker) return;
    forest = { marker: mine, data: r.data ? { data: r.data } : null };
    if (r.data) await redraw("plot-importance");
    document.body.dataset.importance = r.data ? "forest" : "quick";
  }

  function renderImportance() {
    let imp = D.importance || {};
    if (imp.metric) {
      const mine = forest.marker === marker && forest.data && forest.data.data.find((d) => d.metric === imp.metric);
      if (mine) imp = { metric: imp.metric, method: "extremely randomized trees (GET /v1/experiments/{id}/metric_importances)", values: mine.importances };
    }
    const vals = Object.entries(imp.values || {}).sort((a, b) => a[1] - b[1]);
    const div = $("plot-importance");
    if (!vals.length) {
      div.chart?.destroy();
      div.replaceChildren(el("p", { class: "empty", text: "Needs observations." }));
      div.setAttribute("aria-label", "Parameter importance: needs observations");
      $("imp-note").textContent = ""; return;
    }
    div.querySelector("p.empty")?.remove();
    Assay.chart(div, {
      x: { title: `importance for ${imp.metric}`, zero: true }, y: { type: "category", categories: vals.map((v) => v[0]) },
      series: [{ kind: "hbar", name: "importance", x: vals.map((v) => v[1]), y: vals.map((v) => v[0]), color: Assay.theme().accent,
        text: (i) => `${vals[i][0]}: ${vals[i][1].toFixed(3)}` }],
      label: `Parameter importance for ${imp.metric}: ` + vals.slice().reverse().map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ") + ".",
    });
    $("imp-note").textContent = imp.method ? `Method: ${imp.method}.` : "";
  }

  // Brushing: parcoords.js keeps each axis's selected range in dimensions[i].constraintrange. The page keeps them
  // across live refreshes, counts the lines inside, and can turn them into a history filter.
  let brush = {}; // axis label -> constraintrange
  let par = { pts: [], dims: [] };
  function dimension(label, values, p) {
    let d;
    if (p && isCat(p)) {
      const cats = p.categorical_values.map((c) => c.name);
      d = { label, values: values.map((v) => cats.indexOf(v)), tickvals: cats.map((_, i) => i), ticktext: cats, range: [0, Math.max(cats.length - 1, 1)] };
    } else if (p && p.transformation === "log") d = { label: `log10 ${label}`, values: values.map((v) => Math.log10(v)) };
    else d = { label, values };
    Object.assign(d, { name: label, param: p || null });
    if (brush[d.label]) d.constraintrange = brush[d.label];
    return d;
  }
  const ranges = (cr) => (Array.isArray(cr[0]) ? cr : [cr]);
  const inside = (v, cr) => ranges(cr).some(([lo, hi]) => v >= lo && v <= hi);

  function brushNote() {
    const active = par.dims.filter((d) => brush[d.label]);
    const button = $("par-filter");
    button.hidden = !active.length;
    if (!active.length) { $("par-note").textContent = `${par.pts.length} lines (observations with every metric; failed ones left out).`; return; }
    const n = par.pts.filter((_, i) => active.every((d) => inside(d.values[i], brush[d.label]))).length;
    $("par-note").textContent = `${n} of ${par.pts.length} lines selected (${active.map(rangeText).join("; ")}).`;
  }

  /** "x1 2.5 – 4", "opt adam, sgd", "lr 1e-4 – 1e-2" (log axes in the parameter's own units): what an axis selects. */
  function rangeText(d) {
    const cr = brush[d.label], f = (v) => fmt(v, 3);
    if (d.param && isCat(d.param)) return `${d.name} ${d.ticktext.filter((_, i) => inside(i, cr)).join(", ") || "none"}`;
    const g = d.param && d.param.transformation === "log" ? (v) => 10 ** v : (v) => v;
    return `${d.name} ${ranges(cr).map(([lo, hi]) => `${f(g(lo))} – ${f(g(hi))}`).join(" or ")}`;
  }

  /** The brushed ranges as a history filter ("x >= a, x <= b, ..."); categories and multi-range axes as far as the filter can say. */
  function brushFilter() {
    const parts = ["failed = no"];
    for (const d of par.dims) {
      const cr = brush[d.label];
      if (!cr) continue;
      const rs = ranges(cr);
      if (d.param && isCat(d.param)) {
        const cats = d.ticktext.filter((_, i) => inside(i, cr));
        if (cats.length === 1) parts.push(`${d.name} = ${cats[0]}`);
        continue;
      }
      if (rs.length !== 1) continue;
      const f = d.param && d.param.transformation === "log" ? (v) => 10 ** v : (v) => v;
      parts.push(`${d.name} >= ${f(rs[0][0])}`, `${d.name} <= ${f(rs[0][1])}`);
    }
    return parts.join(", ");
  }

  let pc = null; // the Assay.Parcoords drawing (parcoords.js: canvas + SVG, no WebGL)
  function renderParcoords() {
    const pts = rows.filter((r) => !r.failed && metrics().every((m) => r.m[m.name] !== null && r.m[m.name] !== undefined));
    const div = $("plot-parcoords");
    if (!pts.length) {
      if (pc) { pc.destroy(); pc = null; }
      div.replaceChildren(el("p", { class: "empty", text: "Needs observations." })); $("par-note").textContent = ""; return;
    }
    const dims = [
      ...params().map((p) => dimension(p.name, pts.map((r) => r.p[p.name] ?? null), p)),
      ...metrics().map((m) => dimension(m.name, pts.map((r) => r.m[m.name]))),
    ];
    par = { pts, dims };
    const cm = optimized()[0] || metrics()[0];
    if (!pc) pc = new Assay.Parcoords(div, { onBrush: (ds) => {
      brush = {};
      for (const d of ds) if (d.constraintrange) brush[d.label] = d.constraintrange;
      brushNote();
    } });
    // the drawing keeps the user's axis order across refreshes
    const order = pc.dimensions.map((d) => d.label);
    const at = (d) => (order.includes(d.label) ? order.indexOf(d.label) : order.length);
    const shown = dims.map(({ name, param, ...d }) => d).sort((a, b) => at(a) - at(b));
    pc.setData(shown, { values: pts.map((r) => r.m[cm.name]), reverse: cm.objective === "minimize", title: cm.name }, Assay.theme());
    brushNote();
  }

  function renderSlice() {
    fillSelect($("slice-param"), params().map((p) => p.name));
    fillSelect($("slice-metric"), metrics().map((m) => m.name), (optimized()[0] || {}).name);
    const p = params().find((x) => x.name === $("slice-param").value);
    const m = $("slice-metric").value;
    if (!p) return;
    const pts = rows.filter((r) => !r.failed && r.m[m] !== null && r.m[m] !== undefined && r.p[p.name] !== null && r.p[p.name] !== undefined);
    const x = { title: p.name };
    if (isCat(p)) Object.assign(x, { type: "category", categories: p.categorical_values.map((c) => c.name) });
    else if (p.transformation === "log") x.type = "log";
    Assay.chart("plot-slice", {
      x, y: { title: m },
      series: [{ kind: "markers", name: m, x: pts.map((r) => r.p[p.name]), y: pts.map((r) => r.m[m]), size: 7, opacity: 0.6,
        colors: pts.map((r) => (r.best ? Assay.COLORS[5] : Assay.theme().accent)),
        text: (i) => `observation ${pts[i].id}${pts[i].best ? " (best)" : ""} · ${p.name} ${fmt(pts[i].p[p.name])}: ${m} ${fmt(pts[i].m[m])}` }],
      label: `${m} against ${p.name}: ${pts.length} observations drawn, the best ones in orange-red.`,
    });
  }

  /** The contour's selection (parameters x, y and metric), its selects filled; null without two numeric parameters. */
  function contourAxes() {
    const numeric = params().filter((p) => !isCat(p)).map((p) => p.name);
    if (numeric.length < 2) return null;
    fillSelect($("contour-x"), numeric);
    fillSelect($("contour-y"), numeric, numeric[1]);
    fillSelect($("contour-metric"), metrics().map((m) => m.name), (optimized()[0] || {}).name);
    return { x: $("contour-x").value, y: $("contour-y").value, m: $("contour-metric").value };
  }
  // The grid is asked for as soon as the page data is in, so the server interpolates it while the browser
  // draws the plots above it.
  let grid = { key: null, promise: null };
  function fetchGrid() {
    const a = contourAxes();
    if (!a || a.x === a.y) return null;
    const key = [marker, a.x, a.y, a.m].join("\u0001");
    if (grid.key !== key) {
      const promise = api(`/dashboard/api/experiments/${expId}/contour?x=${encodeURIComponent(a.x)}&y=${encodeURIComponent(a.y)}&metric=${encodeURIComponent(a.m)}`);
      promise.catch(() => {}); // reported when the contour is drawn
      grid = { key, promise };
    }
    return grid.promise;
  }

  let contourReq = 0;
  async function renderContour() {
    const div = $("plot-contour");
    const a = contourAxes();
    if (!a) { div.chart?.destroy(); div.replaceChildren(el("p", { class: "empty", text: "Needs two numeric parameters." })); return; }
    const { x, y, m } = a;
    if (x === y) { div.chart?.destroy(); div.replaceChildren(el("p", { class: "empty", text: "Pick two different parameters." })); return; }
    const mine = ++contourReq;
    const g = await fetchGrid();
    if (mine !== contourReq) return;
    div.querySelector("p.empty")?.remove();
    if (!g.z.length) { div.chart?.destroy(); div.replaceChildren(el("p", { class: "empty", text: "Needs at least 3 observations." })); return; }
    const px = params().find((p) => p.name === x), py = params().find((p) => p.name === y);
    const pts = rows.filter((r) => !r.failed && r.p[x] != null && r.p[y] != null);
    const metric = metrics().find((q) => q.name === m) || {};
    const flat = g.z.flat().filter((v) => v !== null && isFinite(v));
    Assay.chart(div, {
      x: { title: x, type: px.transformation === "log" ? "log" : "linear", tight: true },
      y: { title: y, type: py.transformation === "log" ? "log" : "linear", tight: true },
      series: [
        { kind: "heatmap", name: m, x: g.x, y: g.y, z: g.z, reverse: metric.objective === "minimize", levels: 10,
          text: ([i, j]) => `${x} ${fmt(g.x[i])}, ${y} ${fmt(g.y[j])}: ${m} ≈ ${fmt(g.z[j][i])}` },
        // vermillion: seen on every Viridis colour
        { kind: "markers", name: "observations", x: pts.map((r) => r.p[x]), y: pts.map((r) => r.p[y]), size: 5, opacity: 1,
          color: Assay.COLORS[5], hover: false },
      ],
      label: `${m} over ${x} and ${y}, interpolated from ${g.points} observations: from ${fmt(Math.min(...flat))} to ` +
        `${fmt(Math.max(...flat))}; ${pts.length} observations drawn as dots.`,
    });
    $("contour-note").textContent = `${g.method || ""} from ${g.points} observations.`;
  }

  function renderPareto() {
    const panel = $("pareto-panel");
    const ms = metrics().filter((m) => m.strategy !== "store");
    panel.hidden = optimized().length < 2;
    if (panel.hidden) return;
    fillSelect($("pareto-x"), ms.map((m) => m.name), optimized()[0].name);
    fillSelect($("pareto-y"), ms.map((m) => m.name), optimized()[1].name);
    const mx = ms.find((m) => m.name === $("pareto-x").value), my = ms.find((m) => m.name === $("pareto-y").value);
    const ok = (r) => !r.failed && r.m[mx.name] != null && r.m[my.name] != null;
    const pts = rows.filter(ok);
    const front = D.pareto_rows.map((i) => rows[i]).filter(ok).sort((a, b) => a.m[mx.name] - b.m[mx.name]);
    const rules = [];
    if (has(mx.threshold)) rules.push({ axis: "x", value: mx.threshold });
    if (has(my.threshold)) rules.push({ axis: "y", value: my.threshold });
    const th = (m) => (has(m.threshold) ? `, threshold ${fmt(m.threshold)}` : "");
    Assay.chart("plot-pareto", {
      x: { title: `${mx.name} (${mx.objective})` }, y: { title: `${my.name} (${my.objective})` }, rules,
      series: [
        { kind: "markers", name: "observations", x: pts.map((r) => r.m[mx.name]), y: pts.map((r) => r.m[my.name]), size: 6, opacity: 0.5,
          color: Assay.theme().accent, symbol: pts.map((r) => (r.feasible ? "circle" : "x")),
          text: (i) => `observation ${pts[i].id}${pts[i].feasible ? "" : " (infeasible)"}: ${fmt(pts[i].m[mx.name])}, ${fmt(pts[i].m[my.name])}` },
        { kind: "line", name: "Pareto front", x: front.map((r) => r.m[mx.name]), y: front.map((r) => r.m[my.name]), width: 2, markers: 9,
          color: Assay.COLORS[1], text: (i) => `Pareto front: observation ${front[i].id}: ${fmt(front[i].m[mx.name])}, ${fmt(front[i].m[my.name])}` },
      ],
      label: `Pareto front of ${mx.name} (${mx.objective}${th(mx)}) and ${my.name} (${my.objective}${th(my)}): ` +
        `${front.length} of ${pts.length} observations on the front; thresholds drawn as dashed lines.`,
    });
  }

  function renderTasks() {
    const panel = $("tasks-panel");
    panel.hidden = !D.tasks.length;
    if (panel.hidden) return;
    const names = D.tasks.map((t) => `${t.name} (cost ${fmt(t.cost)})`);
    plot("plot-tasks", [
      { type: "bar", name: "observations", x: names, y: D.tasks.map((t) => t.count), hovertemplate: "%{x}: %{y} observations<extra></extra>" },
      { type: "bar", name: "cost spent", x: names, y: D.tasks.map((t) => t.cost_total), yaxis: "y2", hovertemplate: "%{x}: %{y} budget<extra></extra>" },
    ], layout({ barmode: "group", yaxis: { title: { text: "observations" } },
      yaxis2: { title: { text: "cost spent" }, overlaying: "y", side: "right", color: Assay.theme().fg, rangemode: "tozero", showgrid: false } }));
  }

  // -- tables ------------------------------------------------------------------------------------
  let history = null;
  function historyColumns() {
    return [
      { key: "n", label: "#", numeric: true, value: (r) => r.n },
      { key: "id", label: "id", numeric: true, value: (r) => Number(r.id) },
      { key: "created", label: "created", value: (r) => r.created, render: (r) => date(r.created) },
      ...(exp().tasks ? [{ key: "task", label: "task", value: (r) => r.task }] : []),
      { key: "failed", label: "failed", value: (r) => r.failed },
      ...params().map((p) => ({ key: "p:" + p.name, label: p.name, numeric: !isCat(p), value: (r) => r.p[p.name] ?? null })),
      ...metrics().map((m) => ({ key: "m:" + m.name, label: m.name, numeric: true, value: (r) => r.m[m.name] ?? null })),
    ];
  }
  function renderHistory() {
    if (!history) {
      history = new Table($("history"), historyColumns(), { sortKey: "n", sortDir: "descending", caption: "Observation history",
        rowClass: (r) => (r.best ? "best" : ""), source: (q) => api(`/dashboard/api/experiments/${expId}/history?` + new URLSearchParams(q)) });
      $("history-filter").addEventListener("input", (e) => history.setFilter(e.target.value));
    } else history.setColumns(historyColumns());
    // asked for beside the plots (the server sorts while the browser draws); on a live refresh the same page,
    // sort and filter, re-read
    return history.render();
  }

  function suggestionTable(container, items, caption) {
    const t = new Table(container, [
      { key: "id", label: "id", numeric: true, value: (s) => Number(s.id) },
      ...(exp().tasks ? [{ key: "task", label: "task", value: (s) => s.task }] : []),
      ...params().map((p) => ({ key: p.name, label: p.name, numeric: !isCat(p), value: (s) => s.assignments[p.name] ?? null })),
      { key: "created", label: "created", value: (s) => s.created, render: (s) => date(s.created) },
    ], { pageSize: 10, sortKey: "id", sortDir: "ascending", caption });
    t.setRows(items);
  }

  // -- manual entry and upload ------------------------------------------------------------------------
  function renderForm() {
    const key = JSON.stringify([params(), metrics(), exp().tasks]);
    if (key === formKey) return;
    formKey = key;
    const form = $("obs-form");
    const fields = params().map((p) => {
      const id = `f-p-${p.name}`;
      const cond = Object.keys(p.conditions || {}).length ? " (if active)" : "";
      if (isCat(p)) return el("label", { for: id }, p.name + cond, el("select", { id, name: p.name, "data-kind": "param" },
        cond ? el("option", { value: "", text: "(inactive)" }) : null, p.categorical_values.map((c) => el("option", { value: c.name, text: c.name }))));
      return el("label", { for: id }, `${p.name} [${fmt(p.bounds.min)}, ${fmt(p.bounds.max)}]${cond}`, el("input", {
        id, name: p.name, "data-kind": "param", "data-type": p.type, type: "number", step: p.type === "int" ? "1" : "any",
        min: p.bounds.min, max: p.bounds.max, required: !cond }));
    });
    const mfields = metrics().map((m) => el("label", { for: `f-m-${m.name}` }, `${m.name} value`,
      el("input", { id: `f-m-${m.name}`, name: m.name, "data-kind": "metric", type: "number", step: "any" })));
    const task = exp().tasks ? el("label", { for: "f-task" }, "task", el("select", { id: "f-task", name: "task" },
      exp().tasks.map((t) => el("option", { value: t.name, text: `${t.name} (cost ${t.cost})` })))) : null;
    form.replaceChildren(...fields, ...mfields, task || "",
      el("label", { class: "inline", for: "f-failed" }, el("input", { id: "f-failed", type: "checkbox", name: "failed" }), "failed"),
      el("div", {}, el("button", { class: "primary", type: "submit", text: "Add observation" })));
    const header = [...params().map((p) => p.name), ...metrics().map((m) => m.name), ...(exp().tasks ? ["task"] : [])];
    $("csv-example").replaceChildren("Header for this experiment: ", el("code", { text: header.join(",") }));
  }

  async function submitObservation(ev) {
    ev.preventDefault();
    const out = $("obs-msg");
    const assignments = {};
    for (const input of $("obs-form").querySelectorAll("[data-kind=param]")) {
      if (input.value === "") continue;
      assignments[input.name] = input.tagName === "SELECT" ? input.value : (input.dataset.type === "int" ? parseInt(input.value, 10) : Number(input.value));
    }
    const failed = $("f-failed").checked;
    const body = { assignments, failed };
    if (!failed) {
      body.values = [];
      for (const input of $("obs-form").querySelectorAll("[data-kind=metric]")) if (input.value !== "") body.values.push({ name: input.name, value: Number(input.value) });
    }
    if ($("f-task")) body.task = $("f-task").value;
    try {
      const o = await api(`/v1/experiments/${expId}/observations`, { method: "POST", json: body });
      Assay.message(out, `Observation ${o.id} added.`, "ok");
      $("obs-form").reset();
      await refresh(true);
    } catch (e) { Assay.message(out, e.message + (e.field ? ` (field: ${e.field})` : "")); }
  }

  async function uploadCsv() {
    const out = $("csv-msg");
    const file = $("csv-file").files[0];
    if (!file) { Assay.message(out, "Choose a CSV file first."); return; }
    try {
      const r = await api(`/dashboard/api/experiments/${expId}/observations.csv`, { method: "POST", body: await file.text(), headers: { "Content-Type": "text/csv" } });
      Assay.message(out, `${r.created} observations added.`, "ok");
      $("csv-file").value = "";
      await refresh(true);
    } catch (e) { Assay.message(out, e.message); }
  }

  // -- generated code ----------------------------------------------------------------------------
  function example(p) {
    if (isCat(p)) return p.categorical_values[0].name;
    return p.type === "int" ? p.bounds.min : (p.bounds.min + p.bounds.max) / 2;
  }
  function snippets() {
    const e = exp(), origin = location.origin, opt = metrics();
    const pyValue = opt.length === 1 ? "evaluate(**trial.assignments)" : `{${opt.map((m) => `"${m.name}": ...`).join(", ")}}`;
    const tok = Assay.token() ? ', token=os.environ["ASSAY_TOKEN"]' : "";
    const values = JSON.stringify(opt.map((m) => ({ name: m.name, value: 0.0 })));
    const auth = Assay.token() ? ' \\\n  -H "Authorization: Bearer $ASSAY_TOKEN"' : "";
    return {
      "Python (assay)": `import os\nimport assay\n\n\ndef evaluate(${params().map((p) => p.name).join(", ")}):\n    ...  # train, measure, return ${opt.map((m) => m.name).join(" / ")}\n\n\nconn = assay.Connection("${origin}"${tok})\nexperiment = conn.experiment("${e.id}")\nfor trial in experiment.loop():\n    trial.report(${pyValue})\nprint(experiment.best_assignments())\n`,
      "Python (sigopt client)": `import os\nfrom sigopt import Connection\n\nconn = Connection(client_token=os.environ.get("ASSAY_TOKEN", "local"))\nconn.set_api_url("${origin}")\nsuggestion = conn.experiments("${e.id}").suggestions().create()\n# ... evaluate suggestion.assignments ...\nconn.experiments("${e.id}").observations().create(\n    suggestion=suggestion.id,\n    values=${JSON.stringify(opt.map((m) => ({ name: m.name, value: 0.0 })))},\n)\n`,
      curl: `# next suggestion\ncurl -s -X POST ${origin}/v1/experiments/${e.id}/suggestions${auth}\n\n# report an observation for it\ncurl -s -X POST ${origin}/v1/experiments/${e.id}/observations${auth} \\\n  -H "Content-Type: application/json" \\\n  -d '{"suggestion": "SUGGESTION_ID", "values": ${values}}'\n\n# or report assignments you chose\ncurl -s -X POST ${origin}/v1/experiments/${e.id}/observations${auth} \\\n  -H "Content-Type: application/json" \\\n  -d '${JSON.stringify({ assignments: Object.fromEntries(params().map((p) => [p.name, example(p)])), values: opt.map((m) => ({ name: m.name, value: 0.0 })) })}'\n\n# best assignments\ncurl -s ${origin}/v1/experiments/${e.id}/best_assignments${auth}\n`,
    };
  }
  let codeTab = "Python (assay)";
  function renderCode() {
    const s = snippets();
    const tabs = $("code-tabs");
    tabs.replaceChildren(...Object.keys(s).map((name) => el("button", { type: "button", role: "tab", "aria-selected": String(name === codeTab),
      "aria-controls": "code", tabindex: name === codeTab ? "0" : "-1", onclick: () => { codeTab = name; renderCode(); }, text: name })));
    tabs.onkeydown = (ev) => {
      if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
      const names = Object.keys(s), i = names.indexOf(codeTab);
      codeTab = names[(i + (ev.key === "ArrowRight" ? 1 : names.length - 1)) % names.length];
      renderCode(); tabs.querySelector('[aria-selected="true"]').focus();
    };
    const pre = el("pre", { class: "code", id: "code-text", tabindex: "0", role: "tabpanel", text: s[codeTab] });
    $("code").replaceChildren(pre, el("button", { type: "button", onclick: () => navigator.clipboard?.writeText(s[codeTab]), text: "Copy" }));
  }

  // -- load and refresh ----------------------------------------------------------------------------
  // Plots draw in page order, those on screen first. On the first load the others follow one by one;
  // after a live refresh an off-screen plot waits until it is scrolled into view.
  const PLOTS = { "plot-trace": renderTrace, "plot-importance": renderImportance, "plot-slice": renderSlice,
    "plot-contour": () => renderContour().catch((e) => Assay.message($("contour-note"), e.message)), "plot-parcoords": renderParcoords, "plot-pareto": renderPareto, "plot-tasks": renderTasks };
  const dirty = new Set();
  let queue = Promise.resolve();
  const onScreen = (div) => { const r = div.getBoundingClientRect(); return r.height > 0 && r.bottom > -50 && r.top < innerHeight + 50; };
  const later = () => new Promise((r) => setTimeout(r, 0)); // let the browser paint and handle input between plots
  const painted = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))); // after the next frame

  // Every plot but the tasks' bars is drawn by the page itself (charts.js, parcoords.js). Plotly.js (tasks of a
  // multitask experiment) is only evaluated once the first screen is shown, and only on pages that have that
  // plot, so a browser's first visit does not parse and compile its 1.5 MB first.
  const OWN = new Set(["plot-trace", "plot-importance", "plot-slice", "plot-contour", "plot-parcoords", "plot-pareto"]);
  const shown = (id) => $(id).getBoundingClientRect().height > 0;
  /** The first screen is complete: say so, and let the browser show it before Plotly.js is evaluated. */
  async function firstScreen() {
    performance.mark("first-screen", { detail: { plotly: !!window.Plotly } });
    document.body.dataset.ready = "true";
    await painted();
    performance.mark("first-screen painted");
  }
  async function drawPlots(all) {
    const draw = async (id) => { dirty.delete(id); await PLOTS[id](); performance.mark(`drawn ${id}`); await later(); };
    const ids = Object.keys(PLOTS);
    for (const id of ids) if (dirty.has(id) && OWN.has(id) && onScreen($(id))) await draw(id);
    const plotlyOnScreen = ids.some((id) => dirty.has(id) && !OWN.has(id) && onScreen($(id)));
    if (all && !plotlyOnScreen) await firstScreen();
    for (const id of ids) if (dirty.has(id) && OWN.has(id) && (all || onScreen($(id))) && shown(id)) await draw(id);
    if (ids.some((id) => dirty.has(id) && !OWN.has(id) && shown(id) && (all || onScreen($(id))))) {
      await Assay.loadPlotly();
      performance.mark("plotly");
    }
    for (const id of ids) if (dirty.has(id) && onScreen($(id))) await draw(id);
    if (!all) return;
    if (!document.body.dataset.ready) await firstScreen();
    for (const id of ids) if (dirty.has(id) && shown(id)) await draw(id);
    performance.mark("all-plots");
    document.body.dataset.drawn = marker;
  }
  function schedule(ids, all = false) {
    for (const id of ids) dirty.add(id);
    queue = queue.then(() => drawPlots(all)).catch((e) => Assay.message(msg, e.message));
    return queue;
  }
  /** Redraw one plot now, on screen or not (its controls changed). */
  function redraw(id) {
    queue = queue.then(async () => { if (!OWN.has(id)) await Assay.loadPlotly(); dirty.delete(id); await PLOTS[id](); })
      .catch((e) => Assay.message(msg, e.message));
    return queue;
  }
  const seen = new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) schedule([]); });
  for (const id of Object.keys(PLOTS)) seen.observe($(id));

  function renderPanels() {
    $("pareto-panel").hidden = optimized().length < 2;
    $("tasks-panel").hidden = !D.tasks.length;
    const note = $("sample-note");
    note.hidden = !D.sampled;
    note.textContent = D.sampled ? `The plots show ${rows.length} of ${D.count} observations: every best one, the newest, and ` +
      "evenly spaced ones in between. The best-seen line, importance, contour and history use all of them." : "";
  }

  async function renderAll(first) {
    buildRows();
    renderSummary(); renderBest(); renderPanels();
    const table = renderHistory();
    suggestionTable($("open-suggestions"), D.open_suggestions, "Open suggestions");
    suggestionTable($("queued"), D.queued, "Queued suggestions");
    renderForm(); renderCode();
    performance.mark("tables");
    await Promise.all([table, schedule(Object.keys(PLOTS), first)]);
  }

  async function refresh(force, prefetched) {
    if (!force) {
      if (!marker) return; // the first load is still on its way
      const m = await api(`/dashboard/api/experiments/${expId}/marker`);
      if (m.marker === marker) return;
    }
    const first = !D;
    D = await (prefetched || api(`/dashboard/api/experiments/${expId}`));
    performance.mark("data");
    marker = D.marker;
    if (first || onScreen($("plot-contour"))) fetchGrid();
    await renderAll(first);
    document.body.dataset.marker = marker;
    if (first) fetchForest().catch((e) => Assay.message($("imp-note"), e.message));
  }

  $("trace-metric").addEventListener("change", () => redraw("plot-trace"));
  for (const id of ["slice-param", "slice-metric"]) $(id).addEventListener("change", () => redraw("plot-slice"));
  for (const id of ["contour-x", "contour-y", "contour-metric"]) $(id).addEventListener("change", () => redraw("plot-contour"));
  for (const id of ["pareto-x", "pareto-y"]) $(id).addEventListener("change", () => redraw("plot-pareto"));
  $("par-filter").addEventListener("click", () => {
    const f = $("history-filter");
    f.value = brushFilter();
    history.setFilter(f.value);
    $("h-history").scrollIntoView();
  });
  $("obs-form").addEventListener("submit", submitObservation);
  $("csv-upload").addEventListener("click", uploadCsv);
  $("csv-download").addEventListener("click", () => Assay.download(`/dashboard/api/experiments/${expId}/observations.csv`, `experiment-${expId}-observations.csv`)
    .catch((e) => Assay.message(msg, e.message)));

  // the page data and the token check travel at the same time
  const firstData = api(`/dashboard/api/experiments/${expId}`, { response: window.assayFirstData });
  firstData.catch(() => {}); // its error is reported below, once
  Assay.header("experiments").then((me) => {
    canWrite = !!me && me.can_write;
    for (const s of document.querySelectorAll(".write-only")) s.hidden = !canWrite;
    return refresh(true, firstData);
  }).catch((e) => Assay.message(msg, e.status === 404 ? `Experiment ${expId} does not exist (or this token may not see it).` : e.message));
  Assay.poll(() => refresh(false), 3000);
})();
