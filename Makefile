# The README's commands. `make install` is a no-op when .venv is up to date.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: install lock serve test lint stubs eval clean

install: $(STAMP)

# Every package comes from $(LOCK), pinned and hash-checked. torch is the lock's 2.13.0+cpu: the
# local CPU wheel, which pip finds through its own configuration (find-links), so nothing pulls a
# CUDA build, nvidia-* or triton. This repository's two distributions are not in the lock; they go
# in last, editable, with --no-deps (their dependencies are all in the lock) and built by the
# locked hatchling without build isolation, so nothing unpinned is downloaded; `pip check` then
# proves the lock covered them.
$(STAMP): pyproject.toml client/pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# pip itself first, at the lock's version (its entry, hashes included, cut out of the lock).
	awk '/^pip==/ {p = 1; print; next} p && /^ / {print; next} p {exit}' $(LOCK) > $(VENV)/pip.lock
	$(BIN)/pip install --quiet --require-hashes -r $(VENV)/pip.lock
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e ./client -e .
	$(BIN)/pip check
	touch $(STAMP)

# Regenerates $(LOCK) from requirements.in (this repository's distributions with their extras,
# plus pip and the build backend), keeping every pin that still fits; UPGRADE moves packages on:
#   make lock                          after editing a pyproject.toml
#   make lock UPGRADE="fastapi uvicorn"   those to their newest allowed versions (or fastapi==X)
#   make lock UPGRADE=all              everything
# The tool is pip-tools' pip-compile: made for exactly this (a pinned, hashed requirements file
# that plain pip installs with --require-hashes), long maintained, and it resolves with pip itself
# under pip's own configuration, so the lock matches what `pip install` does here: it sees the
# local CPU torch wheel (find-links) and the machine's torch cap (/etc/xdg/pip) and pins
# torch 2.13.0+cpu with that wheel's hash. uv pip compile reads none of pip's configuration.
# pip-tools lives in its own venv (.venv-lock), pinned together with a pip it works with (it
# drives pip's internals), so locking never depends on the environment it produces. --unsafe-package keeps the two local
# distributions out (the warning pip-compile prints about them is expected); the lock holds no
# index or find-links lines, so pip's configuration decides where files come from.
LOCK_VENV := .venv-lock
LOCK_TOOLS := pip==26.3 pip-tools==7.6.2
UPGRADE ?=

lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PY) -m venv $(LOCK_VENV) \
	    && $(LOCK_VENV)/bin/pip install --quiet $(LOCK_TOOLS); }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet \
	    --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
	    --no-allow-unsafe --unsafe-package knowledge-client --unsafe-package knowledge-service \
	    $(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE))) \
	    --output-file $(LOCK) requirements.in

serve: install
	$(BIN)/knowledge serve

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check service tests scripts client
	$(BIN)/mypy
	$(BIN)/lint-imports

stubs: install
	$(BIN)/python scripts/generate_stubs.py

clean:
	rm -rf $(VENV) $(LOCK_VENV)
