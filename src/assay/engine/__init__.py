"""Pure optimization: ``(space, observations, pending) -> candidates``. No I/O here.

The service builds a :class:`Problem` from stored data and calls
:func:`assay.engine.strategy.suggest`; everything below works on numbers only.
"""

from assay.engine.problem import Candidate, Problem

__all__ = ["Candidate", "Problem"]
