"""PyTorch Lightning logger recording a training as an assay run (needs ``pytorch-lightning`` or ``lightning``).

::

    from assay.integrations.lightning import AssayLogger

    trainer = Trainer(logger=AssayLogger(project="mnist", name="baseline"), max_epochs=5)
    trainer.fit(model)          # hyperparameters, a checkpoint per logging step, final metrics, run state

Inside ``with assay.create_run() as run:`` or ``for run in experiment.loop():`` the logger reports to that run
(which the ``with``/loop ends); otherwise it opens its own run and ends it when training ends (``failed`` when
training raised).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

try:  # the standalone package first: its Trainer only accepts its own Logger subclasses
    from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment
    from pytorch_lightning.utilities import rank_zero_only
except ImportError:  # pragma: no cover - exercised where only the unified `lightning` package is installed
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment  # type: ignore[no-redef]
    from lightning.pytorch.utilities import rank_zero_only  # type: ignore[no-redef]

from assay import tracking
from assay.service_runs import MAX_CHECKPOINTS

if TYPE_CHECKING:
    from assay.client import Connection

__all__ = ["AssayLogger"]

_SCALAR = (str, int, float, bool)


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


class AssayLogger(Logger):
    """A Lightning ``Logger`` writing to an assay run.

    - ``log_hyperparams``: scalar hyperparameters become the run's parameters (suggested ones are kept as
      suggested), anything else goes to its metadata as text;
    - ``log_metrics``: each call is a checkpoint (``step`` and ``epoch`` in its metadata; at most 200 per run,
      later ones are skipped); the last value of every metric becomes the run's metric when training ends;
    - ``finalize``: ends the run the logger opened (``completed``, or ``failed`` when training raised).

    ``run`` is a :class:`assay.tracking.RunContext` (default: the current run, else a new one in ``project``
    named ``name``). Non-finite values (a diverged loss) are left out of checkpoints and metrics.
    """

    def __init__(self, run: tracking.RunContext | None = None, *, project: str | None = None,
                 name: str | None = None, connection: Connection | None = None, log_final_metrics: bool = True,
                 ignore: tuple[str, ...] = ("epoch",)) -> None:
        super().__init__()
        self._run = run
        self._owned = False
        self._project, self._run_name, self._connection = project, name, connection
        self._log_final = log_final_metrics
        self._ignore = set(ignore)
        self._last: dict[str, float] = {}
        self._checkpoints = 0

    # -- the run ----------------------------------------------------------------------------
    @property
    @rank_zero_experiment
    def experiment(self) -> tracking.RunContext:
        """The run this logger writes to (opened on first use)."""
        if self._run is None:
            current = tracking.current_run()
            if current is not None:
                self._run = current
            else:
                self._run = tracking.create_run(self._run_name or "lightning", project=self._project,
                                                capture=False, connection=self._connection)
                self._owned = True
        return self._run

    @property
    def name(self) -> str:
        return "assay"

    @property
    def version(self) -> str:
        return self.experiment.id

    # -- Lightning's calls ------------------------------------------------------------------
    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        raw = vars(params) if hasattr(params, "__dict__") and not isinstance(params, Mapping) else dict(params or {})
        flat = _flatten(raw)
        run = self.experiment
        assignments: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        for key, value in flat.items():
            if value is None:
                continue
            if isinstance(value, _SCALAR) and not (isinstance(value, float) and not math.isfinite(value)):
                if key in run.params._fixed:
                    continue  # suggested by the experiment: the run already has it
                assignments[key] = value
            else:
                metadata[f"hparams.{key}"] = str(value)[:10_000]
        if assignments:
            run.params.update(assignments)
        if metadata:
            run.log_metadata(metadata)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values: dict[str, float] = {}
        meta: dict[str, Any] = {} if step is None else {"step": int(step)}
        for key, value in metrics.items():
            number = float(value.item() if hasattr(value, "item") else value)
            if key in self._ignore:
                meta[key] = int(number) if number.is_integer() else number
            elif math.isfinite(number):
                values[key] = number
        if not values:
            return
        self._last.update(values)
        if self._checkpoints < MAX_CHECKPOINTS:
            self.experiment.log_checkpoint(values, metadata=meta)
            self._checkpoints += 1

    @rank_zero_only
    def save(self) -> None:
        """Nothing to flush: every call already reached the run."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run is None:
            return  # nothing was ever logged
        if self._log_final and self._last and status != "failed":
            self._run.log_metrics(self._last)
        if self._owned and not self._run.ended:
            self._run.end(failed=status == "failed")
