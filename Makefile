# The two commands a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo bench clean browser postgres

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q pipelines schemas  # bytecode ahead: start-up compiles nothing, even with PYTHONDONTWRITEBYTECODE
	touch $(STAMP)

# The HTML report's test renders it in Chromium; a fresh machine (CI) has none: Debian's package, as root.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		(echo "make test needs Chromium to render the HTML report: install Debian's chromium package (as root)" >&2; exit 1)

# The ledger's tests run on a real PostgreSQL server too (tests/pg.py starts a throw-away cluster): Debian's server.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || \
		(echo "make test needs a PostgreSQL server: install Debian's postgresql package (as root)" >&2; exit 1)

# Two workers per core: the tests wait on subprocesses, sandboxes and settle times more than they compute (on a
# slower two-core machine: 6:25 with three workers, 5:28 with four, 5:02 with six; the CPU stays two-thirds idle).
test: install browser postgres
	$(BIN)/python -m pytest -q -n $$(( $$(nproc) * 2 ))

DEMO_HOME := .campaigns-demo
# The main job end to end on the embedded sandbox: import → submit → sync → report, ending with the HTML page's path.
# The sandbox's simulated people answer at any hour, so the demo calls around the clock
# (--allow-any-hour and --rules none, each said in a warning); real campaigns keep the 08:00-21:00 local
# default and the shipped state rules.
demo: install
	rm -rf $(DEMO_HOME)
	$(BIN)/campaigns import data/sample_contacts.csv data/sample_contacts.xlsx \
		--campaign demo --home $(DEMO_HOME) --out $(DEMO_HOME)/out --window 00:00-24:00 --allow-any-hour --rules none
	$(BIN)/campaigns sync --campaign demo --home $(DEMO_HOME) --wait 60
	$(BIN)/campaigns report --campaign demo --home $(DEMO_HOME)
	$(BIN)/campaigns report --campaign demo --home $(DEMO_HOME) --html $(DEMO_HOME)/report.html --by clinic

bench: install postgres
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .campaigns-demo .pytest_cache
