"""Helpers shared by the hwq cocotb testbenches: stimulus file, clock/reset, stream driving.

Every testbench reads its stimulus (already packed into port integers by the Python side,
with golden expected values) from the JSON file named by ``HWQ_STIM`` and may write results
to ``HWQ_RESULT``.
"""

from __future__ import annotations

import json
import os

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


def load_stimulus(key: str = "") -> dict:
    """The JSON stimulus named by ``HWQ_STIM_<KEY>`` (several blocks built into one simulation)
    or else ``HWQ_STIM``. Its optional ``prefix`` is the block's port-name prefix."""
    path = os.environ.get(f"HWQ_STIM_{key.upper()}") if key else None
    with open(path or os.environ["HWQ_STIM"]) as f:
        return json.load(f)


def write_result(obj: dict) -> None:
    """Write ``obj`` as JSON to ``HWQ_RESULT`` (if set)."""
    path = os.environ.get("HWQ_RESULT")
    if path:
        with open(path, "w") as f:
            json.dump(obj, f)


def to_signed(value: int, width: int) -> int:
    """Two's-complement reading of an unsigned ``width``-bit integer."""
    return value - (1 << width) if value >> (width - 1) & 1 else value


async def start_clock_and_reset(dut) -> None:
    """10 ns clock; synchronous reset for two cycles; returns on a falling edge."""
    import cocotb

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


async def drive_and_read(dut, drive: dict[str, int], *names: str, prefix: str = "") -> tuple[int, ...]:
    """One clock cycle of the testbench protocol.

    Waits for the falling edge, drives ``drive`` (port name -> int), lets the combinational
    logic settle and returns ``names``' values: exactly what the *next* rising edge samples
    (so ``valid and ready`` read here means a transfer on that edge). Port names get ``prefix``.
    """
    await FallingEdge(dut.clk)
    for k, v in drive.items():
        getattr(dut, prefix + k).value = v
    await ReadOnly()
    return tuple(int(getattr(dut, prefix + n).value) for n in names)
