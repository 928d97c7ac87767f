/* One training run: parameters with their sources, metrics, checkpoint curves, logs, metadata, files and images. */
"use strict";
(() => {
  const { api, el, fmt, date } = Assay;
  const runId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const $ = (id) => document.getElementById(id);
  const msg = $("msg");
  let lastUpdated = null;
  const blobs = new Map(); // file id -> object URL (files are fetched with the token)

  function kv(container, obj, caption) {
    const entries = Object.entries(obj || {}).filter(([k]) => k !== "object");
    if (!entries.length) { container.replaceChildren(el("p", { class: "empty", text: "None." })); return; }
    container.replaceChildren(el("table", {}, el("caption", { class: "visually-hidden", text: caption }), el("tbody", {},
      entries.map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }),
        el("td", { text: typeof v === "object" && v !== null ? JSON.stringify(v) : fmt(v) }))))));
  }

  function renderRun(r) {
    document.title = `${r.name} · assay`;
    $("title").replaceChildren(r.name, " ", el("span", { class: `badge ${r.state === "completed" ? "active" : ""}`, text: r.state }));
    $("subtitle").replaceChildren(`Run ${r.id} · project `, el("a", { href: `/projects/${encodeURIComponent(r.project)}`, text: r.project }),
      r.experiment ? " · experiment " : "", r.experiment ? el("a", { href: `/experiments/${r.experiment}`, text: r.experiment }) : "",
      ` · created ${date(r.created)}`, r.completed ? ` · finished ${date(r.completed)}` : "");
    const card = (k, v) => el("div", { class: "card" }, el("div", { class: "k", text: k }), el("div", { class: "v", text: v }));
    $("cards").replaceChildren(card("State", r.state), card("Checkpoints", String(r.checkpoint_count)),
      card("Files", String(r.files.length)), ...Object.values(r.values).slice(0, 3).map((v) => card(v.name, fmt(v.value))));
    const names = Object.keys(r.assignments);
    $("params").replaceChildren(names.length ? el("table", {}, el("caption", { class: "visually-hidden", text: "Parameters" }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "parameter" }), el("th", { scope: "col", class: "num", text: "value" }), el("th", { scope: "col", text: "source" }))),
      el("tbody", {}, names.map((n) => {
        const meta = (r.assignments_meta || {})[n] || {};
        const src = meta.source || (r.experiment ? "suggestion" : "user");
        const srcInfo = (r.assignments_sources || {})[src];
        return el("tr", {}, el("th", { scope: "row", text: n }), el("td", { class: "num", text: fmt(r.assignments[n]) }),
          el("td", { text: src + (srcInfo && srcInfo.sort !== undefined ? ` (order ${srcInfo.sort})` : "") }));
      }))) : el("p", { class: "empty", text: "None." }));
    const vals = Object.values(r.values);
    $("metrics").replaceChildren(vals.length ? el("table", {}, el("caption", { class: "visually-hidden", text: "Metrics" }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "metric" }), el("th", { scope: "col", class: "num", text: "value" }), el("th", { scope: "col", class: "num", text: "stddev" }))),
      el("tbody", {}, vals.map((v) => el("tr", {}, el("th", { scope: "row", text: v.name }), el("td", { class: "num", text: fmt(v.value) }), el("td", { class: "num", text: fmt(v.value_stddev) })))))
      : el("p", { class: "empty", text: "None." }));
    const logs = Object.entries(r.logs || {});
    $("logs").replaceChildren(...(logs.length ? logs.map(([k, v]) => el("div", {}, el("h3", { style: "font-size:14px;margin:6px 0", text: k }),
      el("pre", { class: "code", tabindex: "0", "aria-label": `log ${k}`, text: v.content || "" }))) : [el("p", { class: "empty", text: "No logs." })]));
    const meta = { ...r.metadata };
    for (const [k, v] of Object.entries({ model: r.model, source_code: r.source_code, datasets: r.datasets, sys_metadata: r.sys_metadata, dev_metadata: r.dev_metadata })) {
      const inner = Object.fromEntries(Object.entries(v || {}).filter(([x]) => x !== "object"));
      if (Object.keys(inner).length) meta[k] = inner;
    }
    if (r.tags && r.tags.length) meta.tags = r.tags.map((id) => tagNames.get(id) || id).join(", ");
    kv($("metadata"), meta, "Metadata");
  }

  async function renderCheckpoints() {
    const out = [];
    let before = null;
    for (let i = 0; i < 20; i++) {
      const page = await api(`/v1/training_runs/${runId}/checkpoints?limit=1000${before ? "&before=" + before : ""}`);
      out.push(...page.data);
      before = page.paging && page.paging.before;
      if (!before) break;
    }
    const div = $("plot-checkpoints");
    if (!out.length) { div.replaceChildren(el("p", { class: "empty", text: "No checkpoints." })); div.style.height = "auto"; return; }
    out.sort((a, b) => a.step - b.step);
    const metrics = [...new Set(out.flatMap((c) => c.values.map((v) => v.name)))];
    await Assay.loadPlotly();
    div.querySelector("p.empty")?.remove();
    div.style.height = "";
    Assay.plot(div, metrics.map((m, i) => {
      const pts = out.filter((c) => c.values.some((v) => v.name === m));
      return { type: "scatter", mode: "lines+markers", name: m, x: pts.map((c) => c.step), y: pts.map((c) => c.values.find((v) => v.name === m).value),
        yaxis: i === 0 ? "y" : "y2" };
    }), Assay.layout({ xaxis: { title: { text: "step" } }, yaxis: { title: { text: metrics[0] } },
      yaxis2: metrics.length > 1 ? { title: { text: metrics.slice(1).join(", ") }, overlaying: "y", side: "right", showgrid: false, color: Assay.theme().fg } : undefined }));
  }

  async function fileUrl(f) {
    if (!blobs.has(f.id)) {
      const headers = Assay.token() ? { Authorization: "Bearer " + Assay.token() } : {};
      const r = await fetch(`/v1/files/${f.id}/content`, { headers });
      if (!r.ok) throw new Error(`file ${f.id}: HTTP ${r.status}`);
      blobs.set(f.id, URL.createObjectURL(await r.blob()));
    }
    return blobs.get(f.id);
  }

  async function renderFiles(ids) {
    const files = await Promise.all(ids.map((id) => api(`/v1/files/${id}`)));
    if (!files.length) { $("files").replaceChildren(el("p", { class: "empty", text: "No files." })); return; }
    const items = await Promise.all(files.map(async (f) => {
      const label = f.name || f.filename || `file ${f.id}`;
      const info = `${f.content_type}, ${fmt(f.content_length)} bytes`;
      if (!f.uploaded) return el("li", {}, `${label} (${info}, upload not finished)`);
      const url = await fileUrl(f);
      const link = el("a", { href: url, download: f.filename || label, text: label });
      if (f.content_type.startsWith("image/")) {
        return el("li", {}, el("figure", { style: "margin:6px 0" }, el("img", { src: url, alt: label, class: "run-image", style: "max-width:100%;max-height:320px" }),
          el("figcaption", {}, link, ` (${info})`)));
      }
      return el("li", {}, link, ` (${info})`);
    }));
    $("files").replaceChildren(el("ul", { style: "padding-left:18px" }, items));
  }

  const tagNames = new Map(); // tag id -> name (runs carry tag ids, as in SigOpt)
  async function loadTagNames(r) {
    if (!(r.tags || []).some((t) => !tagNames.has(t))) return;
    try {
      const page = await api(`/v1/clients/${r.client}/tags?limit=1000`);
      page.data.forEach((t) => tagNames.set(t.id, t.name));
    } catch (e) { /* a run's share link cannot read the team's tags: ids are shown */ }
  }

  async function load() {
    const r = await api(`/v1/training_runs/${runId}`);
    const mark = `${r.updated}-${r.state}-${r.checkpoint_count}-${r.files.length}`;
    if (mark === lastUpdated) return;
    lastUpdated = mark;
    await loadTagNames(r);
    renderRun(r);
    await Promise.all([renderCheckpoints(), renderFiles(r.files)]);
    document.body.dataset.ready = "true";
  }

  Assay.header("projects").then(async (me) => {
    if (!me) return;
    await load();
    Assay.poll(load, 3000);
  }).catch((e) => Assay.message(msg, e.status === 404 ? `Run ${runId} does not exist (or this token may not see it).` : e.message));
})();
