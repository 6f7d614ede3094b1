"""cocotb testbench for the smoke-test accumulator (tests/test_cosim_smoke.py builds it).

The DUT adds ``din`` into ``acc`` on every clock where ``en`` is high. The reference is
a running Python sum; every cycle's ``acc`` must match it exactly.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


@cocotb.test()
async def accumulates_exactly(dut):
    """Drive 200 random (en, din) pairs and compare acc to a running sum modulo 2**16."""
    rng = random.Random(1234)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.en.value = 0
    dut.din.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    expected = 0
    for i in range(200):
        en, din = rng.randint(0, 1), rng.randint(0, 255)
        dut.en.value = en
        dut.din.value = din
        await RisingEdge(dut.clk)
        await ReadOnly()
        if en:
            expected = (expected + din) % (1 << 16)
        got = int(dut.acc.value)
        assert got == expected, f"cycle {i}: en={en} din={din} expected acc={expected} got {got}"
        await FallingEdge(dut.clk)
