# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
DEMO_RUNS ?= 5000
export FLASK_APP := runstats_app

.PHONY: run test lint format clean

$(BIN)/activate: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

run: $(BIN)/activate
	$(BIN)/flask db upgrade
	$(BIN)/flask demo-data --runs $(DEMO_RUNS) --if-empty
	$(BIN)/gunicorn -c gunicorn.conf.py --bind 0.0.0.0:$(PORT) --workers $${WEB_CONCURRENCY:-2} wsgi:app

test: $(BIN)/activate
	$(BIN)/pytest -n auto -p no:cacheprovider $(PYTEST_ARGS)

lint: $(BIN)/activate
	$(BIN)/ruff check .
	$(BIN)/ruff format --check runstats_app tests wsgi.py gunicorn.conf.py
	$(BIN)/mypy

format: $(BIN)/activate
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format runstats_app tests wsgi.py gunicorn.conf.py

# Schema fuzzing through gunicorn (tests/test_fuzz.py) with FUZZ_EXAMPLES per operation;
# `make test` runs 20.
FUZZ_EXAMPLES ?= 200
.PHONY: fuzz
fuzz: $(BIN)/activate
	RUNSTATS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -p no:cacheprovider -q tests/test_fuzz.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Benchmarks (bench/run.py): the full suite on RUNSTATS_BENCH_DATABASE_URL (default: the
# local runstats_bench database with a million runs), rewriting bench/RESULTS.md; the
# quick one on a fresh 5,000-run database for CI, writing bench/RESULTS-quick.md.
.PHONY: bench bench-quick
BENCH_ARGS ?=

bench: $(BIN)/activate
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: $(BIN)/activate
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)
