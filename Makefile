# Two commands set everything up from nothing: `make bench` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: bench bench-gpu test lint install

$(STAMP): setup.py setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(PY) -m zoo.bench --profile quick

# make bench-gpu: the gpu profile, then the speed benchmark, into
# benchmarks/results/gpu-<device>-<date>/ (zoo/bench/commands/gpu.py); TINY=1 for the CPU-sized check.
# On the GPU machine (no package index, no .venv, wheels in .whl/ from ../shared/tools/gpu-wheels
# with pot and tabulate added) its own python3, which has CUDA jax, runs it with those wheels.
GPU_WHEELS := $(if $(wildcard $(PY)),,$(wildcard .whl/*.whl))
ifneq ($(GPU_WHEELS),)
bench-gpu:
	$(PYTHON) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .whl/site $(GPU_WHEELS)
	PYTHONPATH=$(CURDIR)/.whl/site:$(CURDIR) $(PYTHON) -m zoo.bench gpu $(if $(TINY),--tiny)
else
bench-gpu: $(STAMP)
	$(PY) -m zoo.bench gpu $(if $(TINY),--tiny)
endif

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check zoo benchmarks tests
	$(VENV)/bin/ruff format --check zoo benchmarks tests
