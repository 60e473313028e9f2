# The README's two commands: `make run` and `make test`.
# Each bootstraps .venv (python3 -m venv + pip install -e .[test]) when it is missing
# or older than pyproject.toml, and the SDKs of the lab's Lambda runtimes (below), then
# does its job.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# What the lab's Lambda runtimes offer functions besides their own package and layers:
# boto3 (pip --target) and the AWS SDK for JavaScript v3 clients (npm ci). The lab finds
# them at <its interpreter's sys.prefix>/lambda-runtimes, or $RUNBOOK_LAB_RUNTIMES.
LAB_RUNTIMES := $(VENV)/lambda-runtimes
SDK          := runbook_lib/lab/sdk
PY_SDK       := $(LAB_RUNTIMES)/python/.installed
NODE_SDK     := $(LAB_RUNTIMES)/nodejs/.installed

.PHONY: run test venv lab-runtimes clean mutation

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# `runbook lab-runtimes` (runbook_lib/lab/sdk_install.py) does the installing, here as for an installed package.
$(PY_SDK): $(SDK)/python-requirements.txt $(STAMP)
	$(BIN)/runbook lab-runtimes --family python --into $(LAB_RUNTIMES)

# Without npm the Node.js runtime stays missing: Node.js invocations fail closed saying so.
$(NODE_SDK): $(SDK)/package.json $(SDK)/package-lock.json $(STAMP)
	@if command -v npm >/dev/null 2>&1; then \
		$(BIN)/runbook lab-runtimes --family nodejs --into $(LAB_RUNTIMES); \
	else echo "npm not found: the lab will not run Node.js functions (install Node.js, then make lab-runtimes)"; fi

lab-runtimes: $(PY_SDK) $(NODE_SDK)

venv: $(STAMP) lab-runtimes

## make run: the whole runbook against the embedded lab, into runs/<timestamp>-lab/
run: venv
	$(BIN)/runbook run --target lab

## make test [TEST_WORKERS=N]: the test suite, including all four notebooks through papermill on the lab,
## in TEST_WORKERS processes (pytest-xdist; the tests sharing a module's lab or run stay on one worker,
## the heaviest modules are handed out first: tests/conftest.py, docs/testing.md)
TEST_WORKERS ?= 3
test: venv
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

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
