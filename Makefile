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
# ~/.cache/lpip-diff, outside the repository) with the shipped x4 model, on a bundled public-domain
# photo. ComfyUI's own output names: restored_photo_00001_.png and restored_faces_000NN_.png.
demo: $(STAMP)
	rm -rf outputs/demo
	$(PY) -m tools.comfyui run "example_workflows/api/Restore the faces in a photo.json" --out outputs/demo \
	    --set LoadImage.image=@examples/photos/solvay_1927.jpg \
	    --set LoadLPIPModel.model_name=lpip_x4_64.safetensors
	@echo "Restored photo (x2, faces restored by LPIP-Diff x4): outputs/demo/restored_photo_00001_.png"
	@echo "Each restored face (64 px):                          outputs/demo/restored_faces_*.png"

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
