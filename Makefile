# Two entry points for a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KERNEL := scalerepro
PROFILE ?= full
OUT ?= out
SCHEDULER ?=

.PHONY: reproduce test test-generic-cpu venv notebook-env dev-env bench clean strip-notebooks mutants

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

## Unit, recovery, notebook and end-to-end tests, then the numerics tests on generic code.
test: dev-env
	$(BIN)/python -m pytest -q --durations=15 $(PYTEST_ARGS)
	@$(GENERIC_CPU_TESTS)

# The tests that compare the compiled kernel with the numpy solver, or pin the fitter's
# optima, once more with numba compiling for a generic x86-64 CPU (no AVX, no FMA) into a
# fresh cache, so that no host code is reused: a test that passes only with this machine's
# last bits fails here, not on a user's machine (issue 28). About a minute, the kernel's
# compilation included (test_determinism, which runs the ci notebooks twice, is left out).
NUMERICS_TESTS := tests/test_fit_speed_correctness.py tests/test_numerics.py tests/test_constraints.py \
	tests/test_laws_fit.py tests/test_fit_property.py
GENERIC_CPU_TESTS = cache=$$(mktemp -d) && echo "numerics tests with NUMBA_CPU_NAME=generic (cache $$cache)" && \
	NUMBA_CPU_NAME=generic NUMBA_CACHE_DIR=$$cache $(BIN)/python -m pytest -q -p no:cacheprovider $(NUMERICS_TESTS); \
	status=$$?; rm -rf $$cache; exit $$status

test-generic-cpu: dev-env
	@$(GENERIC_CPU_TESTS)

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
