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

# The full profile: 100k synthetic chunks (the corpus stays in data/bench, so later runs skip the ingest),
# every scenario, JSON + PNG; compared with benchmarks/baseline.json when there is one (exit 1 on a regression).
BENCH_BASELINE := $(wildcard benchmarks/baseline.json)
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/14  # the jobs scenarios queue here (skipped when unreachable)
bench: dev
	$(VENV)/bin/voicerag bench --profile full --data-dir data/bench --out benchmarks/bench_full.json \
		--plot benchmarks/bench_full.png --redis-url $(BENCH_REDIS_URL) $(if $(BENCH_BASELINE),--baseline $(BENCH_BASELINE))

lint: dev
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) data
