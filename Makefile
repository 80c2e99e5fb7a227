# vlmrl developer entry points. `make demo` and `make test` create .venv when
# it is missing, install the project into it, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU test environment: torch is not a package dependency (users bring their
# own CUDA build); these two lie in the machine's local wheel store.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
EXTRAS ?= verl,trl,dev
STAMP  := $(VENV)/.vlmrl-installed
PYTEST_ARGS ?=

.PHONY: install lmms-env demo test test-fast lint tiny-model clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
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
