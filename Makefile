# Two commands on a fresh machine (Python 3.11):  make demo  |  make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# the oldest torch / torchvision that pyproject.toml allows (torchvision 0.20: 16-bit PNG and WEBP decoding)
OLDEST ?= torch==2.5.1 torchvision==0.20.1
VENV_OLDEST ?= .venv-oldest

.PHONY: demo test test-slow test-oldest bench install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed  ## install everything, then denoise the shipped samples
	$(PY) -m gbp_torch.demo --out results/demo

test: $(VENV)/.installed  ## the default (fast) test suite
	$(PY) -m pytest -q

test-slow: $(VENV)/.installed
	$(PY) -m pytest -q -m slow

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_factor_graph.py

$(VENV_OLDEST)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_OLDEST)/bin/python -m pip install --quiet $(OLDEST) -e ".[test]"
	touch $@

test-oldest: $(VENV_OLDEST)/.installed  ## the default test suite on the oldest supported torch / torchvision
	$(VENV_OLDEST)/bin/python -m pytest -q -p no:cacheprovider
