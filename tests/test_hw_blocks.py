"""Amaranth-simulator unit tests of every hardware block (fast; the cocotb runs of the generated
Verilog on Icarus and Verilator are in tests/test_hw_cosim.py). Expected values come from
hwq.golden through hwq.hw.stimulus."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwq.datatypes import DATATYPES, MIXTURES, cycles_per_weight
from hwq.hw.array import PEArray
from hwq.hw.array_driver import expected_cycles, expected_psum_accesses, unpack_outputs
from hwq.hw.config import ArrayConfig
from hwq.hw.decoder import TermDecoder, ValueDecoder
from hwq.hw.dequant import BitSerialDequant
from hwq.hw.pe import BitSerialPE
from hwq.hw.pe_parallel import BitParallelPE
from hwq.hw.stimulus import dequant_groups, pe_groups, random_layer


def _run(dut, bench, clocked: bool = True) -> None:
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_term_decoder_matches_table_for_every_code() -> None:
    members = list(MIXTURES["bitmod4"].members) + ["int4", "fp3"]
    dut = TermDecoder(members)
    shift_terms = []

    async def bench(ctx):
        for mi, name in enumerate(members):
            for code, row in enumerate(DATATYPES[name].term_slot_table()):
                ctx.set(dut.member, mi)
                ctx.set(dut.code, code)
                got = ctx.get(dut.terms)
                for s in range(dut.geometry["slots"]):
                    t = row[s] if s < len(row) else None
                    want = (0, 0, 0) if t is None else (1, int(t[0]), t[1])
                    have = (got[s].nonzero, got[s].neg, got[s].shift)
                    assert have == want, f"{name} code {code} slot {s}: expected {want}, got {have}"
                shift_terms.append(code)

    _run(dut, bench, clocked=False)
    assert len(shift_terms) == sum(1 << DATATYPES[n].bits for n in members)


def test_value_decoder_matches_table() -> None:
    members = ["int8", "fp4", "flint4"]
    dut = ValueDecoder(members)

    async def bench(ctx):
        for mi, name in enumerate(members):
            for code, v in enumerate(DATATYPES[name].decode):
                ctx.set(dut.member, mi)
                ctx.set(dut.code, code)
                assert ctx.get(dut.value) == v, f"{name} code {code}: expected {v}, got {ctx.get(dut.value)}"

    _run(dut, bench, clocked=False)


async def _feed_pe(ctx, dut, groups, beat_of, cycles_of=None):
    """Send each group's beats; return (psums, cycles per beat)."""
    got, per_beat = [], []
    ctx.set(dut.out.ready, 1)
    for grp in groups:
        n = len(grp["x"])
        for b in range(n):
            ctx.set(dut.inp.payload, beat_of(grp, b, b == n - 1))
            ctx.set(dut.inp.valid, 1)
            cycles = 0
            while True:
                cycles += 1
                _, _, ready = await ctx.tick().sample(dut.inp.ready)
                if ready:
                    break
            per_beat.append((grp["member"], cycles))
        ctx.set(dut.inp.valid, 0)
        assert ctx.get(dut.out.valid)
        got.append(ctx.get(dut.out.payload))
    return got, per_beat


@pytest.mark.parametrize("bits_per_cycle", [2, 4])
def test_bit_serial_pe_exact_and_cycles(bits_per_cycle: int) -> None:
    members = ["fp4_ea_neg", "int8", "uint4", "fp3_er_pos"]
    dut = BitSerialPE(members, lanes=4, act_bits=8, bits_per_cycle=bits_per_cycle)
    groups = pe_groups(members, lanes=4, act_bits=8, beats=4, seed=3, random_groups=1)
    result = {}

    async def bench(ctx):
        result["got"], result["cycles"] = await _feed_pe(
            ctx, dut, groups,
            lambda g, b, last: {"x": g["x"][b], "codes": g["codes"][b], "member": g["member"], "last": int(last)})

    _run(dut, bench)
    for i, (grp, got) in enumerate(zip(groups, result["got"])):
        assert got == grp["expected"], f"group {i} ({members[grp['member']]}): expected {grp['expected']}, got {got}"
    for mi, cycles in result["cycles"]:
        assert cycles == cycles_per_weight(DATATYPES[members[mi]].term_slots, bits_per_cycle)


def test_bit_parallel_pe_exact() -> None:
    dut = BitParallelPE(lanes=4, act_bits=8, w_bits=8)
    groups = pe_groups(["int8"], lanes=4, act_bits=8, beats=8, seed=5, random_groups=3)
    result = {}

    async def bench(ctx):
        result["got"], result["cycles"] = await _feed_pe(
            ctx, dut, groups,
            lambda g, b, last: {"x": g["x"][b], "w": [c - 256 if c >= 128 else c for c in g["codes"][b]],
                                "last": int(last)})

    _run(dut, bench)
    assert [g["expected"] for g in groups] == result["got"]
    assert all(c == 1 for _, c in result["cycles"])


@pytest.mark.parametrize("digits", [1, 3])
def test_bit_serial_dequant_exact(digits: int) -> None:
    dut = BitSerialDequant(psum_bits=16, scale_bits=8, acc_bits=40, digits_per_cycle=digits)
    seqs = dequant_groups(psum_bits=16, scale_bits=8, n_outputs=8, max_groups=4, seed=7)
    got = []

    async def bench(ctx):
        ctx.set(dut.out.ready, 1)
        for seq in seqs:
            for i, (p, s) in enumerate(zip(seq["psums"], seq["scales"])):
                ctx.set(dut.inp.payload, {"psum": p, "scale": s, "last": int(i == len(seq["psums"]) - 1)})
                ctx.set(dut.inp.valid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(dut.inp.ready)
                    if ready:
                        break
            ctx.set(dut.inp.valid, 0)
            while not ctx.get(dut.out.valid):
                await ctx.tick()
            got.append(ctx.get(dut.out.payload))
            await ctx.tick()

    _run(dut, bench)
    for i, (seq, g) in enumerate(zip(seqs, got)):
        assert g == seq["expected"], f"sequence {i} psums={seq['psums']} scales={seq['scales']}: expected {seq['expected']}, got {g}"


async def run_array_amaranth(ctx, dut, image, ready_pattern=None):
    """Load buffers, start, collect outputs; return (out words, cycles start edge -> last transfer,
    (psum_reads, psum_writes) at the end of the run)."""
    for wd in image.w_words:
        ctx.set(dut.w_in.payload.as_value(), wd)
        ctx.set(dut.w_in.valid, 1)
        await ctx.tick()
    ctx.set(dut.w_in.valid, 0)
    for xd in image.x_words:
        ctx.set(dut.x_in.payload.as_value(), xd)
        ctx.set(dut.x_in.valid, 1)
        await ctx.tick()
    ctx.set(dut.x_in.valid, 0)
    ctx.set(dut.cfg, {"m": image.m, "k_tiles": image.k_tiles, "n_tiles": image.n_tiles, "fmt": image.fmt,
                      "m_tile": image.m_tile})
    ctx.set(dut.start, 1)
    ctx.set(dut.out.ready, 1 if ready_pattern is None else ready_pattern(0))
    await ctx.tick()
    ctx.set(dut.start, 0)
    edge, words, last = 0, [], None
    while True:
        _, _, valid, ready, payload, busy = await ctx.tick().sample(
            dut.out.valid, dut.out.ready, dut.out.payload.as_value(), dut.busy)
        edge += 1
        if valid and ready:
            words.append(payload)
            last = edge
        if not busy:
            return words, last, (ctx.get(dut.psum_reads), ctx.get(dut.psum_writes))
        if ready_pattern is not None:
            ctx.set(dut.out.ready, ready_pattern(edge))


@pytest.mark.parametrize("mode", ["bit_serial", "bit_parallel"])
def test_array_tiled_matmul_exact_and_timed(mode: str) -> None:
    cfg = ArrayConfig(rows=2, cols=3, lanes=4, mode=mode, bits_per_cycle=2 if mode == "bit_serial" else None,
                      group_size=4, formats=(("bitmod", 4), ("int", 8)), x_depth=32, w_depth=32, out_depth=8)
    dut = PEArray(cfg)
    cases = [random_layer(cfg, 3, 20, 5, 0, seed=11), random_layer(cfg, 2, 12, 3, 1, seed=12)]
    stalled = random_layer(cfg, 3, 8, 4, 0, seed=13)
    res = []

    async def bench(ctx):
        for image, _ in cases:
            res.append(await run_array_amaranth(ctx, dut, image))
        rng = np.random.default_rng(0)
        res.append(await run_array_amaranth(ctx, dut, stalled[0], lambda e: int(rng.random() < 0.5)))

    _run(dut, bench)
    for (image, expected), (words, cycles, _) in zip(cases + [stalled], res):
        y = unpack_outputs(cfg, image, words)
        bad = np.argwhere(y != expected)
        assert bad.size == 0, f"first mismatch at {tuple(bad[0])}: expected {expected[tuple(bad[0])]}, got {y[tuple(bad[0])]}"
    for (image, _), (_, cycles, psums) in zip(cases, res):
        assert cycles == expected_cycles(cfg, image)
        assert psums == expected_psum_accesses(cfg, image)


@pytest.mark.parametrize("elide", [False, True])
def test_array_m_tiles_and_psum_elision(elide: bool) -> None:
    """Several M tiles (ragged last one; M > out_depth) and partial-sum elision in Amaranth's simulator:
    bit-exact, cycles = hwq.timing.layer_compute_cycles(m_tile=...), o_mem reads/writes =
    hwq.timing.psum_row_accesses; a one-K-tile layer with elision never touches o_mem; a stalled
    multi-M-tile run still matches."""
    cfg = ArrayConfig(rows=2, cols=2, lanes=4, group_size=4, formats=(("bitmod", 4), ("int", 6)),
                      x_depth=48, w_depth=32, out_depth=4, psum_elide=elide)
    dut = PEArray(cfg)
    cases = [random_layer(cfg, 7, 20, 3, 0, seed=61, m_tile=3),   # 3 M tiles (3, 3, 1), 3 K tiles, 2 N tiles
             random_layer(cfg, 9, 12, 4, 1, seed=62, m_tile=4),   # INT6: 3 M tiles (4, 4, 1)
             random_layer(cfg, 5, 8, 2, 0, seed=63, m_tile=2),    # one K tile
             random_layer(cfg, 4, 16, 2, 0, seed=64)]             # one M tile (m_tile = M)
    stalled = random_layer(cfg, 6, 16, 3, 0, seed=65, m_tile=4)
    res = []

    async def bench(ctx):
        for image, _ in cases:
            res.append(await run_array_amaranth(ctx, dut, image))
        rng = np.random.default_rng(1)
        res.append(await run_array_amaranth(ctx, dut, stalled[0], lambda e: int(rng.random() < 0.5)))

    _run(dut, bench)
    for i, ((image, expected), (words, cycles, psums)) in enumerate(zip(cases + [stalled], res)):
        y = unpack_outputs(cfg, image, words)
        bad = np.argwhere(y != expected)
        assert bad.size == 0, f"case {i}: first mismatch at {tuple(bad[0])}: expected {expected[tuple(bad[0])]}, got {y[tuple(bad[0])]}"
        assert psums == expected_psum_accesses(cfg, image), (i, psums)
        if i < len(cases):
            assert cycles == expected_cycles(cfg, image), (i, cycles, expected_cycles(cfg, image))
    assert cases[0][0].m_tiles == 3 and cases[0][0].k_tiles == 3
    assert res[2][2] == ((0, 0) if elide else (5, 5))  # one K tile
    # more M tiles cost exactly one LOAD + drain per extra (n, m, k) step
    from hwq.timing import tile_compute_cycles
    img = cases[0][0]
    assert res[0][1] == img.k_tiles * img.n_tiles * (2 * tile_compute_cycles(3, 2, 2, 2) + tile_compute_cycles(1, 2, 2, 2))


# ---- FPGA fixed-point datapath --------------------------------------------------------------
import itertools  # noqa: E402

import torch  # noqa: E402

from hwq.datatypes import OVERFLOW_MODES, ROUNDING_MODES, FixedFormat  # noqa: E402
from hwq.hw.fixed_datapath import FixedDatapath, FixedDatapathConfig, Requantizer  # noqa: E402
from hwq.hw.stimulus import fixed_channels, khot_term_values  # noqa: E402
from hwq.quant.fixed import fixed_point_codes  # noqa: E402

_MODES = [(r, o, s) for r, o, s in itertools.product(ROUNDING_MODES, OVERFLOW_MODES, (True, False))
          if not (o == "WRAP_SM" and not s)]


def test_requantizer_every_rounding_and_overflow_mode() -> None:
    """All 7 x 5 ap_fixed modes (signed and unsigned) on every 9-bit input, dropping 4 bits, and one
    widening cast, against hwq.quant.fixed.fixed_point_codes."""
    ys = list(range(-256, 256))
    for rounding, overflow, sgn in _MODES:
        for in_frac, fmt in ((5, FixedFormat(5, 3, sgn, rounding, overflow)),
                             (1, FixedFormat(6, 4, sgn, rounding, overflow))):
            dut = Requantizer(9, in_frac, fmt)
            want = fixed_point_codes(torch.tensor(ys, dtype=torch.float64) * 2.0 ** -in_frac, fmt.width,
                                     fmt.int_bits, signed=sgn, rounding=rounding, overflow=overflow).tolist()
            got = []

            async def bench(ctx, dut=dut, got=got):
                for y in ys:
                    ctx.set(dut.y, y)
                    got.append(ctx.get(dut.code))

            _run(dut, bench, clocked=False)
            bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
            assert not bad, (f"{fmt.name} from frac {in_frac}: first mismatch y={ys[bad[0]]}: "
                             f"expected {want[bad[0]]}, got {got[bad[0]]}")


async def drive_fixed(ctx, dut, cfg, chans):
    """Feed every channel; return the output codes."""
    got = []
    ctx.set(dut.out.ready, 1)
    for ch in chans:
        n = len(ch["x"])
        for b in range(n):
            w = khot_term_values(ch["w"][b], cfg.khot) if cfg.khot else ch["w"][b]
            ctx.set(dut.inp.payload, {"x": ch["x"][b], "w": w, "last": int(b == n - 1)})
            ctx.set(dut.inp.valid, 1)
            ctx.set(dut.bn_scale, khot_term_values(ch["bn_scale"], cfg.khot) if cfg.khot else ch["bn_scale"])
            ctx.set(dut.bn_shift, ch["bn_shift"])
            if cfg.res_fmt is not None:
                ctx.set(dut.residual, ch["residual"])
            await ctx.tick()
        ctx.set(dut.inp.valid, 0)
        await ctx.tick()
        assert ctx.get(dut.out.valid)
        got.append(ctx.get(dut.out.payload))
    return got


@pytest.mark.parametrize("khot", [None, 2])
def test_fixed_datapath_exact(khot) -> None:
    cfg = FixedDatapathConfig(lanes=2, khot=khot)
    dut = FixedDatapath(cfg)
    chans = fixed_channels(cfg, beats=3, n_random=40, seed=9)
    got = []

    async def bench(ctx):
        got.extend(await drive_fixed(ctx, dut, cfg, chans))

    _run(dut, bench)
    for i, (ch, g) in enumerate(zip(chans, got)):
        assert g == ch["expected"], f"channel {i} {ch}: expected {ch['expected']}, got {g}"


def test_array_config_reads_dataflow_and_accumulators(tmp_path) -> None:
    """array_config_from_spec: psum_elide from dataflow.partial_sums; out_depth = accumulators.depth
    in accumulate_in_array (the spec's first mode, or asked for); a spec without the fields keeps
    the old array (read-modify-write, default depth)."""
    import yaml

    from hwq.hw.config import array_config_from_spec
    from hwq.spec import load_spec

    old = array_config_from_spec(load_spec("bitmod"))
    assert not old.psum_elide and old.out_depth == ArrayConfig(rows=1, cols=1, lanes=1).out_depth
    d = load_spec("bitmod").to_dict()
    d["name"] = "acc"
    d["dataflow"] = {"modes": ["accumulate_in_array", "output_buffer"], "partial_sums": "elide_first_last"}
    d["accumulators"] = {"depth": 12, "access_bits": 32, "read_energy_pj": 1.0, "write_energy_pj": 1.0}
    (tmp_path / "acc.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    spec = load_spec(tmp_path / "acc.yaml")
    cfg = array_config_from_spec(spec)
    assert cfg.psum_elide and cfg.out_depth == 12
    assert array_config_from_spec(spec, dataflow="output_buffer").out_depth == old.out_depth
    assert array_config_from_spec(spec, out_depth=5).out_depth == 5
    with pytest.raises(ValueError, match="accumulate_in_array"):
        array_config_from_spec(load_spec("bitmod"), dataflow="accumulate_in_array")
