# Herald: `make run` starts the whole service on embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# make run needs the runtime dependencies only; make test, lint and bench add the test tools.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# constraints.txt pins every version (make constraints refreshes it), so all installs agree.
PIP_INSTALL = $(BIN)/pip install --quiet -c constraints.txt

.PHONY: install run test browser lint format clean settings-doc bench constraints

install: $(TEST_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

# Ctrl-C stops everything (web and workers first, Redis last); so does SIGTERM to make, which
# GNU make does not pass on: herald run stops when its parent exits.
run: $(RUN_STAMP)
	exec $(BIN)/herald run --stop-with-parent

# Every version of a fresh install of all extras, written to constraints.txt.
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install --quiet --upgrade pip
	.constraints-venv/bin/pip install --quiet -e '.[dev,bench]'
	.constraints-venv/bin/pip freeze --exclude-editable > constraints.txt
	rm -rf .constraints-venv

test: $(TEST_STAMP) browser
	$(BIN)/pytest $(PYTEST_ARGS)

# The /inbox browser test drives Debian's chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { echo "Installing Debian's chromium for the browser test"; \
	  apt-get update -q && apt-get install -y -q chromium; } || \
	  { echo "make test needs chromium: apt-get install chromium (as root)"; exit 1; }

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var .pytest_cache .ruff_cache .constraints-venv

settings-doc: $(RUN_STAMP)
	$(BIN)/python -c "import re, settings; p = 'README.md'; s = open(p).read(); \
	s = re.sub(r'(<!-- settings:start[^>]*-->\n).*?(\n<!-- settings:end -->)', lambda m: m.group(1) + settings.markdown_table() + m.group(2), s, flags=re.S); \
	open(p, 'w').write(s)"

# Every benchmark, bounded (a few minutes); figures are printed and kept in docs/bench/results.json,
# then drawn to docs/bench/results.png with their table in docs/bench/results.md.
# History search needs a PostgreSQL database it may wipe: created when the server is reachable,
# skipped with the reason otherwise.
BENCH_SEARCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/bench_search
BENCH_FANOUT_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/bench_fanout

bench: $(TEST_STAMP)
	$(PIP_INSTALL) -e '.[dev,bench]'
	$(BIN)/python -m bench.fanout --contacts 100000
	if $(BIN)/python -m dev.bench_database $(BENCH_FANOUT_DATABASE_URL); then \
		$(BIN)/python -m bench.fanout --database $(BENCH_FANOUT_DATABASE_URL) --contacts 1000000; fi
	$(BIN)/python -m bench.email --messages 5000
	$(BIN)/python -m bench.engine --messages 5000
	$(BIN)/python -m bench.api --seconds 10
	$(BIN)/python -m bench.crash --messages 10000 --kills 5
	if $(BIN)/python -m dev.bench_database $(BENCH_SEARCH_DATABASE_URL); then \
		$(BIN)/python -m bench.search --database $(BENCH_SEARCH_DATABASE_URL); fi
	$(BIN)/python -m bench.chart
