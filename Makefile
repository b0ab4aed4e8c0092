# emkg — East Midlands children's services knowledge graph.
# Quick start on a fresh machine:  make build   (sets itself up, validates, publishes to public/)
#                                  make test    (format check, validation, the test suite)
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := build
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EMKG := $(BIN)/emkg
STAMP := $(VENV)/.installed
TOOLS_STAMP := .cache/tools.stamp
# System packages the real-component tests use: the browser, a second RDF parser, Virtuoso, Java for the Nu checker.
APT_PACKAGES := chromium raptor2-utils virtuoso-opensource default-jre-headless

.PHONY: setup tools build validate fmt fmt-check query-list test test-fast bench clean distclean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Debian packages and the Nu HTML checker for the tests; installs only what is missing.
tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): .ci/install-tools
	bash .ci/install-tools
	mkdir -p $(@D) && touch $@

build: $(STAMP)
	$(EMKG) build

validate: $(STAMP)
	$(EMKG) validate

fmt: $(STAMP)
	$(EMKG) fmt

fmt-check: $(STAMP)
	$(EMKG) fmt --check

test: $(STAMP) $(TOOLS_STAMP)
	$(EMKG) fmt --check
	$(EMKG) validate
	$(BIN)/pytest -q

# The suite without the browser, Virtuoso and Nu checker (for a quick local loop).
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

bench: $(STAMP)
	$(EMKG) bench run

clean:
	rm -rf public bench/work .pytest_cache tests/artifacts

distclean: clean
	rm -rf $(VENV) .cache node_modules
