# ShiftGuard: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PYTHON      := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
EMULATOR_PORT ?= 5005
# Debug builds without full debug info: half the target dir, same tests.
export CARGO_PROFILE_DEV_DEBUG ?= line-tables-only
export CARGO_TERM_COLOR ?= never

.PHONY: help venv demo test test-rust emulator build clean

help:
	@echo "make demo      - rehearse a whole canary deployment locally (SCENARIO=lattice for VPC Lattice)"
	@echo "make test      - install what the tests need, then run every test"
	@echo "make emulator  - start the local AWS endpoint on 127.0.0.1:$(EMULATOR_PORT)"
	@echo "make build     - release zips of every function (cargo lambda build)"

# The project's Python tools (moto server, cargo-lambda), pinned in tests/requirements.txt.
$(STAMP): tests/requirements.txt
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r tests/requirements.txt
	touch $@

venv: $(STAMP)

SCENARIO ?= alias

# A whole canary deployment with the real binaries (SCENARIO=lattice: a VPC Lattice listener).
demo: $(STAMP)
	$(PYTHON) tests/demo/demo.py --scenario $(SCENARIO)

# Every test, then both demo scenarios as end-to-end tests.
test: $(STAMP)
	cargo test --workspace --locked
	$(PYTHON) tests/demo/demo.py --scenario alias
	$(PYTHON) tests/demo/demo.py --scenario lattice

emulator: $(STAMP)
	@echo "Local AWS endpoint: export AWS_ENDPOINT_URL=http://127.0.0.1:$(EMULATOR_PORT) AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
	$(PYTHON) tests/emulator/shiftguard_emulator.py --host 127.0.0.1 --port $(EMULATOR_PORT)

build: $(STAMP)
	$(PYTHON) -m pip install --quiet ziglang
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --output-format zip

clean:
	cargo clean
	rm -rf $(VENV)
