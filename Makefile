# Two commands do all the set-up: `make train` and `make test`.
# `make train ARGS="model=astra_beta data.path=input.txt"` passes Hydra overrides.
# Each creates the virtualenv on first use.
#
#   VENV   where the environment lives (CI keeps one under ~/.cache)
#   TORCH  the torch requirement installed when the environment has none,
#          e.g. TORCH=torch==2.13.0 for the local CPU build; an already
#          installed torch (system site-packages) is always preferred.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gm-installed

.PHONY: env test test-fast mutation lint docs train clean

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# pytest exits 5 when it collected nothing; that is not a failure.
test: $(STAMP)
	$(PY) -m pytest -q; rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected" || exit $$rc

# The documentation site, into site/ (open site/index.html); strict: a broken link fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# Mutation testing of the core modules (docs/testing.md); not part of CI (about five minutes).
# One torch thread per worker: the workers are forked from a process that has run torch.
# Fails when a mutant survives that tests/mutation_equivalent.txt does not explain.
MUTATION_JOBS ?= 2
mutation: $(STAMP)
	rm -rf mutants
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS)
	$(PY) tests/mutation_score.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

train: $(STAMP)
	$(PY) train.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
