# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip --disable-pip-version-check
# constraints.txt pins torch to the CPU build on disk (an unpinned torch pulls a ~3 GB CUDA build).
INSTALL := $(PIP) install -q -c constraints.txt

.PHONY: install dev demo test lint bench bench-quick clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(INSTALL) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(INSTALL) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev

demo: install
	$(VENV)/bin/assay demo

# pytest-xdist processes for the suite (0: one process); each starts its own fork server and PostgreSQL cluster.
TEST_WORKERS ?= 2

test: dev
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider -n $(TEST_WORKERS)

lint: dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src/assay benchmarks tests

# HEBO pins numpy<1.25, so it lives in its own venv (benchmarks/.venv-hebo) driven over a pipe.
bench: dev
	$(INSTALL) -e ".[bench]"
	$(PY) -c "import hebo" 2>/dev/null || test -x benchmarks/.venv-hebo/bin/python || $(PY) -m benchmarks setup-hebo
	nice $(PY) -m benchmarks $(BENCH_ARGS)

bench-quick: dev
	$(PY) -m benchmarks --quick --allow-missing

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
