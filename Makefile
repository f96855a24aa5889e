# The two commands: `make run` and `make test`. Everything else is a helper.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_COLLECTION ?= docs

.PHONY: run test install dev lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

install: $(VENV)/.installed

$(VENV)/.dev: $(VENV)/.installed
	$(PIP) install --quiet -e '.[dev]'
	touch $@

dev: $(VENV)/.dev
	bash scripts/install-test-deps.sh

run: install
	$(VENV)/bin/voicerag ingest docs README.md --collection $(DEMO_COLLECTION)
	@echo ""
	@echo "VoiceRAG: http://$(HOST):$(PORT)   API docs: http://$(HOST):$(PORT)/docs"
	@echo "Try:  curl -s http://$(HOST):$(PORT)/v1/ask -H 'content-type: application/json' \\"
	@echo "        -d '{\"question\": \"How do I run the tests?\", \"collection\": \"$(DEMO_COLLECTION)\"}'"
	@echo ""
	$(VENV)/bin/voicerag serve --host $(HOST) --port $(PORT)

test: dev
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

bench: install
	$(VENV)/bin/voicerag bench --synthetic 2000 --requests 500 --concurrency 32 --out benchmarks/bench_latest.json

lint: dev
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) data
