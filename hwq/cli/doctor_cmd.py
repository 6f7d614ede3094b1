"""``hwq doctor``: report which external tools hwq found and their versions."""

from __future__ import annotations

import argparse
import subprocess

HELP = "check that Icarus Verilog, Verilator and Yosys are installed and wired for hwq"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``hwq doctor`` takes no options."""


def run(args: argparse.Namespace) -> int:
    """Print one line per tool; exit 1 if any is missing (the line says how to install it)."""
    from hwq.errors import ToolMissingError
    from hwq.toolchain import require_simulator, require_yosys

    checks = {
        "icarus": (lambda: require_simulator("icarus"), ["iverilog", "-V"]),
        "verilator": (lambda: require_simulator("verilator"), ["verilator", "--version"]),
        "yosys": (require_yosys, ["yosys", "-V"]),
    }
    missing = 0
    for name, (find, version_cmd) in checks.items():
        try:
            path = find()
        except ToolMissingError as err:
            print(f"{name:10s} MISSING  {err}")
            missing += 1
            continue
        out = subprocess.run([path, *version_cmd[1:]], capture_output=True, text=True)
        version = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"
        print(f"{name:10s} ok       {path}  ({version})")
    return 1 if missing else 0
