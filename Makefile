# The README's two commands: `make run` and `make test`.
# Each bootstraps .venv (python3 -m venv + pip install -e .[test]) when it is missing
# or older than pyproject.toml, then does its job.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv clean mutation

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

## make mutation [MODULES="runbook_lib/x.py ..."] [JOBS=N]: mutation testing of the tests of each
## module (benchmarks/mutation.py, docs/testing.md). Not part of make test or CI.
MODULES ?= runbook_lib/scanning.py runbook_lib/scan_prefilter.py runbook_lib/scan_lines.py \
           runbook_lib/scan_buffer.py runbook_lib/scan_environment.py runbook_lib/scan_archive.py \
           runbook_lib/scan_results.py runbook_lib/rules.py runbook_lib/secret_names.py runbook_lib/redaction.py \
           runbook_lib/allowlist.py
JOBS    ?= 2
MUTATION_STAMP := $(VENV)/.installed-mutation

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,mutation]"
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/python benchmarks/mutation.py --jobs $(JOBS) $(MODULES)

clean:
	rm -rf $(VENV) runs .pytest_cache
