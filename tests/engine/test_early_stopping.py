"""Early-stopping decisions from learning curves (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from assay.engine.early_stopping import Criterion, asha, asha_rungs, convergence, decide

CONV = Criterion("convergence", "plateau", "acc", lookback_checkpoints=2, min_checkpoints=3)


def test_convergence_waits_for_min_checkpoints_then_stops_on_a_plateau() -> None:
    assert not convergence([0.5, 0.5], CONV)  # too early to judge
    assert not convergence([0.5, 0.6, 0.7, 0.8], CONV)  # still improving
    assert convergence([0.5, 0.8, 0.79, 0.8], CONV)  # last 2 do not beat 0.8
    loss = Criterion("convergence", "plateau", "loss", maximize=False, lookback_checkpoints=2, min_improvement=0.01)
    assert not convergence([1.0, 0.5, 0.4, 0.3], loss)
    assert convergence([1.0, 0.5, 0.499, 0.498], loss)  # gains under 1% of 0.5


def test_asha_keeps_the_top_third_at_each_rung() -> None:
    c = Criterion("asha", "asha", "acc", min_checkpoints=1, reduction_factor=3)
    assert asha_rungs(c, 30) == [1, 3, 9, 27]
    others = [[0.9], [0.8]]
    assert asha([0.5], others, c)  # bottom of three at rung 1
    assert not asha([0.95], others, c)  # top third
    assert not asha([0.5], [[0.9]], c)  # two runs cannot be judged with eta = 3
    assert not asha([0.5, 0.6], others, c)  # 2 checkpoints: not a rung
    lo = Criterion("asha", "asha", "loss", maximize=False, min_checkpoints=1, reduction_factor=2)
    assert asha([3.0, 2.45], [[1.0, 0.5], [5.0, 4.0], [2.5, 2.4]], lo)  # rung 2: 2.45 is not in the best half
    assert not asha([3.0, 0.1], [[1.0, 0.5], [5.0, 4.0], [2.5, 2.4]], lo)


def test_decide_reports_every_reason() -> None:
    crit = [CONV, Criterion("asha", "halving", "acc", reduction_factor=2)]
    d = decide({"acc": [0.1]}, {"acc": [[0.9], [0.8], [0.7]]}, crit, 1, max_checkpoints=10)
    assert d.should_stop and d.reasons == {"plateau": False, "halving": True, "max_checkpoints": False}
    d = decide({"acc": [0.95]}, {"acc": [[0.9]]}, crit, 10, max_checkpoints=10)
    assert d.should_stop and d.reasons["max_checkpoints"] and not d.reasons["halving"]
    assert not decide({}, {}, crit, 1).should_stop  # no values for the metric yet
    with pytest.raises(ValueError):
        decide({}, {}, [Criterion("magic", "m", "acc")], 1)


def test_asha_saves_most_of_the_training_on_synthetic_curves() -> None:
    """Runs stopped by ASHA spend far fewer checkpoints, and the best final run survives."""
    rng = np.random.default_rng(0)
    finals = rng.uniform(0.5, 0.95, 27)
    curves = [[f * (1 - np.exp(-(t + 1) / 5)) for t in range(27)] for f in finals]
    c = Criterion("asha", "asha", "acc", min_checkpoints=1, reduction_factor=3)
    done: list[list[float]] = []
    for curve in curves:  # runs arrive one after the other (asynchronous)
        seen: list[float] = []
        for v in curve:
            seen.append(v)
            if decide({"acc": seen}, {"acc": done}, [c], len(seen)).should_stop:
                break
        done.append(seen)
    spent = sum(len(s) for s in done)
    assert spent < 0.5 * 27 * 27
    assert len(done[int(np.argmax(finals))]) == 27  # the best configuration trained to the end
