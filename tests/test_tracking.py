"""The Python tracking API (assay.create_run, assay.log_*, experiment.loop()) embedded and remote."""

from __future__ import annotations

import hashlib
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import assay
from assay import tracking


def _content(conn: assay.Connection, file_id: str) -> bytes:
    resp = conn._transport.client.get(f"/v1/files/{file_id}/content")
    assert resp.status_code == 200
    return resp.content


def test_create_run_logs_everything(conn: assay.Connection, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(bytes(range(256)) * 64)
    image = (np.arange(30 * 20 * 3).reshape(30, 20, 3) % 256).astype(np.uint8)
    with assay.create_run("baseline", project="track", connection=conn) as run:
        assert tracking.current_run() is run
        assay.params.setdefaults(lr=0.01, depth=4)
        assay.params.depth = 5
        print("hello from the run")
        print("warning on stderr", file=sys.stderr)
        assay.log_metric("accuracy", 0.9, stddev=0.01)
        assay.log_metrics({"loss": 0.2}, f1=(0.8, 0.05))
        assay.log_checkpoint({"loss": 0.5}, metadata={"epoch": 1})
        assay.log_metadata("note", {"not": "a scalar"})
        assay.log_dataset("digits")
        assay.log_model(run)  # an object: its type name is recorded
        image_file = assay.log_image(image, name="img")
        file_obj = assay.log_file(artifact, name="weights")
        with pytest.raises(ValueError):
            assay.log_metric("accuracy", float("inf"))
    assert tracking.current_run() is None
    assert "hello from the run" in capsys.readouterr().out
    r = conn.request("GET", f"/v1/training_runs/{run.id}")
    assert r["state"] == "completed" and r["project"] == "track"
    assert r["assignments"] == {"lr": 0.01, "depth": 5}
    assert r["assignments_meta"] == {"lr": {"source": "user"}, "depth": {"source": "user"}}
    assert "warning on stderr" in r["logs"]["stderr"]["content"]
    assert r["values"]["accuracy"]["value_stddev"] == 0.01 and r["values"]["f1"]["value_stddev"] == 0.05
    assert r["metadata"]["note"] == "{'not': 'a scalar'}" and list(r["datasets"]) == ["digits"]
    assert r["model"]["type"] == "RunContext" and r["checkpoint_count"] == 1
    assert "hello from the run" in r["logs"]["stdout"]["content"]
    assert _content(conn, file_obj["id"]) == artifact.read_bytes()
    assert file_obj["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    png = _content(conn, image_file["id"])
    assert png.startswith(b"\x89PNG") and image_file["content_type"] == "image/png"
    # decode our PNG back: the pixels survive
    idat = png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8]
    rows = zlib.decompress(idat)
    assert np.array_equal(np.frombuffer(rows, np.uint8).reshape(30, 1 + 60)[:, 1:].reshape(30, 20, 3), image)


def test_failures_and_outside_a_run(embedded: assay.Connection) -> None:
    assert assay.log_metric("x", 1.0) is None  # no run: a no-op
    with pytest.raises(RuntimeError):
        with assay.create_run("crash", project="track", connection=embedded, capture=False) as run:
            raise RuntimeError("bad batch")
    r = embedded.request("GET", f"/v1/training_runs/{run.id}")
    assert r["state"] == "failed" and "bad batch" in r["metadata"]["error"]
    with assay.create_run("gave up", project="track", connection=embedded, capture=False) as run2:
        assay.log_failure()
    assert embedded.request("GET", f"/v1/training_runs/{run2.id}")["state"] == "failed"
    with pytest.raises(TypeError):
        run2.log_image(object())


def test_experiment_loop(embedded: assay.Connection) -> None:
    exp = assay.create_experiment(
        name="loop", project="track", connection=embedded, budget=4,
        parameters=[{"name": "x", "type": "double", "bounds": {"min": -1, "max": 1}}],
        metrics=[{"name": "y", "objective": "minimize"}])
    ids = []
    for i, run in enumerate(exp.loop()):
        ids.append(run.id)
        with pytest.raises(ValueError):
            assay.params.x = 5.0  # suggested: fixed
        if i == 1:
            assay.log_failure()
            continue
        if i == 2:
            continue  # never logs y: a failed observation
        assay.log_metric("y", assay.params.x ** 2)
    assert len(ids) == 4 and exp.is_finished()
    runs = {r["id"]: r for r in exp.runs()}
    assert set(runs) == set(ids)
    assert [runs[i]["state"] for i in ids] == ["completed", "failed", "completed", "completed"]
    assert runs[ids[0]]["assignments_meta"]["x"] == {"source": "assay"}  # suggested
    obs = embedded.request("GET", f"/v1/experiments/{exp.id}/observations")["data"]
    assert sum(o["failed"] for o in obs) == 2
    best = exp.get_best_runs()
    assert len(best) == 1 and best[0]["id"] in (ids[0], ids[3])


def _loop_experiment(conn: assay.Connection, budget: int) -> tracking.AIExperiment:
    return assay.create_experiment(
        name="raising loop", project="track", connection=conn, budget=budget,
        parameters=[{"name": "x", "type": "double", "bounds": {"min": -1, "max": 1}}],
        metrics=[{"name": "y", "objective": "minimize"}])


def test_exception_in_loop_body_fails_run_and_observation(conn: assay.Connection) -> None:
    exp = _loop_experiment(conn, 5)
    ids: list[str] = []
    with pytest.raises(ValueError, match="diverged"):
        for run in exp.loop():
            ids.append(run.id)
            print(f"training run {run.id}")
            assay.log_metric("y", run.params.x ** 2)
            if len(ids) == 2:  # after logging its metric: still a failed run
                raise ValueError("diverged")
    assert tracking.current_run() is None
    for run in exp.loop():  # break ends the run normally
        ids.append(run.id)
        run.log_metric("y", 0.5)
        break
    with pytest.raises(KeyboardInterrupt):
        for run in exp.loop():
            ids.append(run.id)
            raise KeyboardInterrupt
    runs = {r["id"]: r for r in exp.runs()}
    assert [runs[i]["state"] for i in ids] == ["completed", "failed", "completed", "failed"]
    assert runs[ids[1]]["metadata"]["error"] == "the loop body raised an exception"
    assert f"training run {ids[0]}" in runs[ids[0]]["logs"]["stdout"]["content"]  # captured per run
    obs = {o["id"]: o for o in conn.request("GET", f"/v1/experiments/{exp.id}/observations")["data"]}
    assert [obs[runs[i]["observation"]]["failed"] for i in ids] == [False, True, False, True]
    assert obs[runs[ids[2]]["observation"]]["values"][0]["value"] == 0.5
    assert exp.refresh()["progress"]["remaining_budget"] == 1  # every run ended and was counted


def test_exception_in_create_run_fails_the_run(conn: assay.Connection) -> None:
    with pytest.raises(KeyboardInterrupt):
        with assay.create_run("interrupted", project="track", connection=conn, capture=False) as run:
            assay.log_metric("loss", 1.0)
            raise KeyboardInterrupt
    r = conn.request("GET", f"/v1/training_runs/{run.id}")
    assert r["state"] == "failed" and r["metadata"]["error"] == "KeyboardInterrupt"
    assert r["values"]["loss"]["value"] == 1.0  # what was logged stays


def test_left_by_exception_reads_the_closing_frame() -> None:
    def gen():  # type: ignore[no-untyped-def]
        try:
            yield 1
        except GeneratorExit:
            seen.append(tracking._left_by_exception(__import__("sys")._getframe().f_back))
            raise

    seen: list[bool] = []
    for _ in gen():
        break
    with pytest.raises(ZeroDivisionError):
        for _ in gen():
            1 / 0  # noqa: B018
    it = gen()
    next(it)
    del it  # dropped unfinished: counts as a failure
    assert seen == [False, True, True]
    assert tracking._left_by_exception(None) is True


def test_list_runs_tags_archive_and_source(conn: assay.Connection, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "train_model.py"
    script.write_text("print('training')\n")
    code = tracking.source_code(script)
    assert code == {"content": "print('training')\n"}  # not in a git checkout: no hash
    # the running script is sys.argv[0] (under pytest-xdist a worker's is "-c", no file): make it train_model.py
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setattr(tracking, "_own_source_cache", [])
    for i, (lr, opt) in enumerate([(0.1, "adam"), (0.01, "sgd"), (0.001, "adam")]):
        with assay.create_run(f"r{i}", project="lists", connection=conn, capture=False,
                              tags=["sweep"] + (["best"] if i == 1 else [])) as run:
            run.params.update(lr=lr, opt=opt)
            run.log_metric("acc", 0.5 + i / 10)
            if i == 2:
                run.add_tags("late")
                run.remove_tag("sweep")
                run.set_favorite()
    r = assay.get_run(run.id, connection=conn)
    assert r["favorite"] is True and r["source_code"]["content"] == code["content"]  # the running script
    got = assay.list_runs("lists", where=[("assignments.opt", "==", "adam")], sort="values.acc", connection=conn)
    assert [x["name"] for x in got] == ["r2", "r0"]
    assert [x["name"] for x in assay.list_runs("lists", where=[("tags", "==", "sweep")], connection=conn)] \
        == ["r1", "r0"]
    assert [x["name"] for x in assay.list_runs("lists", sort="assignments.lr", ascending=True, limit=2,
                                               connection=conn)] == ["r2", "r1"]
    assay.archive_run(run.id, connection=conn)
    assert [x["name"] for x in assay.list_runs("lists", connection=conn)] == ["r1", "r0"]
    assert len(assay.list_runs("lists", archived=True, connection=conn)) == 3
    assert assay.unarchive_run(run.id, connection=conn)["deleted"] is False
    assert len(assay.list_runs("lists", connection=conn)) == 3
    with pytest.raises(assay.InvalidRequest):
        assay.list_runs("lists", where=[("values.acc", ">", "high")], connection=conn)


def test_long_logs_keep_their_end() -> None:
    text = "".join(f"line {i}\n" for i in range(200_000))
    out = tracking._tail(text)
    assert len(out) < tracking.MAX_LOG_CHARS + 100 and out.endswith("line 199999\n")
    assert out.startswith("[assay: log truncated") and tracking._tail("short") == "short"


def test_log_image_from_pil_matplotlib_and_path(embedded: assay.Connection, tmp_path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    pil = Image.new("RGB", (7, 5), (200, 10, 30))
    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.plot([0, 1], [1, 0])
    jpeg = tmp_path / "photo.jpg"
    pil.save(jpeg)
    with assay.create_run("images", project="track", connection=embedded, capture=False) as run:
        from_pil = run.log_image(pil, name="pil")
        from_fig = run.log_image(fig, name="figure")
        from_axes = run.log_image(ax, name="axes")
        from_path = run.log_image(jpeg)
        with pytest.raises(ValueError, match="not an image"):
            run.log_image(tmp_path / "notes.txt")
    plt.close(fig)
    back = Image.open(io.BytesIO(_content(embedded, from_pil["id"])))
    assert back.size == (7, 5) and back.getpixel((3, 2)) == (200, 10, 30)  # lossless PNG
    for f in (from_fig, from_axes):
        png = Image.open(io.BytesIO(_content(embedded, f["id"])))
        assert f["content_type"] == "image/png" and png.size == (100, 100)
    assert from_path["content_type"] == "image/jpeg" and from_path["filename"] == "photo.jpg"
    assert _content(embedded, from_path["id"]) == jpeg.read_bytes()
    assert len(embedded.request("GET", f"/v1/training_runs/{run.id}")["files"]) == 4
