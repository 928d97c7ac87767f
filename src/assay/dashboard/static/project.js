/* A project's training runs: parameter and metric columns, filter, sort, saved column choice, comparison. */
"use strict";
(() => {
  const { api, el, fmt, date, Table } = Assay;
  const ref = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const $ = (id) => document.getElementById(id);
  const msg = $("msg");
  const COLS_KEY = `assay.columns.${ref}`;
  const selected = new Set();
  let runs = [], allCols = [], table = null;

  const value = (r, m) => (r.values[m] ? r.values[m].value : null);

  function columns() {
    const params = [...new Set(runs.flatMap((r) => Object.keys(r.assignments)))].sort();
    const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.values)))].sort();
    return [
      { key: "select", label: "Select", sortable: false, fixed: true, value: () => "", render: (r) => el("input", {
        type: "checkbox", "aria-label": `select run ${r.name}`, checked: selected.has(r.id), class: "pick",
        onchange: (ev) => { if (ev.target.checked) selected.add(r.id); else selected.delete(r.id); $("compare").disabled = selected.size < 2; } }) },
      { key: "id", label: "id", numeric: true, fixed: true, value: (r) => Number(r.id) },
      { key: "name", label: "name", fixed: true, value: (r) => r.name, render: (r) => el("a", { href: `/runs/${r.id}`, text: r.name }) },
      { key: "state", label: "state", value: (r) => r.state },
      { key: "created", label: "created", value: (r) => r.created, render: (r) => date(r.created) },
      { key: "experiment", label: "experiment", value: (r) => r.experiment, render: (r) => r.experiment ? el("a", { href: `/experiments/${r.experiment}`, text: r.experiment }) : "" },
      { key: "checkpoints", label: "checkpoints", numeric: true, value: (r) => r.checkpoint_count },
      ...params.map((p) => ({ key: "p:" + p, label: p, numeric: true, value: (r) => r.assignments[p] ?? null })),
      ...metrics.map((m) => ({ key: "m:" + m, label: m, numeric: true, value: (r) => value(r, m) })),
    ];
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
    const chosenRuns = runs.filter((r) => selected.has(r.id)).sort((a, b) => Number(a.id) - Number(b.id));
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

  async function load() {
    const out = [];
    let before = null;
    for (let i = 0; i < 20; i++) {
      const page = await api(`/v1/projects/${encodeURIComponent(ref)}/training_runs?limit=1000${before ? "&before=" + before : ""}`);
      out.push(...page.data);
      before = page.paging && page.paging.before;
      if (!before) break;
    }
    runs = out;
    const cols = columns();
    const changed = JSON.stringify(cols.map((c) => c.key)) !== JSON.stringify(allCols.map((c) => c.key));
    allCols = cols;
    if (!table) {
      table = new Table($("runs"), allCols, { sortKey: "id", sortDir: "descending", caption: "Training runs" });
      $("runs-filter").addEventListener("input", (e) => table.setFilter(e.target.value));
    }
    if (changed) { renderColumnChooser(); applyColumns(); }
    table.setRows(runs);
    $("subtitle").textContent = `${runs.length} training run${runs.length === 1 ? "" : "s"}`;
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
