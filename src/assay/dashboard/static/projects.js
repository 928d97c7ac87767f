/* Projects list. */
"use strict";
(() => {
  const { api, el, date, Table } = Assay;
  const msg = document.getElementById("msg");
  const table = new Table(document.getElementById("table"), [
    { key: "id", label: "Project", value: (p) => p.id, render: (p) => el("a", { href: `/projects/${encodeURIComponent(p.id)}`, text: p.id }) },
    { key: "name", label: "Name", value: (p) => p.name },
    { key: "created", label: "Created", value: (p) => p.created, render: (p) => date(p.created) },
    { key: "updated", label: "Updated", value: (p) => p.updated, render: (p) => date(p.updated) },
  ], { sortKey: "updated", sortDir: "descending", caption: "Projects" });
  let client = null;
  async function load() {
    const page = await api(`/v1/clients/${client}/projects?limit=1000`);
    table.setRows(page.data);
    document.body.dataset.ready = "true";
  }
  Assay.header("projects").then((me) => {
    if (!me) return null;
    if (me.kind === "share" && me.experiment) { location.replace(`/experiments/${me.experiment}`); return null; }
    if (me.kind === "share" && me.training_run) { location.replace(`/runs/${me.training_run}`); return null; }
    client = me.client;
    Assay.poll(load, 5000);
    return load();
  }).catch((e) => Assay.message(msg, e.message));
})();
