# voyagr_wsgi: the two set-up commands are `make demo` and `make test`; both install what
# they need on a fresh machine (a venv with the Python packages; Debian packages via apt-get
# when running as root). `make smoke` installs the package with no extras into a fresh venv
# and runs tests/smoke there: what a user of `pip install voyagr-wsgi` gets.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PORT    ?= 8000
STAMP   := $(VENV)/.installed
# the extras the tests drive; tools come from the PEP 735 groups (pip >= 25.1)
EXTRAS  := redis,s3,gunicorn,flask,django,prometheus
SMOKE_VENV ?= /tmp/voyagr-noextras
# Debian packages the real-part tests use: binary -> package (PostgreSQL's server binaries,
# initdb and pg_ctl, live in /usr/lib/postgresql/<major>/bin, off PATH: looked up there too)
SYSTEM_TOOLS := redis-server:redis-server prometheus:prometheus \
	prometheus-alertmanager:prometheus-alertmanager promtool:prometheus \
	chromium:chromium chromedriver:chromium-driver wrk:wrk sqlite3:sqlite3 \
	pg_dump:postgresql-client initdb:postgresql

.PHONY: demo test smoke bench lint system venv clean env-template

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]' --group test --group lint --group bench
	touch $(STAMP)

venv: $(STAMP)

system:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || [ -x /usr/bin/$$bin ] \
	    || ls /usr/lib/postgresql/*/bin/$$bin >/dev/null 2>&1 \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages (tests needing them skip locally, fail in CI):$$missing"; \
	  fi; \
	fi

demo: $(STAMP)
	PORT=$(PORT) $(BIN)/python demo/run.py

test: system $(STAMP)
	$(BIN)/python -m pytest tests

# a fresh venv, `pip install .` (not editable, no extras) and pytest: nothing else; run from
# outside the repository so that only the installed package can be imported
smoke:
	rm -rf $(SMOKE_VENV)
	$(PY) -m venv $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/python -m pip install -q --upgrade pip
	$(SMOKE_VENV)/bin/python -m pip install -q . 'pytest>=8.0'
	cd $(SMOKE_VENV) && VOYAGR_SMOKE_NO_EXTRAS=1 bin/python -m pytest \
	  -c $(CURDIR)/tests/smoke/pytest.ini --rootdir $(CURDIR)/tests/smoke $(CURDIR)/tests/smoke

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-enable --benchmark-only \
	  --benchmark-columns=median,iqr,ops --benchmark-sort=name -p no:randomly -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

env-template:
	cat docs/env/*.env > .env.production

clean:
	rm -rf $(VENV) $(SMOKE_VENV) .voyagr build *.egg-info src/*.egg-info
