# Both targets set up .venv on first use: a fresh machine needs only Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean device-wheels

$(VENV)/.installed: setup.py
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m experiments.quickstart

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 tests

# One JSON line: the train step of the LM shape compared with nanodo and nanoGPT (docs/performance.md).
bench: $(VENV)/.installed
	$(PY) -m benchmarks.train_throughput --json

# The pure-Python wheels the device machine's GPU image lacks (benchmarks/device_wheels.txt), for
# its Python 3.12, into .whl/: carried there, benchmarks/gpu.sh installs them (docs/performance.md).
device-wheels: $(VENV)/.installed
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	    --implementation py --abi none --platform any -d .whl -r benchmarks/device_wheels.txt

clean:
	rm -rf runs
