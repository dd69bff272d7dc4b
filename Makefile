# Two commands: `make demo` and `make test`. Each sets up its own .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export KERAS_BACKEND ?= jax
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "lrlab needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps record what is installed; they are redone when pyproject.toml changes.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/lrlab demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(wildcard src tests bench examples scripts)
	$(BIN)/lint-imports --no-cache  # the layers of docs/architecture.md, no import cycles

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out
