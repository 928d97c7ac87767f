/* A project's training runs: parameter and metric columns, filter, sort, saved column choice, comparison. */
"use strict";
(() => {
  const { api, el, fmt, date, Table } = Assay;
  const ref = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const $ = (id) => document.getElementById(id);
  const msg = $("msg");
  const COLS_KEY = `assay.columns.${ref}`;
  const selected = new Map(); // run id -> run (the runs picked for comparison, from whichever page)
  let keys = { assignments: [], values: [] }, allCols = [], table = null, total = 0;

  const value = (r, m) => (r.values[m] ? r.values[m].value : null);

  // column key -> the run field the server filters and sorts on (GET training_runs `filters` / `sort`)
  const FIELDS = { id: "id", name: "name", state: "state", created: "created", experiment: "experiment" };
  const field = (key) => FIELDS[key] || (key.startsWith("p:") ? "assignments." + key.slice(2)
    : key.startsWith("m:") ? "values." + key.slice(2) : null);

  function columns() {
    return [
      { key: "select", label: "Select", sortable: false, fixed: true, value: () => "", render: (r) => el("input", {
        type: "checkbox", "aria-label": `select run ${r.name}`, checked: selected.has(r.id), class: "pick",
        onchange: (ev) => { if (ev.target.checked) selected.set(r.id, r); else selected.delete(r.id); $("compare").disabled = selected.size < 2; } }) },
      { key: "id", label: "id", numeric: true, fixed: true, value: (r) => Number(r.id) },
      { key: "name", label: "name", fixed: true, value: (r) => r.name, render: (r) => el("a", { href: `/runs/${r.id}`, text: r.name }) },
      { key: "state", label: "state", value: (r) => r.state },
      { key: "created", label: "created", value: (r) => r.created, render: (r) => date(r.created) },
      { key: "experiment", label: "experiment", value: (r) => r.experiment, render: (r) => r.experiment ? el("a", { href: `/experiments/${r.experiment}`, text: r.experiment }) : "" },
      { key: "checkpoints", label: "checkpoints", numeric: true, sortable: false, value: (r) => r.checkpoint_count },
      ...keys.assignments.map((p) => ({ key: "p:" + p, label: p, numeric: true, value: (r) => r.assignments[p] ?? null })),
      ...keys.values.map((m) => ({ key: "m:" + m, label: m, numeric: true, value: (r) => value(r, m) })),
    ];
  }

  /** The filter box ("accuracy > 0.9, state = completed", plain text = name contains) as the API's `filters`.
      Column names are the table's; a run field the API knows (metadata.note, tags, favorite ...) works too. */
  const OPS = { "=": "==", "!=": "!=", ">": ">", "<": "<", ">=": ">=", "<=": "<=", "~": "contains" };
  const NUMERIC = new Set(["id", "created", "updated", "completed", "experiment"]);
  function filters(text) {
    const out = [];
    for (const part of text.split(",").map((x) => x.trim()).filter(Boolean)) {
      const m = part.match(/^([^<>=!~]+?)\s*(>=|<=|!=|=|<|>|~)\s*(.*)$/);
      if (!m) { out.push({ field: "name", operator: "contains", value: part }); continue; }
      const name = m[1].trim(), op = OPS[m[2]], raw = m[3].trim();
      const col = allCols.find((c) => c.label.toLowerCase() === name.toLowerCase() && field(c.key));
      const f = col ? field(col.key) : name;
      if (!col && !/^(assignments|values|metadata)\.|^(state|name|id|created|updated|completed|experiment|favorite|tags)$/.test(f)) {
        const known = allCols.filter((c) => field(c.key)).map((c) => c.label).join(", ");
        throw new Error(`filter: unknown column '${name}'; columns are ${known}`);
      }
      const num = raw !== "" && !isNaN(Number(raw));
      let v = raw;
      if (op === "contains") v = raw;
      else if (f.startsWith("values.") || NUMERIC.has(f)) v = num ? Number(raw) : raw;
      else if (f.startsWith("assignments.") || f.startsWith("metadata.")) v = num ? Number(raw) : raw;
      else if (f === "favorite") v = ["yes", "true", "1"].includes(raw.toLowerCase());
      out.push({ field: f, operator: op, value: v });
    }
    return out;
  }

  /** One page of runs, filtered, sorted and counted by the server. */
  async function source(q) {
    const params = new URLSearchParams({ limit: String(q.limit), sort: field(q.sort) || "id", ascending: String(q.order === "ascending") });
    const f = filters(q.filter);
    if (f.length) params.set("filters", JSON.stringify(f));
    if (q.offset) params.set("before", "o" + q.offset); // a sorted list's paging marker is its offset
    const page = await api(`/v1/projects/${encodeURIComponent(ref)}/training_runs?${params}`);
    return { rows: page.data, matched: page.count, total: f.length ? total : page.count };
  }

  function chosen() {
    try { return JSON.parse(localStorage.getItem(COLS_KEY) || "null"); } catch (e) { return null; }
  }

  function renderColumnChooser() {
    const keep = chosen();
    $("columns").replaceChildren(el("legend", { class: "visually-hidden", text: "Columns shown" }),
      ...allCols.filter((c) => !c.fixed).map((c) => el("label", { class: "inline" }, el("input", {
        type: "checkbox", checked: !keep || keep.includes(c.key), "data-key": c.key,
        onchange: () => {
          localStorage.setItem(COLS_KEY, JSON.stringify([...$("columns").querySelectorAll("input:checked")].map((i) => i.dataset.key)));
          applyColumns();
        } }), c.label)));
  }

  function applyColumns() {
    const keep = chosen();
    table.setColumns(allCols.filter((c) => c.fixed || !keep || keep.includes(c.key)));
  }

  function compare() {
    const chosenRuns = [...selected.values()].sort((a, b) => Number(a.id) - Number(b.id));
    const rowsOf = allCols.filter((c) => !["select", "name"].includes(c.key));
    const head = el("tr", {}, el("th", { scope: "col", text: "" }), chosenRuns.map((r) => el("th", { scope: "col" }, el("a", { href: `/runs/${r.id}`, text: r.name }))));
    const body = rowsOf.map((c) => {
      const vals = chosenRuns.map((r) => c.value(r));
      const differ = new Set(vals.map((v) => JSON.stringify(v))).size > 1;
      return el("tr", { class: differ ? "best" : null }, el("th", { scope: "row", text: c.label }),
        chosenRuns.map((r) => el("td", { class: c.numeric ? "num" : "" }, c.render && c.key !== "experiment" ? c.render(r) : fmt(c.value(r)))));
    });
    $("comparison").replaceChildren(el("p", { class: "note", text: "Highlighted rows differ between the runs." }),
      el("div", { class: "scroll" }, el("table", {}, el("caption", { class: "visually-hidden", text: "Runs side by side" }), el("thead", {}, head), el("tbody", {}, body))));
    $("compare-panel").hidden = false;
    $("compare-panel").scrollIntoView();
  }

  /** Columns (every parameter and metric the project's runs use) and the run count; then the visible page again. */
  async function load() {
    const [k, all] = await Promise.all([api(`/dashboard/api/projects/${encodeURIComponent(ref)}/run_columns`),
      api(`/v1/projects/${encodeURIComponent(ref)}/training_runs?limit=1`)]);
    keys = k; total = all.count;
    const cols = columns();
    const changed = JSON.stringify(cols.map((c) => c.key)) !== JSON.stringify(allCols.map((c) => c.key));
    allCols = cols;
    if (!table) {
      table = new Table($("runs"), allCols, { sortKey: "id", sortDir: "descending", caption: "Training runs", source });
      $("runs-filter").addEventListener("input", (e) => table.setFilter(e.target.value));
    }
    if (changed) { renderColumnChooser(); applyColumns(); }
    await table.render();
    $("subtitle").textContent = `${total} training run${total === 1 ? "" : "s"}`;
    document.body.dataset.ready = "true";
  }

  $("compare").addEventListener("click", compare);
  Assay.header("projects").then(async (me) => {
    if (!me) return;
    const p = await api(`/v1/clients/${me.client}/projects/${encodeURIComponent(ref)}`);
    document.title = `${p.name} · assay`;
    $("title").textContent = `${p.name}`;
    await load();
    Assay.poll(load, 5000);
  }).catch((e) => Assay.message(msg, e.status === 404 ? `Project ${ref} does not exist (or this token may not see it).` : e.message));
})();
