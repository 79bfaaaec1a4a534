# The README's commands: `make run` (set up + run the main job) and `make test`.
# scripts/setup.sh does the work (it is the first command where make is not installed).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SETUP  := PYTHON=$(PYTHON) VENV=$(VENV) EDGE_EXTRAS=test,postgres scripts/setup.sh

.PHONY: setup run test bench clean

setup:
	$(SETUP)

run:
	$(SETUP) run

test: setup
	scripts/test-packages.sh
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/edge bench

clean:
	rm -rf $(VENV) models/*.onnx models/*.stamp.json models/samples
