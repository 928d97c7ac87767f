/* Experiments list: state, progress vs budget, best value, project; archive and unarchive. */
"use strict";
(() => {
  const { api, el, fmt, date, Table } = Assay;
  const stateSel = document.getElementById("state");
  const filter = document.getElementById("filter");
  const msg = document.getElementById("msg");
  let canWrite = true;

  async function setState(row, state) {
    try {
      await api(`/v1/experiments/${row.id}`, { method: "PUT", json: { state } });
      await load(); // the list shows the change before the message says it is done
      Assay.message(msg, `Experiment ${row.id} ${state === "deleted" ? "archived" : "restored"}.`, "ok");
    } catch (e) { Assay.message(msg, e.message); }
  }

  const progressCell = (r) => {
    const used = r.budget_consumed, budget = r.observation_budget;
    if (!budget) return el("span", { text: `${r.observation_count} obs.` });
    const pct = Math.min(100, Math.round(100 * used / budget));
    return el("span", {}, el("progress", { max: budget, value: Math.min(used, budget), "aria-label": `${pct}% of budget`, style: "width:90px" }),
      " ", `${fmt(used)} / ${budget}`);
  };

  const table = new Table(document.getElementById("table"), [
    { key: "id", label: "ID", numeric: true, value: (r) => Number(r.id) },
    { key: "name", label: "Name", value: (r) => r.name, render: (r) => el("a", { href: `/experiments/${r.id}`, text: r.name }) },
    { key: "state", label: "State", value: (r) => r.state, render: (r) => el("span", { class: `badge ${r.state}`, text: r.state === "deleted" ? "archived" : r.state }) },
    { key: "project", label: "Project", value: (r) => r.project || "" },
    { key: "observations", label: "Observations", numeric: true, value: (r) => r.observation_count },
    { key: "progress", label: "Progress vs budget", value: (r) => r.observation_budget ? r.budget_consumed / r.observation_budget : null, render: progressCell },
    { key: "best", label: "Best value", numeric: true, value: (r) => r.best_value, render: (r) => r.best_value === null ? "" : `${fmt(r.best_value)} (${r.best_metric})` },
    { key: "created", label: "Created", value: (r) => r.created, render: (r) => date(r.created) },
    { key: "actions", label: "Actions", sortable: false, value: () => "", render: (r) => canWrite ? el("button", {
      type: "button", class: "archive", "aria-label": `${r.state === "deleted" ? "Unarchive" : "Archive"} experiment ${r.name}`,
      onclick: () => setState(r, r.state === "deleted" ? "active" : "deleted"), text: r.state === "deleted" ? "Unarchive" : "Archive" }) : "" },
  ], { sortKey: "id", sortDir: "descending", caption: "Experiments" });

  async function load() {
    const data = await api(`/dashboard/api/experiments?state=${stateSel.value}`);
    table.setRows(data.data);
    document.body.dataset.ready = "true";
  }

  stateSel.addEventListener("change", () => load().catch((e) => Assay.message(msg, e.message)));
  filter.addEventListener("input", () => table.setFilter(filter.value));
  Assay.header("experiments").then((me) => {
    if (me && me.kind === "share" && me.experiment) { location.replace(`/experiments/${me.experiment}`); return null; }
    canWrite = !!me && me.can_write;
    return load();
  })
    .catch((e) => Assay.message(msg, e.message));
  Assay.poll(load, 5000);
})();
