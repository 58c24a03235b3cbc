# One command each: `make test` (what CI runs), `make demo` (the main job, offline, CPU).
PYTHON ?= python3
VENV ?= .venv
# The CPU build that this project's machines serve; on a CUDA machine use e.g. TORCH="torch".
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: install test test-all demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

test-all: install
	$(PY) -m pytest -m "slow or not slow"

demo: install
	$(VENV)/bin/sketchstory generate examples/wizard/story.json -o out/wizard

clean:
	rm -rf out .pytest_cache
