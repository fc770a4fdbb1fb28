# The two commands of the README: `make run` (the demo: sandboxes and hub, the whole story, then
# the hub keeps serving on localhost:8000; DEMO_ARGS=--once to exit) and `make test`. Both
# create .venv when needed. `make samples` runs every shipped mapping over its sample records.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/demo.yaml

.PHONY: run samples test check bench clean

run: $(VENV)/.run-installed
	$(BIN)/synchub check $(CONFIG)
	$(BIN)/synchub demo $(DEMO_ARGS)

samples: $(VENV)/.run-installed
	@for mapping in mappings/*/*.yaml; do \
	  vendor=$$(dirname "$$mapping"); file=$$(basename "$$mapping" .yaml); object="$${file%.*}"; \
	  sample="$$vendor/samples/$$object.jsonl"; \
	  [ -f "$$sample" ] || continue; \
	  echo; echo "== $$sample -> $$mapping (inbound)"; \
	  $(BIN)/synchub map "$$mapping" --direction inbound --in "$$sample" || true; \
	done

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(BIN)/python bench/mapping.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/connectors.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/e2e.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.run-installed

clean:
	rm -rf $(VENV) var .pytest_cache
