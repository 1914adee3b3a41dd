# Two commands on a fresh machine (README): `make demo` runs the main job, `make test` the tests.
# Both create or refresh .venv from constraints.txt, the one place where versions are pinned.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edge-slr-installed
EXTRAS ?= all,dev
SHARED ?= ../shared/data
DEMO_ARGS ?=

.PHONY: venv demo test test-slow lint clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (edge-slr is pinned for Python 3.11; set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[$(EXTRAS)]'
	@# a resolver that pulled a CUDA torch would cost GBs and break the CPU-only promise
	$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.version.cuda is None else 'a CUDA build of torch was installed; expected the CPU wheel pinned in constraints.txt')"
	$(BIN)/python -m pip check
	@touch $(STAMP)

venv: $(STAMP)

# the whole chain once (README Quickstart); e.g. make demo DEMO_ARGS="--targets openvino-int8,onnx,tflite"
demo: $(STAMP)
	$(BIN)/edge-slr demo --shared $(SHARED) $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check edge_slr tests benchmarks
	$(BIN)/ruff format --check edge_slr tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
