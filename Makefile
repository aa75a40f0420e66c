# The two commands of the README: `make serve` and `make test`. Both create and reuse .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.orbis-installed

.PHONY: install serve test lint data data-v3 train train-v3 bench clean

install: $(STAMP)

# torch==2.13.0 first: on CPU machines that pin takes the local CPU build; an open range would
# pull several GB of CUDA wheels.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

serve: install
	$(BIN)/orbis serve --host 127.0.0.1 --port 8000

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

data: install
	$(BIN)/orbis data --out data/orbis-v2

# training set v3 (FlightGear textures via apt-get download, labels); FG=DIR uses an unpacked tree
data-v3: install
	$(BIN)/orbis data --version 3 --out data/orbis-v3 $(if $(FG),--flightgear $(FG))

# builds data/orbis-v2 first when it is missing; resumes from runs/train when interrupted
train: install
	$(BIN)/orbis train --data data/orbis-v2 --out generator/weights/orbis-sr-v2

# model v3 (conditioned on the geography's features), warm-started from v2; needs data-v3
train-v3: install
	$(BIN)/orbis train --version 3 --data data/orbis-v3 --out generator/weights/orbis-sr-v3 \
		--run runs/train-v3 --minutes 40 --distil-minutes 25 --adversarial 0.05

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
