# Herald: `make run` starts the whole service on embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test browser lint format clean settings-doc bench

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/herald run

test: $(STAMP) browser
	$(BIN)/pytest $(PYTEST_ARGS)

# The /inbox browser test drives Debian's chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { echo "Installing Debian's chromium for the browser test"; \
	  apt-get update -q && apt-get install -y -q chromium; } || \
	  { echo "make test needs chromium: apt-get install chromium (as root)"; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var .pytest_cache .ruff_cache

settings-doc: $(STAMP)
	$(BIN)/python -c "import re, settings; p = 'README.md'; s = open(p).read(); \
	s = re.sub(r'(<!-- settings:start[^>]*-->\n).*?(\n<!-- settings:end -->)', lambda m: m.group(1) + settings.markdown_table() + m.group(2), s, flags=re.S); \
	open(p, 'w').write(s)"

# Every benchmark, bounded (a few minutes); figures are printed and kept in docs/bench/results.json,
# then drawn to docs/bench/results.png with their table in docs/bench/results.md.
# History search needs a PostgreSQL database it may wipe.
BENCH_SEARCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/bench_search

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.fanout --contacts 100000
	$(BIN)/python -m bench.email --messages 5000
	$(BIN)/python -m bench.engine --messages 5000
	$(BIN)/python -m bench.api --seconds 10
	$(BIN)/python -m bench.crash --messages 10000 --kills 5
	$(BIN)/python -m bench.search --database $(BENCH_SEARCH_DATABASE_URL) \
		|| echo "search: skipped, it needs PostgreSQL (BENCH_SEARCH_DATABASE_URL=$(BENCH_SEARCH_DATABASE_URL))"
	$(BIN)/python -m bench.chart
