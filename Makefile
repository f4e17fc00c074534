# The README's commands. `make install` is a no-op when .venv is up to date.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint stubs eval clean

install: $(STAMP)

$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, from the local CPU wheel, so nothing pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ./client -e ".[dev]"
	touch $(STAMP)

serve: install
	$(BIN)/knowledge serve

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check service tests scripts client

stubs: install
	$(BIN)/python scripts/generate_stubs.py

clean:
	rm -rf $(VENV)
