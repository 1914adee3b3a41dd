# Two commands on a fresh machine (README): `make demo` runs the main job, `make test` the tests.
# Both create or refresh .venv from constraints.txt, the one place where versions are pinned.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edge-slr-installed
EXTRAS ?= all,dev
SHARED ?= ../shared/data
DEMO_ARGS ?=

.PHONY: venv demo test test-slow test-isa lint clean

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

# The numeric tests (tiny models trained and converted in the test session) under the machine's
# full ISA and under narrower ones, so that a threshold one CPU's float kernels pass and another's
# miss shows up on one machine: make test-isa ISAS="full avx2 aten-default". torch (ATen + oneDNN)
# and OpenVINO (oneDNN) honour the limits; .ci/isa_report.py prints what each engine really used.
# aten-default: torch's ATen kernels without SIMD (other rounding even on an AVX2-only CPU);
# oneDNN stays at AVX2, since OpenVINO's CPU plugin fails below it (MVN "bad combination").
ISAS ?= full avx2
NUMERIC_TESTS ?= tests/test_convert.py tests/test_runtimes.py tests/test_recognizer.py \
	tests/test_streaming.py tests/test_verify.py tests/test_train.py
test-isa: $(STAMP)
	@for isa in $(ISAS); do \
	  case $$isa in \
	    full) limits="";; \
	    avx2) limits="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2";; \
	    aten-default) limits="ATEN_CPU_CAPABILITY=default";; \
	    *) echo "unknown ISA '$$isa' (full, avx2, aten-default)"; exit 2;; \
	  esac; \
	  echo "== ISA $$isa"; \
	  env $$limits $(BIN)/python .ci/isa_report.py || exit 1; \
	  env $$limits $(BIN)/python -m pytest -q -p no:cacheprovider $(NUMERIC_TESTS) || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check edge_slr tests benchmarks
	$(BIN)/ruff format --check edge_slr tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
