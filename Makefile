# Two commands: `make run` serves the API, `make test` runs lint and the whole suite.
# Each creates .venv and installs what it needs the first time (only Python 3.11 needed).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-only lint bench bench-sweeps clean cassettes

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,hatchet]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/ccv serve

test: lint test-only

test-only: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Issue #5's sweep measurement (a 1M-row load: a few minutes, so not part of `make bench`).
bench-sweeps: $(STAMP)
	$(BIN)/python benchmarks/sweep_bench.py

# Re-record the LLM cassettes (tests/extraction/cassettes/): starts the scripted fake
# OpenAI-compatible server (tests/extraction/fake_openai.py), runs the LLM tests in recording
# mode against it, stops it. With CCV_LLM_BASE_URL, CCV_LLM_API_KEY and CCV_LLM_MODEL set,
# the good-answer exchange is recorded against that endpoint instead.
cassettes: $(STAMP)
	$(BIN)/python tests/extraction/fake_openai.py -- \
		$(BIN)/pytest tests/extraction/test_extraction_llm.py --record-mode=rewrite -p no:cacheprovider

clean:
	rm -rf $(VENV) .ccv .pytest_cache .mypy_cache .ruff_cache
