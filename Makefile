# Two entry points that work on a fresh machine with Python 3.11 and pip:
#   make demo   localize a simulated demo stack with the pretrained Deep-STORM, then classify
#               simulated cells with the pretrained PLCNN
#   make test   install the test extras and run the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/loczoo: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/loczoo
	mkdir -p demo
	$(BIN)/loczoo simulate demo/stack.tif --frames 100 --structure filaments --density 100 100 \
		--seed 1 --overwrite --quiet
	$(BIN)/loczoo localize demo/stack.tif --out demo/localizations.csv \
		--render demo/localizations.png --overwrite
	$(BIN)/loczoo evaluate demo/localizations.csv demo/stack_gt.csv
	$(BIN)/loczoo simulate-cells demo/cells --per-class 4 --seed 1 --overwrite --quiet
	$(BIN)/loczoo classify demo/cells --out demo/cell_classes.csv --explain --overwrite --quiet

test: $(BIN)/loczoo
	$(BIN)/python -m pytest -q

lint: $(BIN)/loczoo
	$(BIN)/ruff check zoo datasets export tools tests benchmarks

clean:
	rm -rf $(VENV) demo build *.egg-info
