# knoxpy: every target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench soak clean

$(STAMP): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint,bench,cli]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q test

lint: $(STAMP)
	$(VENV)/bin/ruff check knoxpy test
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py

soak: $(STAMP)
	$(PY) -m pytest -q -m soak test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
