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

ARCH        ?= arm64
EVENT       ?= events/rollback/sns-single-metric-alarm.json
WATCH_PORT  ?= 9000
CDK_TEST_ASSETS := target/cdk-test-assets
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: help venv schema demo test test-stress emulator emulator-test build synth deploy bench bench-sizes hot-code cdk-synth cdk-test cdk-wheel cdk-python sam-test invoke-rollback invoke-pre-traffic invoke-post-traffic rollback rollout byhand doctor clean

help:
	@echo "make demo      - rehearse a whole canary deployment locally (SCENARIO=codedeploy-alarm: CodeDeploy and rollback hear the same alarm; SCENARIO=lattice: a VPC Lattice listener rolled out by shift)"
	@echo "make test      - install what the tests need, then run every test"
	@echo "make test-stress [ROUNDS=5] [LOAD=2] - the timing-sensitive suites (engine, sequences, demos, emulator) repeatedly with the CPU loaded; exit 0 only if every round passed"
	@echo "make emulator  - start the local AWS endpoint on 127.0.0.1:$(EMULATOR_PORT) (ENGINE=1: deployments run themselves; SAMPLE=1: seed the sample application and print the by-hand commands)"
	@echo "make byhand    - tests/README.md 'Running it by hand', run as the seeded emulator prints it (cargo lambda watch + invoke)"
	@echo "make doctor    - rollback's doctor against the emulator seeded with the sample application: one line per finding, exit 1 on a serious one (EMULATOR=1: a running 'make emulator SAMPLE=1'; WATCH=1: a running 'cargo lambda watch')"
	@echo "make emulator-test - the emulator's own pytest suite (strict model conformance)"
	@echo "make build     - release zips of every function (cargo lambda build; ARCH=arm64|x86_64)"
	@echo "make synth     - synthesize the CDK app from those zips (offline)"
	@echo "make cdk-wheel - the construct library built with jsii into a Python wheel: target/cdk-python/wheel/shiftguard_cdk-*.whl"
	@echo "make cdk-python - that wheel installed into a Python CDK app, which synthesizes what the TypeScript one does (cdk/python-test)"
	@echo "make schema    - regenerate cdk/schema/shiftguard.schema.json from the Rust configuration types (a test fails while it is stale)"
	@echo "make bench     - release build, then init/handler/RSS/zip/round-trip figures against budgets"
	@echo "make bench-sizes - what fills each binary: code by crate and kind, sections (unstripped release build)"
	@echo "make hot-code - regenerate the linker scripts that link the code each function runs first (valgrind)"
	@echo "make deploy    - deploy the CDK app (needs an AWS account and credentials)"
	@echo "make invoke-rollback|invoke-pre-traffic|invoke-post-traffic EVENT=events/... - invoke a running 'cargo lambda watch'"
	@echo "make rollback TARGET=lambda-alias:checkout:live REASON='INC-42' BY=you - an operator's rollback, now, through a running 'cargo lambda watch'"
	@echo "make rollout PLAN=events/shift/lattice-rollout.json [SPEED=60] [ID=orders-v2b] - a progressive rollout (shift), one step per invocation, against 'make emulator SAMPLE=1'"

# The project's Python tools (moto server, cargo-lambda), pinned in tests/requirements.txt.
$(STAMP): tests/requirements.txt
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r tests/requirements.txt
	touch $@

venv: $(STAMP)

# The AWS SAM CLI in a venv of its own (tests/requirements-sam.txt): `make sam-test` runs `sam build`.
SAM_VENV    := .venv-sam
SAM_STAMP   := $(SAM_VENV)/.installed
$(SAM_STAMP): tests/requirements-sam.txt
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r tests/requirements-sam.txt
	touch $@

SCENARIO ?= alias

# The configuration's JSON Schema, generated from the Rust types (tests/schema); the construct
# validates protect()/rollout() against it at synth. `make test` fails while the committed one is stale.
schema:
	SHIFTGUARD_WRITE_SCHEMA=1 cargo test -p shiftguard-schema --test committed

# A whole canary deployment with the real binaries, run by the emulator's engine (SCENARIO=lattice: a
# VPC Lattice listener rolled out by shift, driven by tests/demo/rollout.py; SCENARIO=codedeploy-alarm:
# CodeDeploy's own alarm rollback beside ShiftGuard's).
demo: $(STAMP) cdk-synth
	$(PYTHON) tests/demo/demo.py --scenario $(SCENARIO)

# Every test: Rust, every demo scenario end to end, the CDK app and the SAM example.
# Every emulator the suite starts appends the calls the binaries made as their stack roles to
# IAM_USAGE; tests/iam_report.py turns it into the least-privilege report (target/iam-report.md) and
# fails on a grant never used and not explained (tests/iam-unused.json) or a gap in a guide's IAM policy
# (rollback/README.md#iam-permissions-rollback-needs, hooks/README.md#iam-permissions-the-hooks-need).
IAM_USAGE := $(CURDIR)/target/iam-usage.jsonl
# Each demo scenario's transcript, compared with the ones README.md and tests/README.md show
# (tests/demo/readme_transcript.py). tests/docs first: every link in the documentation resolves.
DEMO_TRANSCRIPTS := $(CURDIR)/target/demo-transcripts
test: $(STAMP) cdk-synth
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/docs
	@if cargo clippy --version >/dev/null 2>&1; then cargo clippy --workspace --all-targets --locked -- -D warnings; \
	else echo "cargo clippy is not installed (rustup component add clippy): lint skipped"; fi
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/shape
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/bench/test_hot_code.py
	rm -f $(IAM_USAGE)
	rm -rf $(DEMO_TRANSCRIPTS)
	SHIFTGUARD_IAM_USAGE=$(IAM_USAGE) cargo test --workspace --locked
	SHIFTGUARD_IAM_USAGE=$(IAM_USAGE) $(PYTHON) tests/demo/demo.py --scenario alias --transcript $(DEMO_TRANSCRIPTS)/alias.txt
	SHIFTGUARD_IAM_USAGE=$(IAM_USAGE) $(PYTHON) tests/demo/demo.py --scenario lattice --transcript $(DEMO_TRANSCRIPTS)/lattice.txt
	SHIFTGUARD_IAM_USAGE=$(IAM_USAGE) $(PYTHON) tests/demo/demo.py --scenario codedeploy-alarm --transcript $(DEMO_TRANSCRIPTS)/codedeploy-alarm.txt
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/demo/test_readme_transcript.py
	$(PYTHON) tests/demo/readme_transcript.py $(DEMO_TRANSCRIPTS)
	$(PYTHON) tests/iam_report.py --usage $(IAM_USAGE)
	$(PYTHON) tests/byhand/run.py
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/byhand/test_doctor.py
	$(MAKE) cdk-test cdk-python sam-test
	$(MAKE) emulator-test

# The timing-sensitive suites, ROUNDS times, with LOAD busy processes on the CPU (tests/stress.py).
# Not part of `make test`: a flake found here is a defect to fix, never a retry.
test-stress: $(STAMP)
	$(PYTHON) tests/stress.py --rounds $(or $(ROUNDS),5) --load $(or $(LOAD),2)

cdk/node_modules/.installed: cdk/package-lock.json
	cd cdk && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The CDK app synthesized offline into target/cdk.out (stand-in zips: the templates do not depend on
# the code). The demo, the emulator's tests and the Rust sequences run each binary with the IAM
# policy these templates give its function (ShiftGuardRehearsal: the demo's world).
cdk-synth: $(STAMP) cdk/node_modules/.installed
	$(PYTHON) -c "import os; [os.makedirs(f'$(CDK_TEST_ASSETS)/{b}', exist_ok=True) or open(f'$(CDK_TEST_ASSETS)/{b}/bootstrap.zip','wb').write(bytes.fromhex('504b0506' + '00'*18)) for b in ('pre-traffic','post-traffic','rollback','shift')]"
	cd cdk && npx tsc && npx cdk synth --quiet --no-notices -c shiftguard:assetDir=../$(CDK_TEST_ASSETS) -c shiftguard:architecture=x86_64 -o ../target/cdk.out

# Jest + cdk-nag on the synthesized stacks, then cfn-lint on the synthesized templates.
cdk-test: cdk-synth
	cd cdk && npx jest
	# W3005: CDK's explicit DependsOn from a function to its role's policy is deliberate (the policy
	# must exist before the function runs); every other rule applies.
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- target/cdk.out/*.template.json

# The construct library for Python CDK apps (cdk/README.md, "Python"). cdk-wheel: jsii compiles
# lib/ after tsc (both write dist/lib; only jsii's output carries the type information the Python
# side needs), jsii-pacmak generates the Python package around the npm package (its tarball: .jsii,
# the schema, the bundled ajv; without npm scripts, whose prepack would run tsc over jsii's
# output), pip builds target/cdk-python/wheel/shiftguard_cdk-*.whl with the pinned setuptools of a
# venv of its own (cdk/python-test/requirements.txt: aws-cdk-lib as PyPI has it, the version the
# TypeScript side is built and tested with; rebuilt when that file changes). cdk-python: the wheel
# pip-installed into that venv, then cdk/python-test/test_python.py: the Python app synthesizes the
# cloud assembly its TypeScript twins (cdk/test/python-twins.ts) do, and a typo raises TypeScript's
# message. The jsii runtime's unpacked packages are kept in target/cdk-python/jsii-cache. (jsii's
# tools warn that Node 20 is past its end of life for them: silenced for 20 only, as are jsii's
# notes on names reserved in Go and on devDependency pins.)
CDK_PY       := target/cdk-python
CDK_PY_VENV  := $(CDK_PY)/venv
CDK_PY_STAMP := $(CDK_PY_VENV)/.installed
CDK_PY_ENV   := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
$(CDK_PY_STAMP): cdk/python-test/requirements.txt
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	rm -rf $(CDK_PY_VENV)
	python3 -m venv $(CDK_PY_VENV)
	$(CDK_PY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r cdk/python-test/requirements.txt
	touch $@

cdk-wheel: cdk/node_modules/.installed $(CDK_PY_STAMP)
	cd cdk && npx tsc && $(CDK_PY_ENV) npx jsii --silence-warnings reserved-word --silence-warnings JSII6
	rm -rf $(CDK_PY)/pacmak $(CDK_PY)/wheel
	cd cdk && $(CDK_PY_ENV) npm_config_ignore_scripts=true npx jsii-pacmak --targets python --code-only --no-npmignore --outdir ../$(CDK_PY)/pacmak
	PYTHONWARNINGS=ignore $(CDK_PY_VENV)/bin/python -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w $(CDK_PY)/wheel $(CDK_PY)/pacmak/python
	@ls $(CDK_PY)/wheel/shiftguard_cdk-*.whl

cdk-python: cdk-wheel
	$(CDK_PY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall $(CDK_PY)/wheel/shiftguard_cdk-*.whl
	cd cdk/python-test && $(CDK_PY_ENV) PYTHONDONTWRITEBYTECODE=1 JSII_RUNTIME_PACKAGE_CACHE_ROOT=$(CURDIR)/$(CDK_PY)/jsii-cache \
		$(CURDIR)/$(CDK_PY_VENV)/bin/python -m pytest -q -p no:cacheprovider test_python.py

# The emulator's own suite (engine, alarms, SNS, bindings, fidelity), strict model conformance on.
# tests/README.md#running-it-by-hand, exactly as `make emulator SAMPLE=1` prints it: the seeded emulator,
# cargo lambda watch with the printed environment, every printed invoke; asserts the results.
byhand: $(STAMP)
	$(PYTHON) tests/byhand/run.py

# rollback/README.md#doctor-does-the-safety-net-work: rollback asked {"shiftguard":"doctor"} checks what its configuration depends on.
# By default against the emulator seeded with the sample application (strict IAM: the rehearsal
# stack's role, hence cdk-synth) and a watch of its own; EMULATOR=1 against a running
# `make emulator SAMPLE=1` on EMULATOR_PORT; WATCH=1 through a running `cargo lambda watch` on WATCH_PORT.
doctor: $(STAMP) $(if $(WATCH)$(EMULATOR),,cdk-synth)
	$(PYTHON) tests/byhand/doctor.py $(if $(WATCH),--watch http://127.0.0.1:$(WATCH_PORT),$(if $(EMULATOR),--emulator http://127.0.0.1:$(EMULATOR_PORT)))

emulator-test: $(STAMP) cdk-synth
	cd tests/emulator && ../../$(PYTHON) -m pytest -q -p no:cacheprovider

# The SAM templates offline (cfn-lint, aws-sam-translator, assertions, every local path), then
# `sam build` of the example as shipped and the example's invoke checks against what it built.
sam-test: $(STAMP) $(SAM_STAMP)
	$(PYTHON) examples/sam/check_sam.py --sam $(SAM_VENV)/bin/sam

emulator: $(STAMP) $(if $(SAMPLE),cdk-synth)
	@echo "Local AWS endpoint: export AWS_ENDPOINT_URL=http://127.0.0.1:$(EMULATOR_PORT) AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
	$(PYTHON) tests/emulator/shiftguard_emulator.py --host 127.0.0.1 --port $(EMULATOR_PORT) $(if $(ENGINE),--engine) $(if $(TIME_SCALE),--time-scale $(TIME_SCALE)) $(if $(SAMPLE),--seed-sample)

# Release zips in target/lambda/<function>/bootstrap.zip. arm64 needs the aarch64-unknown-linux-gnu
# Rust target (rustup target add aarch64-unknown-linux-gnu).
build: $(STAMP)
	$(PYTHON) -m pip install --quiet ziglang==0.17.0
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo-lambda lambda build --release --output-format zip $(if $(filter arm64,$(ARCH)),--arm64,--x86-64)

synth: cdk/node_modules/.installed
	cd cdk && npx tsc && npx cdk synth --no-notices -c shiftguard:architecture=$(ARCH)

deploy: cdk/node_modules/.installed
	cd cdk && npx tsc && npx cdk deploy --all -c shiftguard:architecture=$(ARCH)

# Release zips (x86_64: its target is always installed), then init, handler time, peak RSS, zip
# size and rollback's AWS round trips, each function run as Lambda runs it, beside the floor (a bare
# std-only runtime loop, tests/bench/floor) and with init step by step from a traced build (profile
# bench-trace; tests/README.md "Performance"). Not part of `make test`.
bench: $(STAMP)
	$(MAKE) build ARCH=x86_64
	$(PYTHON) -m pip install --quiet ziglang==0.17.0
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo-lambda lambda build --release --x86-64 -p shiftguard-bench-floor --lambda-dir target/lambda-floor
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo-lambda lambda build --profile bench-trace --x86-64 --features shiftguard-common/init-trace \
		-p shiftguard-rollback -p shiftguard-hooks -p shiftguard-shift --lambda-dir target/lambda-trace
	$(PYTHON) tests/bench/bench.py --runs $(or $(RUNS),9) --trace-dir target/lambda-trace

# What fills each binary (and so its zip): the release code built with its symbols (profile
# bench-sizes), function sizes by crate and by kind, and section sizes (tests/bench/sizes.py).
LAMBDA_BUILD := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo-lambda lambda build --x86-64 -p shiftguard-rollback -p shiftguard-hooks -p shiftguard-shift
bench-sizes: $(STAMP)
	$(PYTHON) -m pip install --quiet ziglang==0.17.0
	$(LAMBDA_BUILD) --profile bench-sizes --lambda-dir target/lambda-sizes
	$(PYTHON) tests/bench/sizes.py --dir target/lambda-sizes

# The linker scripts that link the code each function runs first (hot-code-<binary>.ld beside
# each crate; tests/bench/hot_code.py): a build linked without them (SHIFTGUARD_HOT_CODE=off) runs
# make bench's scenarios under callgrind; then a build linked with them runs again, and what ran
# outside .text.hot is added. Regenerate after a dependency or toolchain update (make bench shows
# the resident code growing). Needs valgrind and openssl (make bench's TLS front); ~6 minutes warm.
HOT_CODE_PROFILE = for f in rollback pre-traffic post-traffic shift; do \
		$(PYTHON) tests/bench/bench.py --runs 1 --only $$f --bin-dir target/hot-code/$(1)-bin \
			--wrap "valgrind --tool=callgrind --demangle=no --dump-line=no --compress-strings=no --compress-pos=no --callgrind-out-file=target/hot-code/$(1)/$$f.%p" \
			> target/hot-code/$(1)-$$f.log || { cat target/hot-code/$(1)-$$f.log; exit 1; }; done
hot-code: $(STAMP)
	$(PYTHON) -m pip install --quiet ziglang==0.17.0
	rm -rf target/hot-code && mkdir -p target/hot-code/first target/hot-code/second
	SHIFTGUARD_HOT_CODE=off $(LAMBDA_BUILD) --profile bench-sizes --lambda-dir target/hot-code/first-bin
	$(call HOT_CODE_PROFILE,first)
	$(PYTHON) tests/bench/hot_code.py --first target/hot-code/first --first-bin target/hot-code/first-bin
	$(LAMBDA_BUILD) --profile bench-sizes --lambda-dir target/hot-code/second-bin
	$(call HOT_CODE_PROFILE,second)
	$(PYTHON) tests/bench/hot_code.py --first target/hot-code/first --first-bin target/hot-code/first-bin \
		--second target/hot-code/second --second-bin target/hot-code/second-bin

invoke-%: $(STAMP)
	$(VENV)/bin/cargo-lambda lambda invoke $* --invoke-port $(WATCH_PORT) --data-file $(EVENT)

# An operator's rollback (README.md#in-an-incident-roll-back-now): the same decisions and record as an alarm.
# TARGET, REASON and BY reach Python through the environment (make exports command-line
# variables), never through the shell, so quotes and $ in a reason are kept as written.
rollback: $(STAMP)
	@test -n "$(TARGET)" || { echo "TARGET is required, e.g. make rollback TARGET=lambda-alias:checkout:live REASON='INC-42' BY=alice"; exit 2; }
	@test -n "$$REASON" || { echo "REASON is required: an operator rollback is on the record"; exit 2; }
	@test -n "$$BY" || { echo "BY is required: who asks (an operator rollback is on the record)"; exit 2; }
	$(PYTHON) -c 'import datetime,json,os; print(json.dumps({"shiftguard":"rollback","targets":os.environ["TARGET"].split(","),"reason":os.environ["REASON"],"requestedBy":os.environ["BY"],"requestedAt":datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}))' > $(VENV)/operator-rollback.json
	$(VENV)/bin/cargo-lambda lambda invoke rollback --invoke-port $(WATCH_PORT) --data-file $(VENV)/operator-rollback.json

# A progressive rollout, driven locally: tests/demo/rollout.py plays the Step Functions state machine
# (shift, wait, shift...) against the emulator on EMULATOR_PORT, through the running 'cargo lambda
# watch' on WATCH_PORT, or a watch of its own when none answers there. SPEED=60 divides every bake
# by 60 (a rehearsal); ID gives the rollout a new id (an id is used once). Exit 0 promoted, 2 aborted.
rollout: $(STAMP)
	@test -n "$(PLAN)" || { echo "PLAN is required, e.g. make rollout PLAN=events/shift/lattice-rollout.json SPEED=60"; exit 2; }
	$(PYTHON) tests/demo/rollout.py $(PLAN) --endpoint http://127.0.0.1:$(WATCH_PORT) --emulator http://127.0.0.1:$(EMULATOR_PORT) $(if $(SPEED),--speed $(SPEED)) $(if $(ID),--id $(ID))

clean:
	cargo clean
	rm -rf $(VENV) $(SAM_VENV)
