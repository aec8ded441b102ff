# Two commands set up everything on a fresh machine:
#   make run    install into .venv (once), then `dvc repro` the pipeline
#   make test   install into .venv (once), then run the test suite
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)

.PHONY: install run test benchmark clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	dvc repro

test: $(STAMP)
	python -m pytest -q

benchmark: $(STAMP)
	python -m pipeline.benchmark

clean-venv:
	rm -rf $(VENV)
