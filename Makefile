# Two commands do all the set-up on a fresh machine:
#   make train   # virtualenv + install + the default run (four tasks, real data, MiniLM)
#   make test    # virtualenv + install + the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first, pinned: a bare `torch` requirement would pull a multi-GB CUDA
# build into a fresh venv. Override for a GPU machine, e.g. TORCH_SPEC="torch==2.13.0 --index-url ...".
TORCH_SPEC ?= torch==2.13.0

.PHONY: install train test lint

$(BIN)/shopmtl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/shopmtl

train: $(BIN)/shopmtl
	$(BIN)/shopmtl train $(ARGS)

test: $(BIN)/shopmtl
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/shopmtl
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
