"""The public ``sigopt`` client's run-tracking calls, unchanged, against a real assay server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sigopt import Connection as SigOptConnection
from sigopt.exception import ApiException, ProjectNotFoundException
from sigopt.factory import SigOptFactory
from sigopt.file_utils import create_api_image_payload

import assay
from tests.conftest import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module (each test uses its own projects)."""
    proc = ServerProcess(tmp_path_factory.mktemp("sigopt-tracking")).start()
    yield proc
    proc.stop()


@pytest.fixture
def sig(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> SigOptConnection:
    monkeypatch.setenv("SIGOPT_API_URL", server.url)
    return SigOptConnection(client_token="any-token")


def test_project_and_run_tracking(sig: SigOptConnection, server: ServerProcess) -> None:
    factory = SigOptFactory("tracking-test", connection=sig)
    with pytest.raises(ProjectNotFoundException):
        factory.ensure_project_exists()
    project = factory.create_project(name="Tracking test")
    assert project.id == "tracking-test" and project.name == "Tracking test"
    with pytest.raises(ApiException) as dup:
        sig.clients(project.client).projects().create(id="tracking-test", name="again")
    assert dup.value.status_code == 409

    image = (np.arange(48 * 32 * 3).reshape(48, 32, 3) % 256).astype(np.uint8)
    expected_png = create_api_image_payload(image)[1].getvalue()
    with factory.create_run(name="first") as run:
        run.params.setdefaults(lr=0.01, layers=3)
        run.params.update(optimizer="adam")
        run.log_metric("accuracy", 0.91, stddev=0.02)
        run.log_metrics({"loss": 0.3, "f1": 0.88})
        for step in range(3):
            run.log_checkpoint({"loss": 1.0 / (step + 1), "accuracy": 0.5 + step / 10})
        run.log_metadata("team", "vision")
        run.log_metadata("epochs", 12)
        run.log_dataset("mnist")
        run.log_model("ResNet")
        run.log_source_code(content="print('hi')", hash="abc123")
        run.set_logs({"stdout": "line1\nline2\n", "stderr": ""})
        run.log_image(image, name="weights")
        run_id = run.id

    fetched = sig.training_runs(run_id).fetch()
    assert fetched.state == "completed" and fetched.finished is True and fetched.completed
    assert fetched.project == "tracking-test" and fetched.name == "first"
    assert dict(fetched.assignments) == {"lr": 0.01, "layers": 3, "optimizer": "adam"}
    assert fetched.values["accuracy"].value == pytest.approx(0.91)
    assert fetched.values["accuracy"].value_stddev == pytest.approx(0.02)
    assert fetched.values["loss"].value == pytest.approx(0.3) and fetched.values["f1"].value == pytest.approx(0.88)
    assert fetched.metadata["team"] == "vision" and fetched.metadata["epochs"] == 12
    assert fetched.datasets == ["mnist"] and fetched.model.type == "ResNet"
    assert fetched.source_code.hash == "abc123" and fetched.source_code.content == "print('hi')"
    assert fetched.logs["stdout"] == "line1\nline2\n"
    assert fetched.checkpoint_count == 3 and len(fetched.files) == 1

    checkpoints = list(sig.training_runs(run_id).checkpoints().fetch().iterate_pages())
    assert len(checkpoints) == 3
    assert sorted(c.values[0].value for c in checkpoints if c.values[0].name == "loss") == pytest.approx(
        [1 / 3, 1 / 2, 1.0])

    # the image went through the presigned-upload dance and comes back byte-identical
    meta = httpx.get(f"{server.url}/v1/files/{fetched.files[0]}").json()
    assert meta["name"] == "weights" and meta["content_type"] == "image/png" and meta["uploaded"] is True
    body = httpx.get(f"{server.url}/v1/files/{fetched.files[0]}/content").content
    assert body == expected_png

    # a failed run; archive and unarchive
    with pytest.raises(RuntimeError):
        with factory.create_run(name="crash") as run2:
            run2.log_metric("accuracy", 0.1)
            raise RuntimeError("boom")
    assert sig.training_runs(run2.id).fetch().state == "failed"
    factory.archive_run(run2.id)
    assert sig.training_runs(run2.id).fetch().deleted is True
    listed = list(sig.clients(project.client).projects("tracking-test").training_runs().fetch().iterate_pages())
    assert [r.id for r in listed] == [run_id]
    factory.unarchive_run(run2.id)
    listed = list(sig.clients(project.client).projects("tracking-test").training_runs().fetch().iterate_pages())
    assert {r.id for r in listed} == {run_id, run2.id}

    uploaded = factory.upload_runs([{"name": "offline", "state": "completed", "values": {"accuracy": {"value": 0.5}}}])
    assert len(uploaded) == 1 and sig.training_runs(uploaded[0].id).fetch().values["accuracy"].value == 0.5


def test_aiexperiment_loop(sig: SigOptConnection) -> None:
    factory = SigOptFactory("ai-loop", connection=sig)
    factory.create_project()
    exp = factory.create_aiexperiment(
        name="tune", budget=5,
        parameters=[dict(name="x", type="double", bounds=dict(min=0.0, max=1.0)),
                    dict(name="n", type="int", bounds=dict(min=1, max=4))],
        metrics=[dict(name="score", objective="maximize"), dict(name="time", strategy="store")],
    )
    assert exp.project == "ai-loop" and exp.progress.remaining_budget == 5
    seen = []
    for i, run in enumerate(exp.loop(name="trial")):
        seen.append(run.id)
        try:
            with run:
                x, n = run.params.x, run.params.n
                assert 0 <= x <= 1 and n in range(1, 5)
                with pytest.raises(ValueError):
                    run.params.x = 0.5  # suggested values are fixed
                if i == 1:
                    raise RuntimeError("crashed trial")
                if i == 2:
                    continue  # finished without its metric: a failed observation
                run.log_metric("score", -((x - 0.3) ** 2) - n / 10)
                run.log_metric("time", 1.5)
        except RuntimeError:
            pass
    assert len(seen) == 5
    exp.refresh()
    assert exp.progress.finished_run_count == 5 and exp.progress.remaining_budget == 0 and exp.is_finished()

    observations = list(sig.experiments(exp.id).observations().fetch().iterate_pages())
    assert len(observations) == 5 and sum(o.failed for o in observations) == 2
    runs = {r.id: r for r in exp.get_runs()}
    assert set(runs) == set(seen)
    assert runs[seen[1]].state == "failed" and runs[seen[2]].state == "completed"
    for r in runs.values():
        assert r.experiment == exp.id and r.observation is not None and r.suggestion is not None
    best = list(exp.get_best_runs())
    assert len(best) == 1
    good = [r for r in runs.values() if r.values and "score" in r.values]
    assert best[0].values["score"].value == pytest.approx(max(r.values["score"].value for r in good))

    # more runs than the budget are still allowed by the API; archiving the AI experiment
    factory.archive_aiexperiment(exp.id, include_runs=True)
    assert sig.aiexperiments(exp.id).fetch().state == "deleted"
    assert list(sig.clients(exp.client).projects("ai-loop").training_runs().fetch().iterate_pages()) == []


def test_errors(sig: SigOptConnection) -> None:
    with pytest.raises(ApiException) as err:
        sig.clients("1").projects().create(id="Bad Name!", name="x")
    assert err.value.status_code == 422 and "id" in str(err.value)
    with pytest.raises(ApiException) as err:
        sig.clients("2").projects().fetch()
    assert err.value.status_code == 404
    with pytest.raises(ApiException) as err:
        sig.training_runs("424242").fetch()
    assert err.value.status_code == 404
    with pytest.raises(ApiException) as err:
        sig.aiexperiments("77").fetch()
    assert err.value.status_code == 404
    sig.clients("1").projects().create(id="errs", name="errs")
    run = sig.clients("1").projects("errs").training_runs().create(name="r")
    with pytest.raises(ApiException) as err:
        sig.training_runs(run.id).update(values={"acc": {"value": "high"}})
    assert err.value.status_code == 422 and "values" in str(err.value)
    sig.training_runs(run.id).update(state="completed")
    with pytest.raises(ApiException) as err:
        sig.training_runs(run.id).update(state="active")
    assert err.value.status_code == 409
    assert sig.training_runs(run.id).fetch().state == "completed"


def test_sigopt_script_under_assay_run(server: ServerProcess, tmp_path: Path) -> None:
    """A script instrumented with `import sigopt` reports into the run `assay run --url` opened."""
    (tmp_path / "s.py").write_text("import sigopt\nsigopt.params.setdefault('lr', 0.3)\n"
                                   "sigopt.log_metric('acc', 0.77)\nsigopt.log_checkpoint({'loss': 0.4})\n")
    env = {**os.environ, "ASSAY_PROJECT": "sig-script",
           "PYTHONPATH": os.pathsep.join(p for p in [str(Path(assay.__file__).parents[1]),
                                                     os.environ.get("PYTHONPATH", "")] if p)}
    out = subprocess.run([sys.executable, "-m", "assay", "run", "--url", server.url, "--", sys.executable, "s.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    runs = httpx.get(f"{server.url}/v1/clients/1/projects/sig-script/training_runs").json()["data"]
    assert len(runs) == 1 and runs[0]["state"] == "completed" and runs[0]["assignments"] == {"lr": 0.3}
    assert runs[0]["values"]["acc"]["value"] == 0.77 and runs[0]["checkpoint_count"] == 1


def test_sigopt_client_tags_filters_and_sort(sig: SigOptConnection) -> None:
    import json

    project = SigOptFactory("tags-test", connection=sig).create_project(name="Tags")
    runs = sig.clients(project.client).projects(project.id).training_runs()
    made = [runs.create(name=f"t{i}", tags=["nightly"] if i else [],
                        values={"acc": {"value": 0.5 + i / 10}}, assignments={"lr": 10.0 ** -i}) for i in range(3)]
    nightly = made[1].tags
    assert len(nightly) == 1 and made[2].tags == nightly and made[0].tags == []
    # tags are ids of the team's tags, as in SigOpt; update replaces them
    updated = sig.training_runs(made[0].id).update(tags=nightly)
    assert updated.tags == nightly
    page = runs.fetch(filters=json.dumps([{"field": "values.acc", "operator": ">=", "value": 0.6}]),
                      sort="assignments.lr", ascending="true")
    assert [r.name for r in page.iterate_pages()] == ["t2", "t1"]
    page = runs.fetch(filters=json.dumps([{"field": "tags", "operator": "==", "value": nightly[0]}]),
                      sort="values.acc")
    assert [r.name for r in page.iterate_pages()] == ["t2", "t1", "t0"]
