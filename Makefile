# Two commands on a fresh machine:  make demo   (the main job)  and  make test   (every test).
# Both create .venv on first use with the pinned versions of requirements-test.txt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean-venv

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt -e .
	touch $@

demo: $(STAMP)
	$(VENV)/bin/lpip-diff restore examples/lq/*.png -o outputs/demo
	@echo "restored faces written to outputs/demo/"

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/sampler.py

clean-venv:
	rm -rf $(VENV)
