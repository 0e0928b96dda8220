# Two commands on a fresh machine:
#   make run   build and run the demo on the embedded stack (no AWS account needed)
#   make test  install what the tests need (pinned, into .venv) and run every test

SHELL := /bin/bash
VENV := .venv
VENV_INFRA := .venv-infra
PYTHON := $(VENV)/bin/python
CARGO ?= cargo

export CAREPOST_PYTHON := $(abspath $(PYTHON))
export CAREPOST_AXE := $(abspath .axe/node_modules/axe-core/axe.min.js)
export CAREPOST_BIN := $(abspath target/debug/carepost)

.PHONY: run dev test venv infra-venv browser axe spamassassin lint infra-lint package fmt clean bench-kms bench-consent bench-decrypt bench-fanout bench-ledger bench-cost bench-init bench-journeys bench-journeys-embedded

run:
	$(CARGO) build --release -p carepost-cli
	./target/release/carepost demo --data-dir .carepost/demo

dev:
	$(CARGO) run --release -p carepost-cli -- dev

test: venv browser axe spamassassin lint infra-lint
	$(CARGO) build --workspace
	VENV=$(VENV) scripts/with-moto.sh $(CARGO) test --workspace

# KMS calls for 10,000 contacts through fan-out and send, on moto (a few minutes).
bench-kms: venv
	VENV=$(VENV) scripts/with-moto.sh $(CARGO) bench --profile dev -p carepost-tests --bench kms_calls --bench kms_reads

# AWS requests per email, counted on the wire against moto, and the cost per 1,000,000 emails (a few minutes).
bench-cost: venv
	VENV=$(VENV) scripts/with-moto.sh $(CARGO) bench --profile dev -p carepost-tests --bench cost

# The journey timer: requests per due contact and sweep, counted on the wire against moto, and the
# cost per 1,000,000 steps (BENCH_WAITING, BENCH_DUE; a few minutes).
bench-journeys: venv
	VENV=$(VENV) scripts/with-moto.sh $(CARGO) bench --profile dev -p carepost-tests --bench journey_sweep

# SQLite's synchronous mode for ledger settles: cost per send, NORMAL vs FULL (seconds).
# Each function's cold start beside a lambda_http hello-world's (same profile, same run).
BENCH_PROFILE ?= release
bench-init: venv
	$(CARGO) build --profile $(BENCH_PROFILE) -p consent -p contacts -p campaigns -p webhooks -p fanout -p sender -p ses-events
	VENV=$(VENV) scripts/with-moto.sh $(CARGO) bench --profile $(BENCH_PROFILE) -p carepost-tests --bench init

bench-ledger:
	$(CARGO) bench --profile dev -p carepost-tests --bench ledger_sync

bench-consent:
	$(CARGO) build --release -p carepost-cli
	./target/release/carepost bench consent

bench-decrypt:
	$(CARGO) build --release -p carepost-cli
	./target/release/carepost bench decrypt

bench-fanout:
	$(CARGO) build --release -p carepost-cli
	./target/release/carepost bench fanout

# One journey timer sweep on the embedded stack: 1,000,000 enrolled, 100,000 due (minutes).
bench-journeys-embedded:
	$(CARGO) build --release -p carepost-cli
	./target/release/carepost bench journeys

# The SAM template: sam validate --lint, cfn-lint, checkov (offline).
infra-lint: infra-venv
	VENV_INFRA=$(VENV_INFRA) scripts/infra-lint.sh

# sam build with cargo-lambda (arm64, or x86_64 where the target is missing); zipped sizes.
package: infra-venv
	VENV_INFRA=$(VENV_INFRA) scripts/package.sh

# Debian's chromium for the headless browser tests (skipped when present).
browser:
	scripts/install-chromium.sh

# axe-core (npm, pinned) for the pages' accessibility checks in Chromium.
axe:
	scripts/install-axe.sh

# Debian's SpamAssassin for the deliverability tests (skipped when present).
spamassassin:
	scripts/install-spamassassin.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-test.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

infra-venv: $(VENV_INFRA)/.installed

$(VENV_INFRA)/.installed: requirements-infra.txt
	python3 -m venv $(VENV_INFRA)
	$(VENV_INFRA)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

clean:
	rm -rf $(VENV) $(VENV_INFRA) .carepost .aws-sam
	$(CARGO) clean
