# MinID: the two commands a newcomer needs are `make run` and `make test`.
# Both create the virtual environment and install what they need on first use.

PYTHON ?= python3
# `make run PORT=...` sets it; a PORT in the environment (some containers export one) does not
PORT := 3000
PRINT_DELAY ?= 2
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

LAYER_SOURCES := $(shell find layers/shared -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*' 2>/dev/null)
FUNCTION_SOURCES := $(shell find functions -type f -name '*.py' -not -path '*/__pycache__/*' 2>/dev/null)
BUILD_SOURCES := $(sort $(LAYER_SOURCES) $(FUNCTION_SOURCES) $(wildcard statemachines/*))
# The list of those files, rewritten only when it changes (its rule runs every time): a file deleted or
# renamed (whose time is kept) changes no file the build depends on, and the build would be taken for up to
# date with the old file still in it.
SOURCE_LIST := .aws-sam/sources
# An environment whose interpreter no longer runs (python3 upgraded and the old one removed) or is not
# $(PYTHON)'s version (PYTHON=python3.13) is made anew, not kept or left broken.
python_version_of = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifneq ($(call python_version_of,$(BIN)/python),$(call python_version_of,$(PYTHON)))
$(VENV)/.installed: FORCE
endif
ifeq ($(call python_version_of,$(SAM_VENV)/bin/python),)
$(SAM_VENV)/.installed-$(SAM_CLI_VERSION): FORCE
endif

.PHONY: help install run test fuzz bench lint typecheck cfn-lint unit integration e2e package openapi endpoints models roots fonts clean

help:
	@echo "make run [PORT=3000]   the local stack (embedded AWS, no account, no Docker; PRINT_DELAY=0: instant post)"
	@echo "make test              ruff, mypy, cfn-lint, sam build, and every test"
	@echo "make fuzz              schemathesis: thousands of cases against a local stack (FUZZ_EXAMPLES per operation)"
	@echo "make bench             cold start, request cost, AWS calls, throughput, workflow: ratios to baselines (bench.json)"
	@echo "make package           sam build (the shared layer for python3.13 on arm64)"
	@echo "make openapi           regenerate openapi.json from the handlers' models"
	@echo "make endpoints         cut layers/shared/minid/endpoints.json from botocore's (after upgrading it)"
	@echo "make models            cut layers/shared/minid/models from botocore's service models (after upgrading it)"
	@echo "make roots             hash botocore's certificate authorities into layers/shared/minid/roots (after upgrading it)"
	@echo "make fonts             cut the letter's fonts (layers/shared/minid/adapters/fonts) from local/fonts"

install: $(VENV)/.installed

# A virtual environment is made (again) until it has pip: where ensurepip is missing (Debian's python3
# without python3-venv) `venv` fails after making bin/python, and a rerun once that is installed must
# not take the half-made one for done. `venv` over an existing one completes it.
$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (PYTHON=...)")'
	@[ "$(call python_version_of,$(BIN)/python)" = "$(call python_version_of,$(PYTHON))" ] \
		|| { [ ! -e $(VENV) ] || echo "$(VENV): not $(PYTHON)'s Python, or it no longer runs: made anew"; rm -rf $(VENV); }
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed-$(SAM_CLI_VERSION):
	@[ -n "$(call python_version_of,$(SAM_VENV)/bin/python)" ] || rm -rf $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'
	touch $@

run: install
	$(BIN)/python -m local --port $(PORT) --print-delay $(PRINT_DELAY)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

cfn-lint: install
	$(BIN)/cfn-lint template.yaml

# The build's last step, and so its target: a record of the CPython 3.13 that compiled the layer's
# bytecode (null: none was found, and the layer has none). It is found here (layers/shared/python313,
# unless PYTHON313 is given), handed to the layer's build, and recorded beside the build, outside the
# layer: the layer's test checks the bytecode against what the build used, not against what the
# machine has by the time the test runs (a 3.13 installed or removed since).
BUILD_RECORD := .aws-sam/build/bytecode.json

package: $(BUILD_RECORD)

# A build to deploy (REQUIRE_BYTECODE=1, see layers/shared/Makefile) is made anew: one made earlier may
# be up to date with the sources and still lack the layer's bytecode (built where no CPython 3.13 was).
ifeq ($(REQUIRE_BYTECODE),1)
$(BUILD_RECORD): FORCE
endif
.PHONY: FORCE
FORCE:

$(SOURCE_LIST): FORCE
	@mkdir -p $(@D) && printf '%s\n' $(BUILD_SOURCES) > $@.new && { cmp -s $@.new $@ && rm $@.new || mv $@.new $@; }

$(BUILD_RECORD): $(SAM_VENV)/.installed-$(SAM_CLI_VERSION) template.yaml $(SOURCE_LIST) $(BUILD_SOURCES)
	rm -f $@
	python313="$${PYTHON313-$$(sh layers/shared/python313 || true)}" && \
	PYTHON313="$$python313" PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM) build --template-file template.yaml && \
	if [ -n "$$python313" ]; then "$$python313" -c 'import importlib.util, json, sys; print(json.dumps({ \
		"python": sys.executable, "cache_tag": sys.implementation.cache_tag, \
		"magic_number": importlib.util.MAGIC_NUMBER.hex()}))'; else echo null; fi > $@.tmp
	mv $@.tmp $@

test: lint typecheck cfn-lint package
	$(BIN)/pytest -n auto --dist loadscope -m 'not timing'
	$(BIN)/pytest -m timing

# The long fuzzing run: FUZZ_EXAMPLES generated cases per operation (plus schemathesis' coverage cases),
# FUZZ_STATEFUL_EXAMPLES walks through the links; the counts land in fuzz-report.json.
FUZZ_EXAMPLES ?= 200
FUZZ_STATEFUL_EXAMPLES ?= 150
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_STATEFUL_EXAMPLES=$(FUZZ_STATEFUL_EXAMPLES) FUZZ_REPORT=$(CURDIR)/fuzz-report.json \
		$(BIN)/pytest tests/e2e/test_fuzz.py -p no:cacheprovider
	$(BIN)/python -c 'import json; r = json.load(open("fuzz-report.json")); print(sum(r["cases"].values()), "cases over", len(r["cases"]), "operations; answers:", r["statuses"])'

# Figures measured side by side in one run (see bench/__main__.py); they land in bench.json.
bench: install
	$(BIN)/python -m bench

unit integration e2e: install
	$(BIN)/pytest tests/$@

openapi: install
	$(BIN)/python -m local.openapi > openapi.json.tmp && mv openapi.json.tmp openapi.json || { rm -f openapi.json.tmp; exit 1; }

endpoints: install
	$(BIN)/python -m local.endpoints > layers/shared/minid/endpoints.json.tmp && mv layers/shared/minid/endpoints.json.tmp layers/shared/minid/endpoints.json \
		|| { rm -f layers/shared/minid/endpoints.json.tmp; exit 1; }

models: install
	rm -rf layers/shared/minid/models.tmp && $(BIN)/python -m local.models layers/shared/minid/models.tmp \
		&& rm -rf layers/shared/minid/models && mv layers/shared/minid/models.tmp layers/shared/minid/models \
		|| { rm -rf layers/shared/minid/models.tmp; exit 1; }

roots: install
	$(BIN)/python -m local.roots

fonts: install
	$(BIN)/python -m local.fonts

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
