# make run: the whole system on this machine (qcdc up). make test: lint, types, tests.
# Needs only Python 3.11+ and make; the virtual environment is built on first use.

PYTHON ?= python3
VENV = .venv
BIN = $(VENV)/bin
# Touched after a successful install: pip runs again only when pyproject.toml changes.
STAMP = $(VENV)/.installed
# Extra options for qcdc up, e.g. make run UP_ARGS="--data-dir /tmp/qcdc --no-seed"
UP_ARGS =

.PHONY: venv run test test-fast lint bench clean browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

run: venv
	$(BIN)/qcdc up $(UP_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services scripts tests bench examples

# Two pytest-xdist workers, each file on one worker (its module-scoped fixtures made once).
# TEST_WORKERS=0 runs the suite in one process. (Not --dist loadgroup: with pytest 9.2 it
# silently ignores the groups, pytest-dev/pytest-xdist#1386.)
TEST_WORKERS ?= 2
test: lint browser
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

# The unit tests alone (no servers): seconds, for the edit-test loop.
test-fast: venv
	$(BIN)/pytest -q tests/unit

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
CHROMIUM = /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

# Benchmarks print JSON and compare against a baseline measured in the same run
# (docs/performance.md). BENCH_ARGS="relay clock --rounds 3" runs some, several times.
BENCH_ARGS =
bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)

# Removes the embedded data (var/) and tool caches; keeps .venv.
clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
