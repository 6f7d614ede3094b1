"""The pattern every hardware test follows: an Amaranth design generated to Verilog in the
test, driven by a cocotb testbench from ``sim/`` on both Icarus and Verilator. A missing
simulator fails the test with an install hint; it never skips."""

from pathlib import Path

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwq.cosim import run_cocotb
from hwq.toolchain import SIMULATORS


class Accumulator(wiring.Component):
    """acc <= acc + din whenever en is high (16-bit wrap-around)."""

    en: In(1)
    din: In(8)
    acc: Out(16)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.acc.eq(self.acc + self.din)
        return m


@pytest.mark.hw
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_smoke_accumulator_cosim(simulator: str, tmp_path: Path) -> None:
    src = tmp_path / "accumulator.v"
    dut = Accumulator()
    src.write_text(verilog.convert(dut, name="accumulator", strip_internal_attrs=True))
    run_cocotb(simulator, [src], "accumulator", "tb_smoke", tmp_path / f"build_{simulator}")
