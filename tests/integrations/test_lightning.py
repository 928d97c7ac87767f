"""AssayLogger driven by a real (tiny, CPU, seconds) PyTorch Lightning training."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

import assay
from assay.integrations.lightning import AssayLogger

pytestmark = [pytest.mark.filterwarnings("ignore:.*does not have many workers"),
              pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
              pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")]


class Tiny(pl.LightningModule):
    """Linear regression; ``crash_at`` makes training_step raise at that global step."""

    def __init__(self, lr: float = 0.1, hidden: int = 4, optimizer: str = "sgd", layout: dict | None = None,
                 crash_at: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.Linear(hidden, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> torch.Tensor:
        if self.hparams["crash_at"] is not None and self.global_step == self.hparams["crash_at"]:
            raise RuntimeError("loss exploded")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    return DataLoader(TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]])), batch_size=16)


def _trainer(logger: AssayLogger, tmp_path: Path, epochs: int = 2) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, logger=logger, log_every_n_steps=1, accelerator="cpu", devices=1,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=tmp_path)


def test_logger_records_a_training_as_a_run(embedded: assay.Connection, tmp_path: Path) -> None:
    logger = AssayLogger(project="lightning", name="tiny", connection=embedded)
    trainer = _trainer(logger, tmp_path)
    trainer.fit(Tiny(lr=0.05, layout={"act": "relu", "depth": 2}), _data(), _data())
    run = embedded.request("GET", f"/v1/training_runs/{logger.version}")
    assert run["state"] == "completed" and run["name"] == "tiny" and run["project"] == "lightning"
    assert run["assignments"] == {"lr": 0.05, "hidden": 4, "optimizer": "sgd", "layout.act": "relu",
                                  "layout.depth": 2}
    cps = sorted(embedded.request("GET", f"/v1/training_runs/{logger.version}/checkpoints",
                                  params={"limit": 1000})["data"], key=lambda c: c["step"])
    train = [c for c in cps if c["values"][0]["name"] == "train_loss"]
    assert [c["metadata"]["step"] for c in train] == list(range(8))  # 4 batches x 2 epochs
    assert [c["metadata"]["epoch"] for c in train] == [0] * 4 + [1] * 4
    val = [c for c in cps if c["values"][0]["name"] == "val_loss"]
    assert len(val) == 2 and len(cps) == 10
    # the run's metrics are the last logged values
    assert run["values"]["train_loss"]["value"] == pytest.approx(train[-1]["values"][0]["value"])
    assert run["values"]["val_loss"]["value"] == pytest.approx(float(trainer.callback_metrics["val_loss"]))
    assert train[-1]["values"][0]["value"] < train[0]["values"][0]["value"]  # it learned


def test_a_crash_fails_the_logger_s_run(embedded: assay.Connection, tmp_path: Path) -> None:
    logger = AssayLogger(project="lightning", name="crash", connection=embedded)
    with pytest.raises(RuntimeError, match="loss exploded"):
        _trainer(logger, tmp_path).fit(Tiny(crash_at=3), _data())
    run = embedded.request("GET", f"/v1/training_runs/{logger.version}")
    assert run["state"] == "failed" and run["checkpoint_count"] == 3 and run["values"] == {}


def test_logger_inside_an_experiment_loop(embedded: assay.Connection, tmp_path: Path) -> None:
    exp = assay.create_experiment(
        name="lightning loop", project="lightning", connection=embedded, budget=2,
        parameters=[{"name": "lr", "type": "double", "bounds": {"min": 0.01, "max": 0.2}}],
        metrics=[{"name": "val_loss", "objective": "minimize"}])
    versions = []
    for run in exp.loop():
        logger = AssayLogger()  # reports to the loop's run, which the loop ends
        _trainer(logger, tmp_path, epochs=1).fit(Tiny(lr=run.params.lr), _data(), _data())
        versions.append(logger.version)
        assert versions[-1] == run.id
    runs = {r["id"]: r for r in exp.runs()}
    assert set(runs) == set(versions)
    for r in runs.values():
        assert r["state"] == "completed" and r["checkpoint_count"] == 5 and r["observation"]
        assert set(r["assignments"]) >= {"lr", "hidden", "optimizer"}  # suggested lr kept, others recorded
    obs = embedded.request("GET", f"/v1/experiments/{exp.id}/observations")["data"]
    assert len(obs) == 2 and not any(o["failed"] for o in obs)
    assert {o["values"][0]["value"] for o in obs} == {r["values"]["val_loss"]["value"] for r in runs.values()}
