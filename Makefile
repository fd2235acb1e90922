# Two commands: `make run` (the main job) and `make test` (the test suite).
# Each creates .venv and installs jaxnet into it on first use. `GPU=1` adds jax's CUDA wheels.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
comma  := ,
EXTRAS := dev$(if $(GPU),$(comma)cuda)
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
RUNS   ?= runs

.PHONY: run test test-slow reproduce bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.main $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Every study in full, then the check against experiments/reference.json (exit 1 on a miss).
reproduce: $(STAMP)
	$(PY) -m experiments.all --out $(RUNS)/reproduce --progress lines
	$(PY) -m experiments.check $(RUNS)/reproduce

bench: $(STAMP)
	$(PY) -m benchmarks.train_throughput $(ARGS)

clean:
	rm -rf $(VENV) runs
