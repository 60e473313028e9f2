# The README's two commands: `make run` and `make test`.
# Each bootstraps .venv (python3 -m venv + pip install -e .[test]) when it is missing
# or older than pyproject.toml, then does its job.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

## make run: the whole runbook against the embedded lab, into runs/<timestamp>-lab/
run: $(STAMP)
	$(BIN)/runbook run --target lab

## make test: the test suite, including all four notebooks through papermill on the lab
test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
