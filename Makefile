# Two commands on a fresh machine:  make demo   (the main job)  and  make test   (every test).
# Both create .venv on first use with the pinned versions of requirements-test.txt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean-venv

$(STAMP): requirements.txt requirements-test.txt requirements-comfyui.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt -e .
	touch $@

# The main job: example workflow "Restore the faces in a photo" through a local headless ComfyUI 0.3.75 (unpacked once into
# ~/.cache/lpip-diff, outside the repository) with the shipped x4 model, on a bundled public-domain photo whose faces
# are about 10 px wide (tools/demo.py): the restored photo, one side-by-side image (Lanczos x4 | restored, the faces
# marked), one line per face found and the time taken. No network beyond PyPI and Debian.
demo: $(STAMP)
	rm -rf outputs/demo
	$(PY) -m tools.demo --out outputs/demo

# The browser tests drive Debian's chromium (installed here when missing: needs root, as in CI).
test: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)
	$(PY) -m pytest

# Speed, side by side in one run: the sampler's three ways (bench/sampler.py), then the demo photo's faces one by one
# vs in one pass, 1 / 2 / automatic threads, quiet and busy (the CPU half of bench/gpu.py; on a GPU machine run
# `python bench/gpu.py` for the GPU half).
bench: $(STAMP)
	$(PY) bench/sampler.py
	$(PY) bench/gpu.py --cpu

clean-venv:
	rm -rf $(VENV)
