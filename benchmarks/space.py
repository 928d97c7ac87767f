"""A tiny search-space description shared by problems and optimizer adapters (JSON-serialisable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Param", "double", "integer", "categorical", "sample", "clip", "to_json", "from_json"]


@dataclass(frozen=True)
class Param:
    """One parameter: ``double`` / ``int`` in ``[low, high]`` (``log`` scale optional) or ``categorical``."""

    name: str
    kind: str  # "double" | "int" | "categorical"
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[str, ...] = field(default_factory=tuple)


def double(name: str, low: float, high: float, log: bool = False) -> Param:
    return Param(name, "double", float(low), float(high), log)


def integer(name: str, low: int, high: int, log: bool = False) -> Param:
    return Param(name, "int", int(low), int(high), log)


def categorical(name: str, *choices: str) -> Param:
    return Param(name, "categorical", choices=tuple(choices))


def sample(params: list[Param], rng: np.random.Generator) -> dict[str, Any]:
    """One uniform random point (log-uniform for ``log`` parameters)."""
    out: dict[str, Any] = {}
    for p in params:
        if p.kind == "categorical":
            out[p.name] = p.choices[int(rng.integers(len(p.choices)))]
        elif p.kind == "int":
            if p.log:
                v = np.exp(rng.uniform(np.log(p.low), np.log(p.high + 1)))
                out[p.name] = int(min(max(np.floor(v), p.low), p.high))
            else:
                out[p.name] = int(rng.integers(int(p.low), int(p.high) + 1))
        elif p.log:
            out[p.name] = float(np.exp(rng.uniform(np.log(p.low), np.log(p.high))))
        else:
            out[p.name] = float(rng.uniform(p.low, p.high))
    return out


def clip(params: list[Param], x: dict[str, Any]) -> dict[str, Any]:
    """Coerce an optimizer's answer to the space (types, bounds); raises on unknown categories."""
    out: dict[str, Any] = {}
    for p in params:
        v = x[p.name]
        if p.kind == "categorical":
            v = str(v)
            if v not in p.choices:
                raise ValueError(f"{p.name}={v!r} is not one of {p.choices}")
            out[p.name] = v
        elif p.kind == "int":
            out[p.name] = int(min(max(round(float(v)), p.low), p.high))
        else:
            out[p.name] = float(min(max(float(v), p.low), p.high))
    return out


def to_json(params: list[Param]) -> list[dict[str, Any]]:
    return [asdict(p) for p in params]


def from_json(data: list[dict[str, Any]]) -> list[Param]:
    return [Param(**{**d, "choices": tuple(d.get("choices") or ())}) for d in data]
