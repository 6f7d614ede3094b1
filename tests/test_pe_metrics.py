"""The bit-serial PE's radix-4 digits, and its LUT·ns/MAC against the committed measurement
(``reports/pe_metrics.json``, written by ``python -m hwq.hw.pe_metrics --write``)."""

from __future__ import annotations

import statistics

import pytest
from amaranth.sim import Simulator

from hwq.datatypes import DATATYPES, cycles_per_weight
from hwq.errors import UsageError
from hwq.hw import pe_metrics as pm
from hwq.hw.digits import MAX_FINE, DigitDecoder, digit_geometry, digit_table, digit_value
from hwq.hw.pe import BitSerialPE
from hwq.hw.stimulus import pe_groups


def test_every_datatype_has_exact_radix4_digits_in_its_slots() -> None:
    for name, dt in DATATYPES.items():
        table = digit_table(name)
        assert len(table) == 1 << dt.bits
        for code, row in enumerate(table):
            assert len(row) == dt.term_slots, f"{name} code {code}: {len(row)} slots != {dt.term_slots}"
            assert digit_value(row) == dt.decode[code], f"{name} code {code}: digits {row} != {dt.decode[code]}"
            assert all(d is None or 0 <= d[1] <= MAX_FINE for d in row)


def test_digit_decoder_rom_matches_digit_table() -> None:
    members = ["fp4_er_pos", "fp3_ea_neg", "int8", "uint4", "flint4"]
    dut = DigitDecoder(members)
    g = digit_geometry(members)
    zero = (1 << g["fine_bits"]) - 1
    seen = []

    async def bench(ctx):
        for mi, name in enumerate(members):
            for code, row in enumerate(digit_table(name)):
                ctx.set(dut.member, mi)
                ctx.set(dut.code, code)
                got = ctx.get(dut.terms)
                for s in range(g["slots"]):
                    d = row[s] if s < len(row) else None
                    want = (0, zero) if d is None else (int(d[0]), d[1])
                    assert (got[s].neg, got[s].fine) == want, f"{name} code {code} slot {s}"
                seen.append(code)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == sum(1 << DATATYPES[n].bits for n in members)


@pytest.mark.parametrize("members,bits_per_cycle", [(["int6", "fp4_ea_pos"], 4), (["int8", "uint4"], 6)])
def test_bit_serial_pe_pads_slots_with_zero_digits(members, bits_per_cycle) -> None:
    """Slots past the stored ones (3 slots at 2 per cycle, 4 at 3 per cycle) must add nothing;
    sums equal hwq.golden (via hwq.hw.stimulus) and cycles equal cycles_per_weight."""
    dut = BitSerialPE(members, lanes=2, act_bits=8, bits_per_cycle=bits_per_cycle, acc_bits=24)
    groups = pe_groups(members, lanes=2, act_bits=8, beats=3, seed=7, random_groups=1)
    got, cycles = [], []

    async def bench(ctx):
        ctx.set(dut.out.ready, 1)
        for grp in groups:
            for b in range(len(grp["x"])):
                ctx.set(dut.inp.payload, {"x": grp["x"][b], "codes": grp["codes"][b], "member": grp["member"],
                                          "last": int(b == len(grp["x"]) - 1)})
                ctx.set(dut.inp.valid, 1)
                n = 0
                while True:
                    n += 1
                    _, _, ready = await ctx.tick().sample(dut.inp.ready)
                    if ready:
                        break
                cycles.append((grp["member"], n))
            ctx.set(dut.inp.valid, 0)
            got.append(ctx.get(dut.out.payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [g["expected"] for g in groups]
    for mi, n in cycles:
        assert n == cycles_per_weight(DATATYPES[members[mi]].term_slots, bits_per_cycle)


def test_unknown_device_is_a_usage_error(tmp_path) -> None:
    case = pm.pe_cases()[0]
    with pytest.raises(UsageError, match="unknown iCE40 device"):
        pm.routed_fmax(case, "ecp5", tmp_path)


def test_committed_results_are_current_for_the_pes_verilog() -> None:
    res = pm.load_results()
    cases = pm.pe_cases()
    assert sorted(res["pes"]) == sorted(c.name for c in cases)
    for c in cases:
        assert res["pes"][c.name]["verilog_sha256"] == c.verilog_sha256, \
            f"{c.name}: Verilog changed since reports/pe_metrics.json; run `python -m hwq.hw.pe_metrics --write`"
        assert res["pes"][c.name]["formats"].keys() == c.intervals.keys()


def test_committed_metric_is_consistent_and_renders() -> None:
    res = pm.load_results()
    for pe in res["pes"].values():
        for dev, r in pe["routed"].items():
            assert len(r["fmax_mhz"]) == len(res["seeds"])
            assert r["t_crit_ns"] == pytest.approx(1000 / statistics.median(r["fmax_mhz"]), abs=1e-3)
        for row in pe["formats"].values():
            for dev, r in pe["routed"].items():
                want = pe["luts"]["ice40"] * r["t_crit_ns"] * row["cycles_per_weight"] / pe["lanes"]
                assert row[f"lut_ns_per_mac_{dev}"] == pytest.approx(want, abs=0.1)
    text = "\n".join(pm.markdown_lines(res))
    assert "## Bit-serial PE against its baselines" in text and "bitmod4" in text


def test_bit_serial_beats_both_baselines_on_xilinx_lut_cycles() -> None:
    """The redesign's claim on Xilinx LUTs (committed numbers): bitmod3/bitmod4 below INT8 and INT4xINT8."""
    pes = pm.load_results()["pes"]
    best = min(pes["int8_lut"]["formats"]["int8"]["lut_cycles_per_mac_xilinx"],
               pes["int4x8_lut"]["formats"]["int4"]["lut_cycles_per_mac_xilinx"])
    for fmt in ("bitmod3", "bitmod4"):
        assert pes["bit_serial"]["formats"][fmt]["lut_cycles_per_mac_xilinx"] < best


@pytest.mark.slow
def test_bit_serial_pe_luts_do_not_regress(tmp_path) -> None:
    """Re-synthesise the bit-serial PE: its LUTs must not exceed the committed counts."""
    res = pm.load_results()["pes"]["bit_serial"]
    case = next(c for c in pm.pe_cases() if c.name == "bit_serial")
    for target in pm.TARGETS:
        luts = pm.synth_luts(case, target, tmp_path)
        assert luts <= res["luts"][target], f"{target}: {luts} LUTs > committed {res['luts'][target]}"


@pytest.mark.slow
def test_bit_serial_pe_routed_delay_does_not_regress(tmp_path) -> None:
    """Route the bit-serial PE on HX8K with the first seed: its Fmax must reach the committed one
    for that seed (nextpnr is deterministic for a netlist and seed; 2 % slack)."""
    res = pm.load_results()
    case = next(c for c in pm.pe_cases() if c.name == "bit_serial")
    (fmax,) = pm.routed_fmax(case, "hx8k", tmp_path, seeds=res["seeds"][:1])
    committed = res["pes"]["bit_serial"]["routed"]["hx8k"]["fmax_mhz"][0]
    assert fmax >= 0.98 * committed, f"routed Fmax {fmax} MHz < committed {committed} MHz"
