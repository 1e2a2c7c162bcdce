# didlearn: `make demo` animates the bundled portrait, `make test` runs every test and notebook.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The stamp is keyed on pyproject.toml: installing again is a no-op until the dependencies change.
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install lab test test-fast lint demo benchmarks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

lab: install
	$(VENV)/bin/jupyter lab notebooks/

test: install
	DIDLEARN_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbval-lax --durations=15

test-fast: install
	DIDLEARN_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest tests

lint: install
	$(VENV)/bin/ruff check .

demo: install
	$(VENV)/bin/didlearn demo

benchmarks: install
	$(PY) benchmarks/features_benchmark.py
	$(PY) benchmarks/flow_benchmark.py --data ../shared/data/flow
	$(PY) benchmarks/motion_benchmark.py
	$(PY) benchmarks/reenact_benchmark.py
	$(PY) benchmarks/animate_benchmark.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache didlearn-demo
