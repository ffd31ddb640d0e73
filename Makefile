# Two entry points for a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KERNEL := scalerepro
PROFILE ?= full
OUT ?= out
SCHEDULER ?=

.PHONY: reproduce test venv notebook-env dev-env bench clean strip-notebooks mutants

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Both register the "Python (scalerepro)" kernel that the notebooks name, for JupyterLab; the
# runner prefers it but needs none (pip and conda installs run notebooks in their own Python).
notebook-env: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[notebook]'
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name $(KERNEL) --display-name "Python (scalerepro)" >/dev/null

dev-env: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name $(KERNEL) --display-name "Python (scalerepro)" >/dev/null

## Run every replication at the full profile and write reports under out/.
## SCHEDULER=local:N (or a Dask scheduler's address) runs one notebook per Dask task.
reproduce: notebook-env
	$(if $(SCHEDULER),$(BIN)/python -m pip install --quiet -e '.[cluster]')
	$(BIN)/scalerepro run --all --profile $(PROFILE) --out $(OUT)$(if $(SCHEDULER), --scheduler $(SCHEDULER)); status=$$?; \
	$(BIN)/scalerepro report --out $(OUT) && exit $$status

## Unit, recovery, notebook and end-to-end tests.
test: dev-env
	$(BIN)/python -m pytest -q --durations=15 $(PYTEST_ARGS)

## Mutation testing of the code that decides verdicts, intervals and hold-out scores: prints
## the mutants no fast test kills (docs/mutation-testing.md). Slow (tens of minutes); not in `test`.
mutants: dev-env
	$(BIN)/python tools/mutants.py $(MUTANTS_ARGS)

bench: dev-env
	$(BIN)/python benchmarks/bench_fit.py
	$(BIN)/python benchmarks/bench_sensitivity.py
	$(BIN)/python benchmarks/bench_fit_command.py

strip-notebooks: $(BIN)/python
	$(BIN)/python tools/strip_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(OUT) .pytest_cache build/mutation
