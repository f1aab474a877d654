# `make demo` and `make test` each set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-install test-container lint format bench bench-peers clean

$(STAMP): requirements.txt requirements-nodeps.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(PY) main.py --model examples/shapes/model.h5 --dataset examples/shapes/export.zip \
		--resize-mode fit-short --out output

test: $(STAMP) lint
	$(PY) -m pytest

# `pip install .` into a new venv, as a user installs it: the newest versions pyproject.toml allows.
test-install: $(STAMP)
	$(PY) -m pytest -m fresh_install -n 0 tests/test_fresh_install.py
	@cat test-artifacts/fresh-install.txt

# The real image, built and run as Studio runs it; needs a Docker daemon (skips, saying why, without).
test-container: $(STAMP)
	$(PY) -m pytest -m container tests/test_container.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/hadolint Dockerfile

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .venv-peer output .pytest_cache

bench: $(STAMP)
	$(PY) bench/run.py

# The job against pytorch-grad-cam doing the same work; the peer gets its own .venv-peer (torch, grad-cam).
bench-peers: $(STAMP)
	$(PY) bench/peers.py
