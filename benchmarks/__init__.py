"""assay's benchmark harness: optimizers x problems x seeds at equal budgets, scored like Bayesmark.

Run ``python -m benchmarks --help``. Only numpy is imported at package level so the HEBO
worker can import this package from its own virtual environment (see :mod:`benchmarks.worker`).
"""
