# didlearn: `make demo` animates the bundled portrait, `make test` runs every test and notebook.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Exact versions come from constraints.txt (`make lock` refreshes it); pyproject.toml keeps ranges.
# The stamp is keyed on both: installing again is a no-op until the dependencies change.
LOCK   := constraints.txt
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)

.PHONY: install lock lab test test-fast lint typecheck typecheck-baseline check demo benchmarks clean

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# The newest releases pyproject.toml allows, installed in a throwaway venv and written to the lock.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	{ sed -n '/^#/p' $(LOCK); .venv-lock/bin/pip freeze --exclude-editable | grep -v '^didlearn'; } \
		> $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock

lab: install
	$(VENV)/bin/jupyter lab notebooks/

test: install
	DIDLEARN_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbval-lax --durations=15

# Without the notebooks: neither nbval nor the browser test (which runs them all in JupyterLab).
test-fast: install
	DIDLEARN_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest tests --ignore=tests/test_browser.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(PY) .ci/typecheck.py

typecheck-baseline: install
	$(PY) .ci/typecheck.py --update

# What CI runs: lint, format check, type check, then every test and notebook.
check: lint typecheck test

demo: install
	$(VENV)/bin/didlearn demo

benchmarks: install
	$(PY) benchmarks/features_benchmark.py
	$(PY) benchmarks/flow_benchmark.py --data ../shared/data/flow
	$(PY) benchmarks/motion_benchmark.py
	$(PY) benchmarks/reenact_benchmark.py
	$(PY) benchmarks/animate_benchmark.py

clean:
	rm -rf $(VENV) .venv-lock *.egg-info .pytest_cache .mypy_cache didlearn-demo
