# The README's two commands: `make run` (set up + run the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup run test bench clean

$(BIN)/edge: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,postgres]'
	touch $(BIN)/edge

setup: $(BIN)/edge
	$(BIN)/edge models fetch

run: setup
	$(BIN)/edge run

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/edge bench

clean:
	rm -rf $(VENV) models/*.onnx models/*.stamp.json models/samples
