# Two commands on a fresh machine:
#   make run   build and run the demo on the embedded stack (no AWS account needed)
#   make test  install what the tests need (pinned, into .venv) and run every test

SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
CARGO ?= cargo

export CAREPOST_PYTHON := $(abspath $(PYTHON))
export CAREPOST_BIN := $(abspath target/debug/carepost)

.PHONY: run dev test venv lint fmt clean bench-kms

run:
	$(CARGO) build --release -p carepost-cli
	./target/release/carepost demo --data-dir .carepost/demo

dev:
	$(CARGO) run --release -p carepost-cli -- dev

test: venv lint
	$(CARGO) build --workspace
	VENV=$(VENV) scripts/with-moto.sh $(CARGO) test --workspace

# KMS calls for 10,000 contacts through fan-out and send, on moto (a few minutes).
bench-kms: venv
	VENV=$(VENV) scripts/with-moto.sh $(CARGO) bench --profile dev -p carepost-tests --bench kms_calls

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

clean:
	rm -rf $(VENV) .carepost
	$(CARGO) clean
