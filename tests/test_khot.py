"""K-hot weights (hwq.quant.khot): powers of two for K=1, at most K terms, nearest by brute force."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwq.datatypes import FixedFormat
from hwq.quant.khot import khot_fixed, khot_fixed_codes, khot_quantize, naf_terms


def brute_khot_set(k: int, max_shift: int) -> list[int]:
    """Every sum of at most k signed powers of two with shifts 0..max_shift (independent of khot_values)."""
    terms = [0] + [s * (1 << e) for e in range(max_shift + 1) for s in (1, -1)]
    return sorted({sum(c) for c in itertools.combinations_with_replacement(terms, k)})


def test_k1_gives_powers_of_two() -> None:
    w = torch.randn(16, 9, generator=torch.Generator().manual_seed(0))
    r = khot_quantize(w, 1, max_shift=6)
    mags = r.codes.abs()
    nz = mags[mags > 0]
    assert torch.all((nz & (nz - 1)) == 0)  # powers of two
    scaled = r.values.to(torch.float64) / torch.pow(2.0, r.scale_exp.to(torch.float64)).unsqueeze(1)
    assert torch.equal(scaled, r.codes.to(torch.float64))
    assert r.scale_exp.shape == (16,)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_at_most_k_terms_and_terms_rebuild_codes(k: int) -> None:
    w = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(k))
    r = khot_quantize(w, k, max_shift=5)
    assert r.term_signs.shape == w.shape + (k,)
    rebuilt = (r.term_signs.to(torch.int64) * (1 << r.term_shifts)).sum(-1)
    assert torch.equal(rebuilt, r.codes)
    assert torch.all((r.term_signs != 0).sum(-1) <= k)


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 3), max_shift=st.integers(0, 4),
       xs=st.lists(st.floats(-40, 40, allow_nan=False), min_size=1, max_size=30))
def test_nearest_matches_brute_force(k: int, max_shift: int, xs: list[float]) -> None:
    grid = brute_khot_set(k, max_shift)
    x = torch.tensor(xs, dtype=torch.float64)
    r = khot_quantize(x, k, max_shift=max_shift, per_channel=False, scale_exp=0)
    for v, q in zip(xs, r.codes.tolist()):
        assert q in grid
        best = min(abs(v - g) for g in grid)
        assert abs(v - q) == best, (v, q, best)


def test_scale_search_never_worse_than_absmax_fit() -> None:
    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(1)) * torch.logspace(-2, 1, 32).unsqueeze(1)
    r = khot_quantize(w, 2, max_shift=6)
    r0 = khot_quantize(w, 2, max_shift=6, search=0)
    assert ((r.values - w) ** 2).sum() <= ((r0.values - w) ** 2).sum()
    assert (r.values - w).abs().max() < w.abs().max()  # not degenerate


def test_khot_fixed_format() -> None:
    fmt = FixedFormat(6, 2, True, k_hot=2)  # codes in [-32, 31], value = code / 16
    grid = [g for g in brute_khot_set(2, 6) if -32 <= g <= 31]
    x = torch.linspace(-3, 3, 301, dtype=torch.float64)
    codes = khot_fixed_codes(x, fmt)
    for v, c in zip(x.tolist(), codes.tolist()):
        assert c in grid
        assert abs(v * 16 - c) == min(abs(v * 16 - g) for g in grid)
    assert torch.equal(khot_fixed(x, fmt), codes.to(torch.float64) / 16)
    with pytest.raises(ValueError):
        khot_fixed_codes(x, FixedFormat(6, 2))


def test_naf_rejects_too_many_terms() -> None:
    with pytest.raises(ValueError):
        naf_terms(torch.tensor([0b10101]), 2)
    s, sh = naf_terms(torch.tensor([7, -7, 0, 12]), 2)  # NAF: 7 = 8 - 1, 12 = 16 - 4
    assert s.tolist() == [[1, -1], [-1, 1], [0, 0], [1, -1]]
    assert sh.tolist() == [[3, 0], [3, 0], [0, 0], [4, 2]]


# ---- K-hot fixed-point datapath (hwq.hw.fixed_datapath with khot, hwq.hw.shift_add) ----------------
import json  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from pathlib import Path  # noqa: E402

from amaranth import Module  # noqa: E402
from amaranth.lib import wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402


@pytest.mark.parametrize("width,signed,bits", [(8, True, 3), (8, False, 4), (4, True, 2), (5, True, 3), (2, True, 1)])
def test_term_shift_bits_hold_every_naf_shift(width: int, signed: bool, bits: int) -> None:
    """A term's shift is exactly wide enough for the largest NAF shift of any code of the format."""
    from hwq.hw.fixed_datapath import FixedDatapathConfig

    fmt = FixedFormat(width, 1, signed)
    assert FixedDatapathConfig().term_shift_bits(fmt) == bits
    codes = torch.arange(fmt.min_code, fmt.max_code + 1)
    _, shifts = naf_terms(codes, width)
    assert int(shifts.max()).bit_length() == bits


def _khot_config(lanes: int):
    from hwq.hw.presets import fixed_config_for
    from hwq.spec import load_spec

    return fixed_config_for(load_spec("fpga_zu"), lanes=lanes, khot=2)


class _KhotProduct(wiring.Component):
    """Combinational ``y = x * w`` with ``w`` as K terms, built by hwq.hw.shift_add."""

    def __init__(self, x_bits: int, shift_bits: int, k: int):
        from amaranth import signed
        from amaranth.lib import data

        from hwq.hw.common import term_layout

        self.width = x_bits + (1 << shift_bits) + k + 1
        super().__init__({"x": In(signed(x_bits)), "w": In(data.ArrayLayout(term_layout(shift_bits), k)),
                          "y": Out(signed(self.width))})

    def elaborate(self, platform):
        from hwq.hw.shift_add import adder_tree, khot_terms

        m = Module()
        m.d.comb += self.y.eq(adder_tree(khot_terms(m, self.x, self.w, "x")))
        return m


@pytest.mark.parametrize("x_bits", [8, 24])
def test_shift_add_product_is_exact(x_bits: int) -> None:
    """hwq.hw.shift_add (one's-complement terms + carry bits + adder tree) equals x * w exactly for the
    extreme activations (most negative, most positive, -1, 0) against every 2-hot 8-bit code, and for
    random activations against random codes (the 8-bit lanes and the 24-bit BN scaling of the datapath)."""
    from amaranth.sim import Simulator

    from hwq.hw.stimulus import khot_term_values

    k = 2
    codes = [c for c in brute_khot_set(k, 7) if -128 <= c <= 127]
    lo, hi = -(1 << (x_bits - 1)), (1 << (x_bits - 1)) - 1
    rng = torch.Generator().manual_seed(x_bits)
    pairs = [(x, w) for x in (lo, hi, -1, 0, 1) for w in codes]
    xs = torch.randint(lo, hi + 1, (600,), generator=rng).tolist()
    ws = torch.randint(0, len(codes), (600,), generator=rng).tolist()
    pairs += [(x, codes[i]) for x, i in zip(xs, ws)]
    dut = _KhotProduct(x_bits, 3, k)
    terms = {w: khot_term_values(w, k) for w in codes}
    bad: list[tuple[int, int, int]] = []

    async def bench(ctx):
        for x, w in pairs:
            ctx.set(dut.x, x)
            ctx.set(dut.w, terms[w])
            y = ctx.get(dut.y)
            if y != x * w:
                bad.append((x, w, y))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, f"{len(bad)} wrong products, first x={bad[0][0]} w={bad[0][1]}: got {bad[0][2]}"


class _Harness(wiring.Component):
    """The datapath with its ports prefixed ``fixed__`` (what sim/tb_fixed.py drives)."""

    def __init__(self, block):
        self._block = block
        super().__init__({"fixed": Out(block.signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fixed = self._block
        wiring.connect(m, wiring.flipped(self.fixed), self._block)
        return m


@pytest.mark.hw
@pytest.mark.parametrize("simulator", ["icarus"])
def test_khot_datapath_cosim(simulator: str, tmp_path: Path) -> None:
    """The generated Verilog of the fpga_zu K-hot datapath (4 lanes, as in rtl/fpga_zu) under
    sim/tb_fixed.py with output back-pressure, bit-exact with the ap_fixed golden codes."""
    from hwq.cosim import run_cocotb
    from hwq.hw.fixed_datapath import FixedDatapath
    from hwq.hw.generate import to_verilog
    from hwq.hw.stimulus import fixed_channels, khot_term_values

    cfg = _khot_config(4)
    dut = FixedDatapath(cfg)
    chans = fixed_channels(cfg, beats=3, n_random=40, seed=77)

    def pack(layout, value) -> str:
        return str(layout.const(value).as_value().value)

    def port(shape, value) -> str:
        return pack(shape, value) if hasattr(shape, "const") else str(int(value) & ((1 << shape.width) - 1))

    for ch in chans:
        ch["beats"] = [pack(dut.beat, {"x": ch["x"][b], "w": khot_term_values(ch["w"][b], cfg.khot),
                                       "last": int(b == len(ch["x"]) - 1)}) for b in range(len(ch["x"]))]
        ch["bn_scale_port"] = port(dut.bn_scale.shape(), khot_term_values(ch["bn_scale"], cfg.khot))
        ch["bn_shift_port"] = port(dut.bn_shift.shape(), ch["bn_shift"])
        ch["residual_port"] = port(dut.residual.shape(), ch["residual"])
    stim = tmp_path / "stim_fixed.json"
    stim.write_text(json.dumps({"prefix": "fixed__", "out_bits": cfg.out_fmt.width, "out_signed": cfg.out_fmt.signed,
                                "has_residual": True, "channels": chans}))
    src = tmp_path / "blocks.v"
    src.write_text(to_verilog(_Harness(dut), "blocks"))
    results = run_cocotb(simulator, [src], "blocks", "tb_fixed", tmp_path / "build",
                         extra_env={"HWQ_STIM_FIXED": str(stim)})
    cases = list(ET.parse(results).iter("testcase"))
    assert [c.get("name") for c in cases] == ["fixed_datapath_exact"]
    assert not any(c.find("failure") is not None or c.find("error") is not None for c in cases)
