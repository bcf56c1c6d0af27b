# The kit's commands. Start with `make demo` and `make test`; `make help` lists the rest.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The venv uses the Lambda runtime's Python (python3.12 in every template), so
# that `sam build` finds the interpreter it builds with on PATH.
PYTHON_MINOR := 3.12
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum < requirements.lock | cut -d' ' -f1)
# checkov's own environment (chapter 9; the rule is near the end)
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-checkov-$(CHECKOV_VERSION)
PY := $(VENV)/bin/python
ORIGINAL_PATH := $(PATH)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export AWS_DEFAULT_REGION ?= us-east-1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
comma := ,
CHROMIUM := /usr/bin/chromium


.PHONY: help setup demo test test-fast docs clean checkov-env verify deploy smoke destroy bench spike

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock
	@if [ -x $(PY) ] && $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != ($(subst .,$(comma),$(PYTHON_MINOR))))'; then exit 0; fi; \
	python="$$(PATH="$(ORIGINAL_PATH)" scripts/find-python $(PYTHON_MINOR))"; \
	if [ -z "$$python" ]; then \
	  echo "error: Python $(PYTHON_MINOR) is needed (the templates' Lambda runtime is python$(PYTHON_MINOR))." >&2; \
	  echo "       Install it, e.g. 'pyenv install $(PYTHON_MINOR)' or 'apt-get install python$(PYTHON_MINOR) python$(PYTHON_MINOR)-venv', then run make again." >&2; \
	  exit 1; \
	fi; \
	echo "==> creating $(VENV) with $$python (Python $(PYTHON_MINOR), as the Lambda runtime)"; \
	rm -rf $(VENV) && "$$python" -m venv $(VENV) && [ -x $(PY) ]
	@echo "==> installing the locked dependencies (requirements.lock); this takes about a minute once"
	@$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@set -o pipefail; $(PY) -m pip install --quiet -r requirements.lock 2>&1 | grep -v "^WARNING: Location" ; \
	  status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || { echo "error: installing requirements.lock failed" >&2; exit $$status; }
	@$(PY) -m pip install --quiet --no-deps -e . >$(VENV)/install-edakit.log 2>&1 || { cat $(VENV)/install-edakit.log >&2; exit 1; }
	@touch $@

setup: $(STAMP) ## Create .venv from the lock file (done by every other command when needed)

demo: $(STAMP) ## Run the finished system's main scenario on the local cloud
	@$(PY) -m edakit demo

# --dist loadscope: one worker runs a class's (or a module's) tests, so their shared fixtures
# (sam build, the cost scenario, chapter 10's spikes) run once. (pytest-xdist's loadgroup does
# not group under pytest 9: it renames item._nodeid, which pytest 9 no longer reads.)
test: $(STAMP) $(CHROMIUM) $(CHECKOV_STAMP) ## Run every test (installs chromium for the docs' browser test, and checkov, when missing)
	@$(PY) -m pytest -n 2 --dist loadscope --durations=10 -q -m "not notebook and not timing"
	@$(PY) -m pytest -q -m "notebook or timing" --durations=0

test-fast: $(STAMP) ## Run the tests, stopping at the first failure
	@$(PY) -m pytest -x -q

spike: $(STAMP) ## Run chapter 10's four Black-Friday spikes on the local cloud and summarise them (minutes)
	@$(PY) -m edakit spike

bench: $(STAMP) ## Measure the local cloud's speed (medians of 3 runs) into build/bench.md; takes minutes
	@$(PY) -m edakit bench

docs: $(STAMP) ## Serve the book (the docs site) at http://127.0.0.1:8000, rebuilt on every change
	@NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8000

# The docs' browser test drives Debian's chromium (Playwright's own browser
# download cannot run offline). Installed once; a missing one only skips that test.
$(CHROMIUM):
	@echo "==> installing chromium for the docs' browser test (apt-get, once)"
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	    && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    && [ -x $@ ]; then echo "==> chromium installed: $$($@ --version 2>/dev/null)"; \
	else \
	  echo "warning: could not install chromium with apt-get (it needs root on Debian or Ubuntu)." >&2; \
	  echo "         The docs' browser test (tests/docs/test_browser.py) will be skipped; install" >&2; \
	  echo "         chromium as $@ (e.g. 'sudo apt-get install chromium') to run it." >&2; \
	fi

# --- checkov (chapter 9) -------------------------------------------------------------------
# checkov pins its own boto3, unlike SAM CLI, so it gets an environment of its own:
# .venv-checkov, created once with the pinned version. Chapter 9's stage test runs it on the
# translated template (and skips when it is missing).

$(CHECKOV_STAMP):
	@python="$$(PATH="$(ORIGINAL_PATH)" scripts/find-python $(PYTHON_MINOR))"; \
	if [ -z "$$python" ]; then echo "error: Python $(PYTHON_MINOR) is needed for $(CHECKOV_VENV)" >&2; exit 1; fi; \
	echo "==> creating $(CHECKOV_VENV) with checkov $(CHECKOV_VERSION) (once; it pins its own boto3)"; \
	rm -rf $(CHECKOV_VENV) && "$$python" -m venv $(CHECKOV_VENV) \
	  && $(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION) >$(CHECKOV_VENV).log 2>&1 \
	  || { cat $(CHECKOV_VENV).log >&2; echo "error: installing checkov $(CHECKOV_VERSION) failed" >&2; exit 1; }
	@touch $@

checkov-env: $(CHECKOV_STAMP) ## Create .venv-checkov, checkov's own environment (make test does it when missing)
# --- end of checkov ---------------------------------------------------------------------------

# --- the workshop (workshop/exercises.yaml; edakit/workshop.py) -------------------------------
# CH picks a chapter, EX an exercise; FORCE=1 lets `make workshop` replace a workspace you changed.
.PHONY: workshop check hint solution
WORKSHOP := $(PY) -m edakit workshop

workshop: $(STAMP) ## Start chapter CH's exercises in workspace/ (e.g. make workshop CH=1; FORCE=1 replaces your changes)
	@$(WORKSHOP) start "$(CH)" $(if $(filter 1 yes true,$(FORCE)),--force)

check: $(STAMP) ## Check workspace/: what passes, what is missing, the next hint (CH=N or EX=id to choose)
	@$(WORKSHOP) check --chapter "$(CH)" --exercise "$(EX)"

hint: $(STAMP) ## Print the hint of exercise EX (e.g. make hint EX=01-events)
	@$(WORKSHOP) hint "$(EX)"

solution: $(STAMP) ## Show the diff from workspace/ (or the starter) to exercise EX's reference solution
	@$(WORKSHOP) solution "$(EX)"
# --- end of the workshop ----------------------------------------------------------------------

# --- the finished system on AWS (sam-app/) ----------------------------------------------------
# STACK names the stack (sam-app/samconfig.toml's default); AWS credentials and a region
# come from the usual places (AWS_PROFILE, AWS_REGION, ...).
STACK ?= edakit-shop
SAM := cd sam-app && SAM_CLI_TELEMETRY=0 sam

verify: $(STAMP) $(CHECKOV_STAMP) ## Check sam-app/ offline: sam validate, cfn-lint, checkov, the local cloud
	@$(PY) -m edakit verify sam-app

deploy: $(STAMP) ## Build sam-app/ and deploy it to your AWS account (guided the first time)
	@$(PY) -m edakit aws preflight
	@$(SAM) build
	@if $(PY) -m edakit aws stack-exists --stack-name $(STACK) >/dev/null 2>&1; then \
	  $(SAM) deploy --stack-name $(STACK); \
	else \
	  echo "==> first deployment of $(STACK): sam deploy --guided asks for the settings (defaults from samconfig.toml)"; \
	  $(SAM) deploy --guided --stack-name $(STACK); \
	fi

smoke: $(STAMP) ## Put one order on the deployed shop and wait until it is confirmed
	@$(PY) -m edakit aws smoke --stack-name $(STACK)

destroy: $(STAMP) ## Delete the deployed stack, then list what is left of it
	@$(PY) -m edakit aws preflight
	@$(PY) -m edakit aws record --stack-name $(STACK) --file build/stack-resources.json
	@$(SAM) delete --stack-name $(STACK)
	@$(PY) -m edakit aws leftovers --file build/stack-resources.json

clean: ## Remove the venv and build outputs
	rm -rf $(VENV) $(CHECKOV_VENV) build site .pytest_cache
