"""Generated Verilog of each block, driven by its cocotb testbench (sim/tb_*.py) on Icarus and
Verilator. Stimulus and golden expected values go to JSON files whose paths reach the
testbenches through ``HWQ_STIM_<BLOCK>``.

To keep the suite inside its CPU budget the PE, dequantizer and fixed-point datapath are
built into one harness (each block's ports prefixed ``pe__``, ``dequant__``, ``fixed__``), so
each simulator compiles once and runs tb_pe, tb_dequant and tb_fixed in turn.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from hwq.datatypes import DATATYPES, cycles_per_weight
from hwq.hw.array_driver import expected_cycles, expected_psum_accesses, unpack_outputs
from hwq.hw.array_sim import simulate_array
from hwq.hw.config import ArrayConfig
from hwq.cosim import run_cocotb
from hwq.hw.dequant import BitSerialDequant
from hwq.hw.fixed_datapath import FixedDatapath
from hwq.hw.generate import to_verilog
from hwq.hw.pe import BitSerialPE
from hwq.hw.presets import fixed_config_for
from hwq.hw.stimulus import dequant_groups, fixed_channels, khot_term_values, pe_groups, random_layer
from hwq.spec import load_spec
from hwq.toolchain import SIMULATORS


class Harness(wiring.Component):
    """Several blocks side by side; block ``name``'s ports appear as ``name__<port>``."""

    def __init__(self, blocks: dict):
        self._blocks = blocks
        super().__init__({name: Out(b.signature) for name, b in blocks.items()})

    def elaborate(self, platform):
        m = Module()
        for name, block in self._blocks.items():
            m.submodules[name] = block
            wiring.connect(m, wiring.flipped(getattr(self, name)), block)
        return m


def _pack(layout, value) -> str:
    return str(layout.const(value).as_value().value)


def pe_stimulus():
    """One PE holding every datatype of the table: all codes (special values included), extreme
    activations and random groups; psums (hwq.golden) and cycles per beat (hwq.datatypes)."""
    members = list(DATATYPES)
    dut = BitSerialPE(members, lanes=2, act_bits=8, bits_per_cycle=2, acc_bits=24)
    groups = pe_groups(members, lanes=2, act_bits=8, beats=8, seed=21, random_groups=1)
    stim = {"prefix": "pe__", "psum_bits": 24, "groups": [
        {"name": members[g["member"]], "expected": g["expected"],
         "cycles": cycles_per_weight(DATATYPES[members[g["member"]]].term_slots, 2),
         "inputs": {"x": g["x"], "codes": g["codes"]},
         "beats": [_pack(dut.beat, {"x": g["x"][b], "codes": g["codes"][b], "member": g["member"],
                                    "last": int(b == len(g["x"]) - 1)}) for b in range(len(g["x"]))]}
        for g in groups]}
    return dut, stim


def dequant_stimulus():
    """Bit-serial dequantizer: extreme psums and scales, random multi-group sums, back-pressure."""
    dut = BitSerialDequant(psum_bits=20, scale_bits=8, acc_bits=40, digits_per_cycle=2)
    seqs = dequant_groups(psum_bits=20, scale_bits=8, n_outputs=24, max_groups=5, seed=31)
    stim = {"prefix": "dequant__", "acc_bits": 40, "steps": dut.steps, "sequences": [
        {**s, "beats": [_pack(dut.beat, {"psum": p, "scale": sc, "last": int(i == len(s["psums"]) - 1)})
                        for i, (p, sc) in enumerate(zip(s["psums"], s["scales"]))]} for s in seqs]}
    return dut, stim


def fixed_stimulus():
    """Fixed-point datapath in the fpga_zu preset's formats and modes, with rounding ties,
    overflow and output back-pressure."""
    cfg = fixed_config_for(load_spec("fpga_zu"), lanes=2)
    dut = FixedDatapath(cfg)
    chans = fixed_channels(cfg, beats=3, n_random=60, seed=51)

    def port(shape, value) -> str:
        if hasattr(shape, "const"):
            return _pack(shape, value)
        return str(int(value) & ((1 << shape.width) - 1))

    for ch in chans:
        ch["beats"] = [_pack(dut.beat, {"x": ch["x"][b], "w": khot_term_values(ch["w"][b], cfg.khot)
                                        if cfg.khot else ch["w"][b], "last": int(b == len(ch["x"]) - 1)})
                       for b in range(len(ch["x"]))]
        ch["bn_scale_port"] = port(dut.bn_scale.shape(),
                                   khot_term_values(ch["bn_scale"], cfg.khot) if cfg.khot else ch["bn_scale"])
        ch["bn_shift_port"] = port(dut.bn_shift.shape(), ch["bn_shift"])
        ch["residual_port"] = port(dut.residual.shape(), ch["residual"]) if cfg.res_fmt is not None else "0"
    stim = {"prefix": "fixed__", "out_bits": cfg.out_fmt.width, "out_signed": cfg.out_fmt.signed,
            "has_residual": cfg.res_fmt is not None, "channels": chans}
    return dut, stim


@pytest.mark.hw
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_pe_dequant_fixed_cosim(simulator: str, tmp_path: Path) -> None:
    """tb_pe (every datatype), tb_dequant and tb_fixed against one build of the three blocks."""
    blocks, env = {}, {}
    for key, make in (("pe", pe_stimulus), ("dequant", dequant_stimulus), ("fixed", fixed_stimulus)):
        dut, stim = make()
        blocks[key] = dut
        path = tmp_path / f"stim_{key}.json"
        path.write_text(json.dumps(stim))
        env[f"HWQ_STIM_{key.upper()}"] = str(path)
    src = tmp_path / "blocks.v"
    src.write_text(to_verilog(Harness(blocks), "blocks"))
    results = run_cocotb(simulator, [src], "blocks", "tb_pe,tb_dequant,tb_fixed", tmp_path / f"build_{simulator}",
                         extra_env=env)
    ran = {case.get("name") for case in ET.parse(results).iter("testcase")}
    assert ran == {"pe_group_psums_exact", "dequant_sums_exact", "fixed_datapath_exact"}, ran


@pytest.mark.hw
@pytest.mark.parametrize("simulator,mode", [(s, "bit_serial") for s in SIMULATORS] + [("icarus", "bit_parallel")])
def test_array_tiled_matmul_cosim(simulator: str, mode: str, tmp_path: Path) -> None:
    """2x2 array, 4 lanes, read-modify-write partial sums: ragged K and N tiles, two weight formats
    (BitMoD mixture, 2 cycles per weight bit-serial, and INT6, 3), one run in three M tiles; cycles
    equal hwq.timing and o_mem row reads/writes equal hwq.timing.psum_row_accesses; a run with
    random output back-pressure still matches. The bit-parallel array (1 cycle per weight) runs on
    Icarus too."""
    cfg = ArrayConfig(rows=2, cols=2, lanes=4, group_size=4, formats=(("bitmod", 4), ("int", 6)),
                      mode=mode, bits_per_cycle=2 if mode == "bit_serial" else None,
                      x_depth=40, w_depth=32, out_depth=8)
    cases = [random_layer(cfg, 3, 20, 5, 0, seed=41), random_layer(cfg, 2, 12, 4, 1, seed=42),
             random_layer(cfg, 11, 20, 3, 0, seed=44, m_tile=4),
             random_layer(cfg, 4, 8, 3, 0, seed=43)]
    _check_array_runs(cfg, cases, simulator, tmp_path, ready_prob=[None, None, None, 0.4])


@pytest.mark.hw
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_array_m_tiles_elided_psums_cosim(simulator: str, tmp_path: Path) -> None:
    """The accumulate-in-array loop nest with elided partial sums: M = 10 rows in M tiles of 4
    (4, 4, 2) through a 4-deep o_mem, 3 K tiles, 2 N tiles; a one-K-tile layer that must never touch
    o_mem; a stalled multi-M-tile run. Bit-exact, cycles = hwq.timing.layer_compute_cycles(m_tile=4),
    o_mem reads and writes = hwq.timing.psum_row_accesses(elide=True)."""
    cfg = ArrayConfig(rows=2, cols=2, lanes=4, group_size=4, formats=(("bitmod", 4), ("int", 6)),
                      x_depth=32, w_depth=32, out_depth=4, psum_elide=True)
    cases = [random_layer(cfg, 10, 20, 3, 0, seed=71, m_tile=4), random_layer(cfg, 7, 12, 4, 1, seed=72, m_tile=3),
             random_layer(cfg, 6, 8, 2, 0, seed=73, m_tile=4), random_layer(cfg, 9, 16, 3, 0, seed=74, m_tile=4)]
    assert (cases[0][0].m_tiles, cases[0][0].k_tiles, cases[0][0].n_tiles) == (3, 3, 2)
    runs = _check_array_runs(cfg, cases, simulator, tmp_path, ready_prob=[None, None, None, 0.5])
    assert (runs[0].psum_reads, runs[0].psum_writes) == (2 * 10 * 2, 2 * 10 * 2)
    assert (runs[2].psum_reads, runs[2].psum_writes) == (0, 0)  # one K tile: o_mem untouched


def _check_array_runs(cfg, cases, simulator, tmp_path, *, ready_prob):
    """Simulate ``cases`` (``(image, golden)``) in one build; outputs bit-exact and psum counts as
    predicted for every run, cycles as predicted for the runs without back-pressure."""
    runs = simulate_array(cfg, [img for img, _ in cases], simulator=simulator, build_dir=tmp_path,
                          ready_prob=ready_prob)
    for i, ((img, expected), run) in enumerate(zip(cases, runs)):
        y = unpack_outputs(cfg, img, run.out_words)
        bad = np.argwhere(y != expected)
        assert bad.size == 0, (f"run {i}: first mismatch at (m, n)={tuple(bad[0])}: "
                               f"expected {expected[tuple(bad[0])]}, got {y[tuple(bad[0])]}")
        want = expected_psum_accesses(cfg, img)
        assert (run.psum_reads, run.psum_writes) == want, f"run {i}: psum reads/writes {run.psum_reads, run.psum_writes}, hwq.timing says {want}"
        if ready_prob[i] is None:
            assert run.cycles == expected_cycles(cfg, img), \
                f"run {i}: hwq.timing says {expected_cycles(cfg, img)}, RTL took {run.cycles}"
    return runs
