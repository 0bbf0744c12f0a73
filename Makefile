# Two commands matter: `make demo` (the whole story on the local backend) and
# `make test`. Both create .venv and install from the lock file when needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements/lock.txt
UV_VERSION := 0.13.9
UV     := $(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -c $(LOCK)

.PHONY: demo test lint docs update bench lock clean help wheels fidelity

help:
	@echo "make demo   - raw data to a smoke-tested prod endpoint on this machine (no AWS)"
	@echo "             (the committed sample, data.sample in the config; DATA=FILE for another;"
	@echo "             KEEP=1 leaves the endpoints running to try the printed examples)"
	@echo "make test   - the test suite (unit, data, model, integration, AWS API under moto)"
	@echo "make lint   - pre-commit hooks on all files (the docs site built strictly too)"
	@echo "make docs   - the documentation site into site/ (mkdocs build --strict)"
	@echo "make update - take the template's newest release (copier update; VERSION=vX.Y.Z for one)"
	@echo "make bench  - benchmarks; they print figures and ratios"
	@echo "make lock   - re-resolve $(LOCK) from pyproject.toml"
	@echo "make wheels - the validate step's wheels for its image (shipped with its code: jobs need no internet)"
	@echo "make fidelity - steps and serving handler under the SageMaker images' Python and libraries"

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# core: what the local backend needs; dev: + SageMaker SDK, test and lint tools
$(VENV)/.core: pyproject.toml $(LOCK) | $(BIN)/uv
	$(UV) -e .
	@touch $@

$(VENV)/.dev: pyproject.toml $(LOCK) | $(BIN)/uv
	$(UV) -e '.[dev]'
	@touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/python -m mlops.cli.demo $(if $(DATA),--data $(DATA)) $(if $(FEATURE_STORE),--feature-store) $(if $(KEEP),--keep-endpoints)

# lint-imports first: a change that crosses the layers of mlops/ fails in seconds,
# naming the import (contracts in pyproject.toml).
test: $(VENV)/.dev
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2 --dist worksteal

lint: $(VENV)/.dev
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

# The reference pages are generated from the parser and the config models first
# (docs/reference/); a stale page fails the hook in make lint.
docs: $(VENV)/.dev
	$(BIN)/python -m docs.gen_reference
	$(BIN)/mkdocs build --strict --site-dir site

# copier update (three-way merge), the migrations of the releases taken, and their notes
# (CHANGELOG.md entries, files left with conflicts) in NOTES (the update PR's body).
# It needs Copier alone (mlops/upgrade.py imports the standard library and Copier): the
# weekly workflow installs no model or AWS library for it.
$(VENV)/.update: $(LOCK) | $(BIN)/uv
	$(UV) copier
	@touch $@

update: $(VENV)/.update
	$(BIN)/python -m mlops.upgrade update $(if $(VERSION),--vcs-ref $(VERSION)) $(if $(NOTES),--notes $(NOTES))

bench: $(VENV)/.dev
	$(BIN)/python bench/run_all.py

wheels: $(VENV)/.dev
	$(BIN)/python -m containers.wheels

# FIDELITY_PYTHON_3_12=/path/to/python3.12 to use a local interpreter instead of uv's
fidelity: $(VENV)/.dev
	$(BIN)/python -m containers.fidelity

lock: | $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu -o $(LOCK)

clean:
	rm -rf $(VENV) .mlops .pytest_cache .ruff_cache site
