"""The workflow commands: ``assay init | run | optimize | start-worker | experiments | runs``.

They talk to ``assay.Connection()``: the server at ``--url``/``ASSAY_URL`` (token from ``--token``/
``ASSAY_TOKEN``), or the embedded database in ``ASSAY_HOME``. A tracked command runs as a child
process with its run in the environment (``ASSAY_RUN_ID``, ``ASSAY_PARAMS``, ``ASSAY_PARAM_<NAME>``,
and the connection), so ``import assay; assay.params ...; assay.log_metric(...)`` in the script
reports to that run. Its stdout/stderr are shown and stored on the run; a non-zero exit fails the run.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from assay.client import Connection
    from assay.tracking import RunContext

__all__ = ["register"]

console = Console()
err_console = Console(stderr=True)
experiments_app = typer.Typer(help="List, show, archive and export experiments.", no_args_is_help=True)
runs_app = typer.Typer(help="List, show, archive and export training runs.", no_args_is_help=True)

_URL = typer.Option(None, "--url", help="Server URL (default ASSAY_URL; none: the embedded database).")
_TOKEN = typer.Option(None, "--token", help="API token (default ASSAY_TOKEN).")
_PROJECT = typer.Option(None, "--project", "-p", help="Project id (default ASSAY_PROJECT or the directory name).")
_CMD = typer.Argument(None, help="The command to track, after `--` (default: `run:` in the run file).")
_PASSTHROUGH = {"allow_interspersed_args": False, "ignore_unknown_options": True}

RUN_YML = """\
# assay run: `assay run` tracks one run of this command (or the command given after --).
name: My run
run: python train.py
"""

EXPERIMENT_YML = """\
# assay optimize -e experiment.yml: each run gets suggested parameters (assay.params / ASSAY_PARAM_<NAME>)
# and reports metrics with assay.log_metric(name, value).
name: My experiment
metrics:
  - name: accuracy
    objective: maximize
parameters:
  - name: learning_rate
    type: double
    bounds: {min: 0.0001, max: 1.0}
    transformation: log
  - name: layers
    type: int
    bounds: {min: 1, max: 8}
budget: 20
parallel_bandwidth: 1
"""


# -- helpers ---------------------------------------------------------------------------------
def _connect(url: str | None, token: str | None) -> Connection:
    from assay.client import Connection

    return Connection(url or None, token or None)


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _load_yaml(path: Path, what: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        _fail(f"{what} file {path} does not exist (`assay init` writes one)")
    except yaml.YAMLError as exc:
        _fail(f"{path} is not valid YAML: {exc}")
    if not isinstance(data, dict):
        _fail(f"{path} must hold a mapping of keys to values")
    return data


def _command(cmd: list[str] | None, run_file: Path | None) -> tuple[list[str], dict[str, Any]]:
    options: dict[str, Any] = {}
    if cmd and cmd[0] == "--":  # after a positional argument (start-worker ID -- cmd) Click keeps the "--"
        cmd = cmd[1:]
    if run_file is not None and run_file.exists():
        options = _load_yaml(run_file, "run")
    if not cmd:
        raw = options.get("run")
        if not raw:
            _fail("no command: give it after `--` (assay run -- python train.py) or as `run:` in run.yml")
        cmd = shlex.split(raw) if isinstance(raw, str) else [str(c) for c in raw]
    return list(cmd), options


def _source(cmd: list[str]) -> dict[str, Any]:
    """The tracked command's script (its first ``.py`` argument) and git commit."""
    from assay.tracking import git_commit, source_code

    script = next((Path(a) for a in cmd if a.endswith(".py") and Path(a).is_file()), None)
    if script is not None:
        return source_code(script)
    return {"hash": h} if (h := git_commit()) else {}


def _child_env(conn: Connection, run: RunContext, token: str | None, project: str) -> dict[str, str]:
    env = dict(os.environ)
    assignments = dict(run.run.get("assignments") or {})
    env.update({"ASSAY_RUN_ID": run.id, "ASSAY_PROJECT": project, "ASSAY_PARAMS": json.dumps(assignments)})
    for name, value in assignments.items():
        key = re.sub(r"[^A-Z0-9_]", "_", name.upper())
        env[f"ASSAY_PARAM_{key}"] = str(value)
    if conn.embedded:
        env["ASSAY_HOME"] = str(conn.settings.home)
        env["ASSAY_DATABASE_URL"] = conn.settings.resolved_database_url
        env.pop("ASSAY_URL", None)
    else:
        env["ASSAY_URL"] = str(conn.url)
        if token:
            env["ASSAY_TOKEN"] = token
        # Scripts instrumented with the `sigopt` client report into the same run.
        env["SIGOPT_API_URL"] = str(conn.url)
        env["SIGOPT_API_TOKEN"] = token or env.get("SIGOPT_API_TOKEN") or "assay"
        env["SIGOPT_PROJECT"] = project
        env["SIGOPT_CONTEXT"] = base64.b64encode(json.dumps(
            {"global_run_context": {"run": run.run}}).encode()).decode()
    return env


def _pump(stream: Any, sink: Any, buf: io.StringIO) -> None:
    for raw in iter(stream.readline, b""):
        text = raw.decode("utf-8", "replace")
        buf.write(text)
        sink.write(text)
        sink.flush()
    stream.close()


def _execute(conn: Connection, run: RunContext, cmd: list[str], token: str | None, project: str) -> int:
    """Run ``cmd`` for ``run``: stream and store its output, record the exit code; returns it."""
    env = _child_env(conn, run, token, project)
    if source := _source(cmd):
        run.log_source_code(**source)
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        run.set_logs({"stderr": f"could not start {shlex.join(cmd)}: {exc}"})
        run.log_failure()
        _fail(f"could not start {shlex.join(cmd)}: {exc}")
    out, err = io.StringIO(), io.StringIO()
    threads = [threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, out), daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, err), daemon=True)]
    for t in threads:
        t.start()
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        for t in threads:
            t.join(5)
        run.set_logs({"stdout": out.getvalue(), "stderr": err.getvalue()})
        run.log_metadata("exit_code", "interrupted")
        run.log_failure()
        raise
    for t in threads:
        t.join(30)
    run.set_logs({"stdout": out.getvalue(), "stderr": err.getvalue()})
    run.log_metadata("exit_code", code)
    if code != 0:
        run.log_failure()
    return code


def _values_text(run: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v['value']:.6g}" for k, v in (run.get("values") or {}).items())


def _assignments_text(a: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in a.items())


def _client(conn: Connection) -> str:
    return str(conn.request("GET", "/v1/tokens/self")["client"])


# -- init, run, optimize, start-worker -------------------------------------------------------
def init(force: bool = typer.Option(False, "--force", help="Overwrite existing files.")) -> None:
    """Write run.yml and experiment.yml templates in the current directory."""
    for name, text in (("run.yml", RUN_YML), ("experiment.yml", EXPERIMENT_YML)):
        path = Path(name)
        if path.exists() and not force:
            console.print(f"{name} exists; kept it (use --force to overwrite)")
            continue
        path.write_text(text)
        console.print(f"wrote {name}")


def run(ctx: typer.Context, cmd: list[str] = _CMD, name: str = typer.Option(None, help="Run name."),
        project: str = _PROJECT, run_file: Path = typer.Option(Path("run.yml"), "--run-file", "-r",
                                                               help="Run file (name, run command)."),
        url: str = _URL, token: str = _TOKEN) -> None:
    """Track one run of a command: assay run -- python train.py"""
    from assay import tracking

    command, options = _command(cmd, run_file)
    conn = _connect(url, token)
    project = project or tracking.default_project()
    ctx_run = tracking.create_run(name or options.get("name") or Path(command[-1]).name, project=project,
                                  capture=False, source=False, connection=conn)
    console.print(f"run {ctx_run.id} in project {project!r}: {shlex.join(command)}", highlight=False)
    code = _execute(conn, ctx_run, command, token, project)
    ctx_run.end(failed=code != 0)
    final = ctx_run.fetch()
    console.print(f"run {final['id']} {final['state']}" + (f": {_values_text(final)}" if final.get("values") else ""),
                  highlight=False)
    conn.close()
    raise typer.Exit(code)


def _worker_loop(conn: Connection, exp: Any, command: list[str], token: str | None, name: str | None,
                 max_runs: int | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    budget = exp.data.get("budget") or exp.data.get("observation_budget")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=False) as progress:
        task = progress.add_task(f"experiment {exp.id}", total=budget)
        # the child's output and source are stored by _execute
        for r in exp.loop(name=name, max_runs=max_runs, capture=False, source=False):
            progress.console.print(f"run {r.id}: {_assignments_text(r.params)}", highlight=False)
            _execute(conn, r, command, token, exp.data.get("project") or "")
            r.end(failed=False)
            final = r.fetch()
            progress.console.print(f"run {r.id} {final['state']}"
                                   + (f": {_values_text(final)}" if final.get("values") else ""), highlight=False)
            progress.update(task, completed=exp.refresh()["progress"]["finished_run_count"])
    best = exp.get_best_runs()
    if best:
        table = Table("best run", "assignments", "values")
        for b in best:
            table.add_row(b["id"], _assignments_text(b["assignments"]), _values_text(b))
        console.print(table)


def optimize(ctx: typer.Context, cmd: list[str] = _CMD,
             experiment_file: Path = typer.Option(Path("experiment.yml"), "--experiment", "-e",
                                                  help="Experiment file (name, parameters, metrics, budget)."),
             project: str = _PROJECT, name: str = typer.Option(None, help="Name of each run."),
             run_file: Path = typer.Option(Path("run.yml"), "--run-file", "-r", help="Run file (run command)."),
             max_runs: int = typer.Option(None, help="Stop after this many runs (default: the budget)."),
             url: str = _URL, token: str = _TOKEN) -> None:
    """Create an AI experiment and run the command once per suggestion until the budget is spent."""
    from assay import tracking
    from assay.errors import AssayError

    command, options = _command(cmd, run_file)
    body = _load_yaml(experiment_file, "experiment")
    conn = _connect(url, token)
    project = project or body.pop("project", None) or tracking.default_project()
    body.pop("project", None)
    try:
        exp = tracking.create_experiment(project=project, connection=conn, **body)
    except AssayError as exc:
        _fail(f"{experiment_file}: {exc.message}")
    except TypeError as exc:
        _fail(f"{experiment_file} needs name, parameters and metrics ({exc})")
    console.print(f"AI experiment {exp.id} in project {project!r} (budget {exp.data.get('budget')}); "
                  f"more workers: assay start-worker {exp.id} -- {shlex.join(command)}", highlight=False)
    _worker_loop(conn, exp, command, token, name or options.get("name"), max_runs)
    conn.close()


def start_worker(ctx: typer.Context, experiment_id: str = typer.Argument(..., help="AI experiment id."),
                 cmd: list[str] = _CMD, name: str = typer.Option(None, help="Name of each run."),
                 run_file: Path = typer.Option(Path("run.yml"), "--run-file", "-r", help="Run file (run command)."),
                 max_runs: int = typer.Option(None, help="Stop after this many runs."),
                 url: str = _URL, token: str = _TOKEN) -> None:
    """Join an AI experiment as one more worker (on any machine that reaches the server)."""
    from assay import tracking
    from assay.errors import AssayError

    command, options = _command(cmd, run_file)
    conn = _connect(url, token)
    try:
        exp = tracking.get_experiment(experiment_id, connection=conn)
    except AssayError as exc:
        _fail(exc.message)
    _worker_loop(conn, exp, command, token, name or options.get("name"), max_runs)
    conn.close()


# -- experiments / runs: list, show, archive, export ----------------------------------------
def _write_rows(rows: list[dict[str, Any]], fmt: str, output: Path | None) -> None:
    if fmt == "json":
        text = json.dumps(rows, indent=2, default=str)
    elif fmt == "csv":
        columns: list[str] = []
        for r in rows:
            columns.extend(k for k in r if k not in columns)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    else:
        _fail("--format must be csv or json")
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text)
        err_console.print(f"wrote {len(rows)} rows to {output}")


def _flat(prefix: str, d: Mapping[str, Any] | None) -> dict[str, Any]:
    return {f"{prefix}.{k}": v for k, v in (d or {}).items()}


def _run_row(r: Mapping[str, Any]) -> dict[str, Any]:
    row = {k: r.get(k) for k in ("id", "name", "project", "experiment", "state", "created", "completed")}
    row.update(_flat("assignments", r.get("assignments")))
    row.update({f"values.{k}": v.get("value") for k, v in (r.get("values") or {}).items()})
    row.update({f"stddev.{k}": v.get("value_stddev") for k, v in (r.get("values") or {}).items()
                if v.get("value_stddev") is not None})
    row.update(_flat("metadata", r.get("metadata")))
    return row


def _all_pages(conn: Connection, path: str, params: dict[str, Any]) -> Iterable[dict[str, Any]]:
    params = {**params, "limit": 1000}
    while True:
        page = conn.request("GET", path, params=params)
        yield from page["data"]
        before = (page.get("paging") or {}).get("before")
        if not before:
            return
        params["before"] = before


def _handle(fn: Any) -> Any:
    from assay.errors import AssayError

    try:
        return fn()
    except AssayError as exc:
        _fail(exc.message)


@experiments_app.command("list")
def experiments_list(project: str = _PROJECT, archived: bool = typer.Option(False, help="Include archived."),
                     url: str = _URL, token: str = _TOKEN) -> None:
    """Experiments (AI experiments are marked `ai`)."""
    conn = _connect(url, token)
    params = {"state": "all" if archived else "active", "project": project}
    table = Table("id", "name", "kind", "project", "observations", "budget", "state")
    for e in _handle(lambda: list(_all_pages(conn, "/v1/experiments", params))):
        table.add_row(e["id"], e["name"], "ai" if e.get("runs_only") else "core", e.get("project") or "",
                      str((e.get("progress") or {}).get("observation_count", 0)), str(e.get("observation_budget")),
                      e["state"])
    console.print(table)


@experiments_app.command("show")
def experiments_show(experiment_id: str, url: str = _URL, token: str = _TOKEN) -> None:
    """An experiment's definition, progress and best assignments."""
    conn = _connect(url, token)
    exp = _handle(lambda: conn.request("GET", f"/v1/experiments/{experiment_id}"))
    best = _handle(lambda: conn.request("GET", f"/v1/experiments/{experiment_id}/best_assignments"))["data"]
    console.print(f"[bold]{exp['name']}[/bold] (id {exp['id']}, {'ai' if exp.get('runs_only') else 'core'}, "
                  f"{exp['state']}, project {exp.get('project')})")
    for p in exp["parameters"]:
        dom = p.get("bounds") or {}
        extent = (f"[{dom.get('min')}, {dom.get('max')}]" if dom
                  else [c["name"] for c in p.get("categorical_values") or []])
        console.print(f"  parameter {p['name']}: {p['type']} {extent}", highlight=False)
    for m in exp["metrics"]:
        console.print(f"  metric {m['name']}: {m['objective']} ({m['strategy']})", highlight=False)
    prog = exp.get("progress") or {}
    console.print(f"  observations {prog.get('observation_count', 0)} "
                  f"(failed {prog.get('failed_observation_count', 0)}) of budget {exp.get('observation_budget')}",
                  highlight=False)
    for b in best:
        vals = ", ".join(f"{v['name']}={v['value']:.6g}" for v in b["values"])
        console.print(f"  best: {_assignments_text(b['assignments'])} -> {vals}", highlight=False)


@experiments_app.command("archive")
def experiments_archive(experiment_id: str, url: str = _URL, token: str = _TOKEN) -> None:
    """Archive an experiment (``assay experiments unarchive`` restores it)."""
    conn = _connect(url, token)
    _handle(lambda: conn.request("DELETE", f"/v1/experiments/{experiment_id}"))
    console.print(f"archived experiment {experiment_id}")


@experiments_app.command("unarchive")
def experiments_unarchive(experiment_id: str, url: str = _URL, token: str = _TOKEN) -> None:
    """Restore an archived experiment."""
    conn = _connect(url, token)
    _handle(lambda: conn.request("PUT", f"/v1/experiments/{experiment_id}", json={"state": "active"}))
    console.print(f"restored experiment {experiment_id}")


@experiments_app.command("export")
def experiments_export(experiment_id: str, fmt: str = typer.Option("csv", "--format", "-f", help="csv or json."),
                       output: Path = typer.Option(None, "--output", "-o", help="File (default: stdout)."),
                       url: str = _URL, token: str = _TOKEN) -> None:
    """Every observation of an experiment as CSV or JSON rows."""
    conn = _connect(url, token)
    rows = []
    for o in _handle(lambda: list(_all_pages(conn, f"/v1/experiments/{experiment_id}/observations", {}))):
        row = {"id": o["id"], "suggestion": o.get("suggestion"), "failed": o["failed"], "created": o["created"]}
        row.update(_flat("assignments", o["assignments"]))
        row.update({f"values.{v['name']}": v["value"] for v in o.get("values") or []})
        rows.append(row)
    _write_rows(list(reversed(rows)), fmt, output)


_WHERE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(==|!=|<=|>=|<|>|=|~| contains | exists)\s*(.*?)\s*$")


def _where_value(text: str) -> Any:
    """``0.9`` → 0.9, ``true`` → True, ``"7"``/``'7'`` → "7", anything else stays text."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text) if any(c in text for c in ".eE") or not text.lstrip("-").isdigit() else int(text)
    except ValueError:
        return text


def _where(expressions: list[str] | None, tags: list[str] | None) -> list[tuple[str, str, Any]]:
    """``--where 'values.acc>0.9'`` and ``--tag gpu`` options as filter triples."""
    out: list[tuple[str, str, Any]] = []
    for expr in expressions or []:
        m = _WHERE.match(expr)
        if m is None:
            _fail(f"--where {expr!r}: write FIELD OP VALUE, like 'values.acc>=0.9', 'assignments.opt==adam', "
                  "'name~resnet' (contains) or 'metadata.seed exists true'")
            continue
        field, op, raw = m.group(1), m.group(2).strip(), m.group(3)
        op = {"=": "==", "~": "contains"}.get(op, op)
        value = _where_value(raw)
        if op == "exists" and raw == "":
            value = True
        out.append((field, op, value))
    out.extend(("tags", "==", t) for t in tags or [])
    return out


def _runs(conn: Connection, project: str | None, experiment: str | None, state: str | None,
          where: list[str] | None = None, tags: list[str] | None = None, sort: str | None = None,
          ascending: bool = False, archived: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
    from assay import tracking

    triples = _where(where, tags)
    return _handle(lambda: tracking.list_runs(project, where=triples, sort=sort, ascending=ascending, state=state,
                                              experiment=experiment, archived=archived, limit=limit,
                                              connection=conn))


_WHERE_OPT = typer.Option(None, "--where", "-w", help="Filter FIELD OP VALUE (repeatable): fields name, state, "
                          "created, values.<metric>, assignments.<param>, metadata.<key>; ops == != < <= > >= "
                          "~ (contains) exists. Example: -w 'values.acc>=0.9' -w 'assignments.opt==adam'.")
_TAG_OPT = typer.Option(None, "--tag", "-t", help="Only runs with this tag (name or id; repeatable).")
_SORT_OPT = typer.Option(None, "--sort", "-s", help="Sort by a field (e.g. values.acc, name, created); "
                         "descending unless --asc.")
_ASC_OPT = typer.Option(False, "--asc", help="Sort ascending.")


@runs_app.command("list")
def runs_list(project: str = _PROJECT, experiment: str = typer.Option(None, help="Only this AI experiment."),
              state: str = typer.Option(None, help="active, completed or failed."),
              where: list[str] = _WHERE_OPT, tag: list[str] = _TAG_OPT, sort: str = _SORT_OPT,
              asc: bool = _ASC_OPT, archived: bool = typer.Option(False, help="Include archived runs."),
              limit: int = typer.Option(None, help="At most this many runs."),
              url: str = _URL, token: str = _TOKEN) -> None:
    """Training runs, newest first (or as --sort says), filtered by --where/--tag/--state."""
    conn = _connect(url, token)
    runs = _runs(conn, project, experiment, state, where, tag, sort, asc, archived, limit)
    names = _tag_names(conn, runs)
    table = Table("id", "name", "project", "experiment", "state", "values", "tags")
    for r in runs:
        table.add_row(r["id"], r["name"], r["project"], r.get("experiment") or "",
                      r["state"] + (" (archived)" if r.get("deleted") else ""), _values_text(r),
                      ", ".join(names.get(t, t) for t in r.get("tags") or []))
    console.print(table)
    console.print(f"{len(runs)} run{'s' if len(runs) != 1 else ''}", highlight=False)


def _tag_names(conn: Connection, runs: list[dict[str, Any]]) -> dict[str, str]:
    if not any(r.get("tags") for r in runs):
        return {}
    page = conn.request("GET", f"/v1/clients/{_client(conn)}/tags", params={"limit": 1000})
    return {t["id"]: t["name"] for t in page["data"]}


@runs_app.command("show")
def runs_show(run_id: str, url: str = _URL, token: str = _TOKEN) -> None:
    """One run: parameters, metrics, metadata, checkpoints and files."""
    conn = _connect(url, token)
    r = _handle(lambda: conn.request("GET", f"/v1/training_runs/{run_id}"))
    console.print(f"[bold]{r['name']}[/bold] (run {r['id']}, {r['state']}, project {r['project']}"
                  + (f", experiment {r['experiment']}" if r.get("experiment") else "") + ")")
    console.print(f"  parameters: {_assignments_text(r['assignments'])}", highlight=False)
    console.print(f"  metrics: {_values_text(r)}", highlight=False)
    if r.get("metadata"):
        console.print(f"  metadata: {r['metadata']}", highlight=False)
    console.print(f"  checkpoints: {r['checkpoint_count']}  files: {', '.join(r['files']) or '-'}", highlight=False)
    for stream, log in (r.get("logs") or {}).items():
        if log.get("content"):
            console.print(f"  --- {stream} (last lines) ---", highlight=False)
            console.print("\n".join(log["content"].splitlines()[-10:]), highlight=False, markup=False)


@runs_app.command("archive")
def runs_archive(run_id: str, url: str = _URL, token: str = _TOKEN) -> None:
    """Archive a run (hidden from lists; ``PUT {"deleted": false}`` restores it)."""
    conn = _connect(url, token)
    _handle(lambda: conn.request("DELETE", f"/v1/training_runs/{run_id}"))
    console.print(f"archived run {run_id}")


@runs_app.command("export")
def runs_export(project: str = _PROJECT, experiment: str = typer.Option(None, help="Only this AI experiment."),
                state: str = typer.Option(None, help="active, completed or failed."),
                where: list[str] = _WHERE_OPT, tag: list[str] = _TAG_OPT, sort: str = _SORT_OPT,
                asc: bool = _ASC_OPT, archived: bool = typer.Option(False, help="Include archived runs."),
                fmt: str = typer.Option("csv", "--format", "-f", help="csv or json."),
                output: Path = typer.Option(None, "--output", "-o", help="File (default: stdout)."),
                url: str = _URL, token: str = _TOKEN) -> None:
    """Runs as CSV or JSON rows (assignments.*, values.*, metadata.* columns); oldest first unless --sort."""
    conn = _connect(url, token)
    runs = _runs(conn, project, experiment, state, where, tag, sort, asc, archived)
    if not sort:
        runs.reverse()
    names = _tag_names(conn, runs)
    rows = []
    for r in runs:
        if fmt == "json":
            rows.append(r)
        else:
            row = _run_row(r)
            row["tags"] = ";".join(names.get(t, t) for t in r.get("tags") or [])
            rows.append(row)
    _write_rows(rows, fmt, output)


@runs_app.command("unarchive")
def runs_unarchive(run_id: str, url: str = _URL, token: str = _TOKEN) -> None:
    """Restore an archived run."""
    from assay import tracking

    conn = _connect(url, token)
    _handle(lambda: tracking.unarchive_run(run_id, connection=conn))
    console.print(f"restored run {run_id}")


@runs_app.command("favorite")
def runs_favorite(run_id: str, off: bool = typer.Option(False, "--off", help="Remove the mark instead."),
                  url: str = _URL, token: str = _TOKEN) -> None:
    """Mark a run as a favorite (or not, with --off)."""
    conn = _connect(url, token)
    _handle(lambda: conn.request("MERGE", f"/v1/training_runs/{run_id}", json={"favorite": not off}))
    console.print(f"run {run_id} {'is no longer' if off else 'is'} a favorite")


@runs_app.command("tag")
def runs_tag(run_id: str, tags: list[str] = typer.Argument(..., help="Tag names (new ones are made) or ids."),
             url: str = _URL, token: str = _TOKEN) -> None:
    """Tag a run."""
    conn = _connect(url, token)
    _handle(lambda: conn.request("MERGE", f"/v1/training_runs/{run_id}", json={"tags": tags}))
    console.print(f"tagged run {run_id}: {', '.join(tags)}", highlight=False)


@runs_app.command("untag")
def runs_untag(run_id: str, tags: list[str] = typer.Argument(..., help="Tag names or ids."),
               url: str = _URL, token: str = _TOKEN) -> None:
    """Take tags off a run."""
    conn = _connect(url, token)
    known = {t["name"]: t["id"] for t in _handle(
        lambda: conn.request("GET", f"/v1/clients/{_client(conn)}/tags", params={"limit": 1000}))["data"]}
    for t in tags:
        tid = known.get(t, t)
        _handle(lambda tid=tid: conn.request("DELETE", f"/v1/training_runs/{run_id}/tags/{tid}"))
    console.print(f"untagged run {run_id}: {', '.join(tags)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the workflow commands to the ``assay`` command."""
    app.command()(init)
    app.command(context_settings=_PASSTHROUGH)(run)
    app.command(context_settings=_PASSTHROUGH)(optimize)
    app.command("start-worker", context_settings=_PASSTHROUGH)(start_worker)
    app.add_typer(experiments_app, name="experiments")
    app.add_typer(runs_app, name="runs")
