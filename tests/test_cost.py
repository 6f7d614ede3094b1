"""Analytic cost model (hwq.cost): every term checked by hand on a tiny spec, plus properties."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwq.cost import MAPPINGS, Choice, evaluate, m_tiled_layer_cycles, plan_choices
from hwq.errors import UsageError
from hwq.spec import load_spec, parse_spec
from hwq.timing import layer_compute_cycles, tile_compute_cycles
from hwq.workload import Layer, Workload


def tiny_spec(**over) -> "object":
    """2x2 PEs x 2 lanes, 2 bits/cycle, round numbers everywhere (see the hand computations)."""
    d = {
        "name": "tiny", "family": "asic", "clock_mhz": 1000,
        "array": {"rows": 2, "cols": 2, "lanes": 2},
        "arithmetic": {"mode": "bit_serial", "bits_per_cycle": 2, "act_bits": [4, 8], "accumulator_bits": 32,
                       "group_size": 8, "weight_formats": [{"format": "int", "bits": [2, 3, 4, 5, 6, 7, 8]}]},
        "compute": {"pe_cycle_energy_pj": 1.0, "reference_act_bits": 8, "pnr_factor": 1.0},
        "buffers": {"weight": {"capacity_kib": 0.02, "access_bits": 8, "read_energy_pj": 1, "write_energy_pj": 2},
                    "activation": {"capacity_kib": 0.01, "access_bits": 8, "read_energy_pj": 3, "write_energy_pj": 4},
                    "output": {"capacity_kib": 1, "access_bits": 8, "read_energy_pj": 5, "write_energy_pj": 6}},
        "dram": {"bandwidth_gb_per_s": 1.0, "energy_pj_per_bit": 10.0},   # 8 bits per cycle at 1 GHz
        "static_power_mw": 1.0,
    }
    d.update(over)
    return parse_spec(d)


def linear(name, m, k, n, **kw) -> Layer:
    base = dict(groups=1, batch=1, macs=m * k * n, weights=k * n, in_elems=m * k, out_elems=m * n,
                stationary_elems=k * n)
    base.update(kw)
    return Layer(name, "linear", m, k, n, **base)


def chain(*layers: Layer) -> Workload:
    """Layers run one after another, each reading the previous one's output (the first the model input)."""
    names = [l.name for l in layers]
    edges = [("input", names[0])] + list(zip(names, names[1:]))
    return Workload(list(layers), [], edges, order=names, input_elems=layers[0].in_elems)


def _buffers(act_kib: float, out_kib: float = 1.0) -> dict:
    return {"weight": {"capacity_kib": 0.02, "access_bits": 8, "read_energy_pj": 1, "write_energy_pj": 2},
            "activation": {"capacity_kib": act_kib, "access_bits": 8, "read_energy_pj": 3, "write_energy_pj": 4},
            "output": {"capacity_kib": out_kib, "access_bits": 8, "read_energy_pj": 5, "write_energy_pj": 6}}


def _buffers3(weight_kib: float, act_kib: float, out_kib: float = 1.0) -> dict:
    d = _buffers(act_kib, out_kib)
    d["weight"]["capacity_kib"] = weight_kib
    return d


def test_every_term_by_hand_n_outer():
    """Mapping 0 (the RTL's whole-layer loop), forced: every term by hand."""
    # activation half-buffer = 0.01 KiB * 8192 / 2 = 40.96 bits: input and output go through DRAM
    spec = tiny_spec(buffers=_buffers(0.01))
    wl = Workload([linear("fc", 3, 5, 3)], [], [])
    t = evaluate(wl, spec, [Choice("int", 4, 8)], mappings=("n_outer",))
    assert t.mapping[0, 0] == MAPPINGS.index("n_outer") and t.m_tiles[0, 0] == 1
    # compute cycles: the RTL contract (hwq.timing), k_tiles = ceil(5/4) = 2, n_tiles = ceil(3/2) = 2
    cyc = layer_compute_cycles(3, 5, 3, rows=2, cols=2, lanes=2, term_slots=2, bits_per_cycle=2)
    assert t.compute_cycles[0, 0] == cyc == 4 * tile_compute_cycles(3, 2, 2, 2)
    # compute energy: active PE-cycles = ceil(5/2) * 3 * 3 * (2 cycles/weight) = 54, x 1 pJ x 8/8
    assert t.breakdown_pj["compute"][0, 0] == pytest.approx(54.0)
    # bits: W = 15 weights x (4 + 8/8 metadata) = 75 (once); I = 15 x 8 = 120 re-fetched for each of
    # the 2 N-tile passes = 240; O = 9 x 8 = 72 written once
    assert t.weight_bits[0, 0] == 75
    assert t.dram_bits[0, 0] == 75 + 240 + 72
    assert t.breakdown_pj["dram"][0, 0] == pytest.approx(387 * 10.0)
    assert t.dram_cycles[0, 0] == math.ceil(387 / 8)
    # weight buffer: 75 bits written and read, 8-bit accesses at 2 + 1 pJ
    assert t.breakdown_pj["weight_buffer"][0, 0] == pytest.approx(75 / 8 * 3)
    # activation buffer: reads 8 x 3 x 5 x 2 N-tiles = 240 bits at 3 pJ/8b; writes 240 + 72 at 4 pJ/8b
    assert t.breakdown_pj["activation_buffer"][0, 0] == pytest.approx(240 / 8 * 3 + 312 / 8 * 4)
    # output buffer: 32-bit psums x 3 x 3 x 2 k-tiles = 576 bits read and written (5 + 6 pJ per 8 bits)
    assert t.breakdown_pj["output_buffer"][0, 0] == pytest.approx(576 / 8 * 11)
    lat = max(cyc, 49)
    assert t.latency_cycles[0, 0] == lat
    # static: 1 mW x lat cycles / 1000 MHz = lat ns x 1 mW = lat pJ
    assert t.breakdown_pj["static"][0, 0] == pytest.approx(lat)
    assert t.energy_pj[0, 0] == pytest.approx(54 + 75 / 8 * 3 + 90 + 156 + 792 + 3870 + lat)
    assert t.totals([0])["latency_s"] == pytest.approx(lat / 1e9)


def test_every_term_by_hand_weights_resident_m_tiled():
    """Same layer and spec, free mapper: mapping 1 (weights resident, M tiled) is cheaper."""
    spec = tiny_spec(buffers=_buffers(0.01))
    t = evaluate(Workload([linear("fc", 3, 5, 3)], [], []), spec, [Choice("int", 4, 8)])
    assert t.mapping_names[t.mapping[0, 0]] == "m_tiled_weights_resident"
    # W = 75 bits <= 0.02 KiB = 163.84 bits (resident). The input comes from DRAM (a one-layer workload
    # reads the model input) and the output streams to DRAM, so all 81.92 activation-buffer bits are free:
    # an M tile may stage floor(81.92 * 3 / 120) = 2 input rows; partial sums allow floor(8192 / 64) = 128.
    assert t.m_tile_rows[0, 0] == 2 and t.m_tiles[0, 0] == 2
    # cycles: 2 M tiles (2 rows, then 1) x (2 K tiles x 2 N tiles): tile(2) = 2 + 3*2 + 4 = 12, tile(1) = 10
    assert tile_compute_cycles(1, 2, 2, 2) == 10 and tile_compute_cycles(2, 2, 2, 2) == 12
    assert t.compute_cycles[0, 0] == 4 * (12 + 10) == m_tiled_layer_cycles(3, 5, 3, 2, rows=2, cols=2, lanes=2,
                                                                           term_slots=2, bits_per_cycle=2)
    assert t.breakdown_pj["compute"][0, 0] == pytest.approx(54.0)          # mapping-independent
    # DRAM: weights once (75), input once (120, not per N pass), output once (72), no spill
    assert t.dram_bits[0, 0] == 75 + 120 + 72
    assert {k: v[0, 0] for k, v in t.dram_bits_by_operand.items()} == {"weights": 75, "inputs": 120,
                                                                       "outputs": 72, "psums": 0, "vector": 0}
    assert t.dram_cycles[0, 0] == math.ceil(267 / 8) == 34
    # weight buffer: written once (75 bits at 2 pJ/8b), read for each of the 2 M tiles (150 bits at 1 pJ/8b)
    assert t.breakdown_pj["weight_buffer"][0, 0] == pytest.approx(150 / 8 * 1 + 75 / 8 * 2)
    # activation buffer: reads 8 x 3 x 5 x 2 N-tiles = 240 bits; writes 120 (from DRAM) + 72 (output)
    assert t.breakdown_pj["activation_buffer"][0, 0] == pytest.approx(240 / 8 * 3 + 192 / 8 * 4)
    assert t.breakdown_pj["output_buffer"][0, 0] == pytest.approx(576 / 8 * 11)
    assert t.latency_cycles[0, 0] == 88 and t.breakdown_pj["static"][0, 0] == pytest.approx(88)
    assert t.breakdown_pj["dram"][0, 0] == pytest.approx(2670)
    assert t.energy_pj[0, 0] == pytest.approx(54 + 37.5 + 186 + 792 + 2670 + 88)


def test_every_term_by_hand_weights_refetched():
    """Weights larger than the weight buffer, input larger than the free activation buffer: mapping 2
    re-fetches the weights per M tile, which beats re-fetching the input per N tile (mapping 0)."""
    spec = tiny_spec(buffers=_buffers(0.01))
    wl = Workload([linear("fc", 3, 4, 10)], [], [])
    t = evaluate(wl, spec, [Choice("int", 4, 8)])
    # W = 40 x 5 = 200 bits > 163.84 (mapping 1 illegal); I = 3 x 4 x 8 = 96 > 81.92 free bits: m_t =
    # floor(81.92 x 3 / 96) = 2, 2 M tiles; k_tiles = 1 (no partial-sum limit), n_tiles = 5; O = 30 x 8 = 240
    assert t.mapping_names[t.mapping[0, 0]] == "m_tiled_weights_refetched" and t.m_tiles[0, 0] == 2
    assert t.compute_cycles[0, 0] == 5 * (tile_compute_cycles(2, 2, 2, 2) + tile_compute_cycles(1, 2, 2, 2)) == 110
    assert t.breakdown_pj["compute"][0, 0] == pytest.approx(2 * 10 * 3 * 2)  # ceil(4/2) x n x m x 2 cycles
    assert {k: v[0, 0] for k, v in t.dram_bits_by_operand.items()} == {"weights": 400, "inputs": 96,
                                                                       "outputs": 240, "psums": 0, "vector": 0}
    assert t.breakdown_pj["dram"][0, 0] == pytest.approx(736 * 10)
    assert t.dram_cycles[0, 0] == 92 and t.latency_cycles[0, 0] == 110
    assert t.breakdown_pj["weight_buffer"][0, 0] == pytest.approx(400 / 8 * 1 + 400 / 8 * 2)
    assert t.breakdown_pj["activation_buffer"][0, 0] == pytest.approx(480 / 8 * 3 + 336 / 8 * 4)
    assert t.breakdown_pj["output_buffer"][0, 0] == pytest.approx(960 / 8 * 11)
    assert t.energy_pj[0, 0] == pytest.approx(120 + 150 + 348 + 1320 + 7360 + 110)
    # mapping 0 on the same layer: input 96 x 5 N passes = 480, weights 200, output 240 -> 9200 pJ DRAM
    t0 = evaluate(wl, spec, [Choice("int", 4, 8)], mappings=("n_outer",))
    assert t0.dram_bits[0, 0] == 920
    assert t0.energy_pj[0, 0] == pytest.approx(120 + 200 / 8 * 3 + (480 / 8 * 3 + 720 / 8 * 4) + 1320 + 9200 + 115)
    assert t0.energy_pj[0, 0] > t.energy_pj[0, 0]


def test_resnet50_stem_keeps_partial_sums_on_chip():
    """ResNet-50's 7x7 stem (m = 12544) on the default preset: the [m, 32] block of 32-bit partial sums
    (12.8 Mbit) spills from the 512 KiB output buffer in mapping 0; the mapper tiles M instead."""
    spec = load_spec("bitmod")
    stem = Layer("conv1", "conv", 12544, 147, 64, 1, 1, 12544 * 147 * 64, 147 * 64, 3 * 224 * 224, 64 * 12544,
                 147 * 64, (7, 7), (2, 2))
    wl = Workload([stem], [], [])
    c = Choice("bitmod", 4, 8)
    t, t0 = evaluate(wl, spec, [c]), evaluate(wl, spec, [c], mappings=("n_outer",))
    assert t0.dram_bits_by_operand["psums"][0, 0] == 2 * 1 * 12544 * 64 * 32
    assert t.dram_bits_by_operand["psums"][0, 0] == 0
    assert t.mapping_names[t.mapping[0, 0]] == "m_tiled_weights_resident"
    # floor(512 KiB / (32 cols x 32 bits)) = 4096 rows per M tile -> 4 M tiles (the last 256 rows)
    assert (t.m_tile_rows[0, 0], t.m_tiles[0, 0]) == (4096, 4)
    assert t.compute_cycles[0, 0] == m_tiled_layer_cycles(12544, 147, 64, 4096, rows=32, cols=32, lanes=4,
                                                          term_slots=2, bits_per_cycle=2)
    assert t.compute_cycles[0, 0] == 2 * 2 * (3 * tile_compute_cycles(4096, 32, 2, 2) + tile_compute_cycles(256, 32, 2, 2))
    assert t.energy_pj[0, 0] < t0.energy_pj[0, 0]


def test_unknown_mapping_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown mapping"):
        evaluate(Workload([linear("fc", 2, 4, 2)], [], []), tiny_spec(), [Choice("int", 4, 8)], mappings=("zz",))


def test_resident_activations_and_partial_sum_spill():
    # 1 KiB activation buffer: fc's input (120 bits, made by pre) and output (72 bits, read by post) stay
    # on chip; only its weights move
    wl = chain(linear("pre", 3, 2, 5), linear("fc", 3, 5, 3), linear("post", 3, 3, 2))
    t = evaluate(wl, tiny_spec(buffers=_buffers(1.0)), [Choice("int", 4, 8)])
    assert t.dram_bits[1, 0] == 75 and t.residency_note(1, 0) == "on chip"
    assert t.breakdown_pj["activation_buffer"][1, 0] == pytest.approx(240 / 8 * 3 + 72 / 8 * 4)
    assert t.mapping_names[t.mapping[1, 0]] == "n_outer"   # one M tile: ties go to mapping 0
    # the model input is read from DRAM and the network output written to it
    assert t.dram_bits_by_operand["inputs"][0, 0] == 3 * 2 * 8 and t.dram_bits_by_operand["outputs"][2, 0] == 6 * 8
    # 0.01 KiB output buffer (81.92 bits) cannot hold the [3, 2] block of 32-bit partial sums (192 bits):
    # mapping 0 spills them (2 K tiles: out and back once, 2 x 1 x 3 x 3 x 32 = 576 bits) ...
    spec = tiny_spec(buffers=_buffers(1.0, 0.01))
    t = evaluate(wl, spec, [Choice("int", 4, 8)], mappings=("n_outer",))
    assert t.dram_bits[1, 0] == 75 + 576
    # ... the mapper runs floor(81.92 / 64) = 1-row M tiles with the weights resident: no spill
    t = evaluate(wl, spec, [Choice("int", 4, 8)])
    assert t.dram_bits[1, 0] == 75 and t.m_tiles[1, 0] == 3


def test_attention_product():
    spec = tiny_spec(buffers={"weight": {"capacity_kib": 1, "access_bits": 8, "read_energy_pj": 0,
                                         "write_energy_pj": 0},
                              "activation": {"capacity_kib": 1, "access_bits": 8, "read_energy_pj": 0,
                                             "write_energy_pj": 0},
                              "output": {"capacity_kib": 1, "access_bits": 8, "read_energy_pj": 0,
                                         "write_energy_pj": 0}})
    qk = Layer("attn.qk", "matmul", 4, 2, 4, 1, 3, 3 * 4 * 2 * 4, 0, 3 * 8, 3 * 16, 3 * 8,
               stationary_is_activation=True)
    wl = chain(linear("pre", 2, 4, 4), linear("fc", 2, 4, 2), qk, linear("post", 4, 4, 2))
    t = evaluate(wl, spec, [Choice("int", 2, 4), Choice("int", 8, 4), Choice("int", 2, 8)])
    t = dataclasses.replace(t)  # rows: pre, fc, qk, post
    # everything fits on chip: only the weights of fc come from DRAM (2-bit + 1 metadata bit each), and
    # the attention product's stationary operand (fc's output) is copied from the activation buffer
    assert t.dram_bits[1, 0] == 8 * 3 and t.dram_bits[2, 0] == 0
    # the attention product ignores the weight format, follows act_bits (int4 = 2 term slots)
    assert t.energy_pj[2, 0] == t.energy_pj[2, 1] < t.energy_pj[2, 2]
    assert t.weight_bits[2].tolist() == [0, 0, 0] and t.quantizable.tolist() == [True, True, False, True]
    assert t.compute_cycles[2, 0] == 3 * layer_compute_cycles(4, 2, 4, rows=2, cols=2, lanes=2, term_slots=2,
                                                              bits_per_cycle=2)


def test_grouped_conv_runs_each_group_separately():
    spec = tiny_spec(buffers=_buffers(1.0))
    dw = Layer("dw", "conv", 4, 9, 6, 6, 1, 4 * 9 * 6, 54, 6 * 16, 6 * 4, 54, (3, 3), (1, 1))
    t = evaluate(Workload([dw], [], []), spec, [Choice("int", 8, 8)])
    assert t.compute_cycles[0, 0] == 6 * layer_compute_cycles(4, 9, 1, rows=2, cols=2, lanes=2, term_slots=4,
                                                              bits_per_cycle=2)
    # active PE-cycles: ceil(9/2) x 6 outputs x 4 rows x 4 cycles/weight
    assert t.breakdown_pj["compute"][0, 0] == pytest.approx(5 * 6 * 4 * 4)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 300), k=st.integers(1, 700), n=st.integers(1, 300), act=st.booleans(),
       kib=st.tuples(*[st.sampled_from([0.02, 0.1, 1.0, 16.0, 256.0])] * 3))
def test_cost_never_decreases_with_more_bits(m, k, n, act, kib):
    spec = tiny_spec(arithmetic={"mode": "bit_serial", "bits_per_cycle": 2, "act_bits": [2, 3, 4, 5, 6, 7, 8],
                                 "group_size": 8, "weight_formats": [{"format": "int", "bits": list(range(2, 9))}]},
                     buffers=_buffers3(*kib))
    layer = Layer("l", "matmul" if act else "linear", m, k, n, 1, 1, m * k * n, 0 if act else k * n, m * k, m * n,
                  k * n, stationary_is_activation=act)
    choices = [Choice("int", w, a) for w in range(2, 9) for a in range(2, 9)]
    wl = Workload([layer], [], [])
    t = evaluate(wl, spec, choices)
    singles = [evaluate(wl, spec, choices, mappings=(name,)) for name in MAPPINGS[:3]]  # output_buffer
    # the mapper's choice is the least-energy legal mapping (mapping 0 is always legal)
    per = np.stack([s_.energy_pj[0] for s_ in singles])
    assert np.allclose(t.energy_pj[0], per.min(axis=0)) and np.isfinite(t.energy_pj).all()
    assert np.array_equal(t.energy_pj[0], per[t.mapping[0], np.arange(len(choices))])
    arrays = [t.energy_pj[0]] + [s_.latency_cycles[0] for s_ in singles] + [s_.energy_pj[0] for s_ in singles]
    for arr in arrays:
        arr = arr.reshape(7, 7)
        fin = np.isfinite(arr)
        for axis in (0, 1):   # more bits never cheaper; a mapping illegal at fewer bits stays illegal
            d = np.diff(np.where(fin, arr, 1e300), axis=axis)
            assert (d >= -1e-9 * np.abs(np.where(fin, arr, 1)).max()).all(), "more bits must not be cheaper"
    # compute cycles: the RTL contract once per M tile
    for j in (0, 48):
        slots = math.ceil(choices[j].act_bits / 2) if act else math.ceil(choices[j].bits / 2)
        assert t.compute_cycles[0, j] == m_tiled_layer_cycles(m, k, n, int(t.m_tile_rows[0, j]), rows=2, cols=2,
                                                              lanes=2, term_slots=slots, bits_per_cycle=2)


def test_unsupported_choice_and_plan_errors():
    spec = tiny_spec()
    wl = Workload([linear("fc", 2, 4, 2)], [], [])
    with pytest.raises(UsageError, match="does not run bitmod4/a8"):
        evaluate(wl, spec, [Choice("bitmod", 4, 8)])
    with pytest.raises(UsageError, match="malformed plan"):
        plan_choices({"layers": "x"}, wl, spec)
    with pytest.raises(UsageError, match="no entry"):
        plan_choices({"layers": []}, wl, spec)
    with pytest.raises(UsageError, match="does not have"):
        plan_choices({"layers": [{"name": "zz", "format": "int", "bits": 4}]}, wl, spec)
    got = plan_choices({"layers": [{"name": "fc", "format": "int", "bits": 4, "act_bits": 4}]}, wl, spec)
    assert got == [Choice("int", 4, 4)]


def test_choice_string_round_trip():
    c = Choice("bitmod", 4, 8)
    assert str(c) == "bitmod4/a8" and Choice.parse("bitmod4/a8") == c
    with pytest.raises(UsageError):
        Choice.parse("bitmod")


def test_whole_table_equals_layer_by_layer():
    spec = tiny_spec()
    layers = [linear("a", 3, 5, 3), linear("b", 1, 40, 4),
              Layer("dw", "conv", 4, 9, 6, 6, 1, 216, 54, 96, 24, 54, (3, 3), (1, 1)),
              Layer("qk", "matmul", 4, 2, 4, 1, 3, 96, 0, 24, 48, 24, stationary_is_activation=True)]
    choices = spec.choices()
    whole = evaluate(Workload(layers, [], []), spec, choices)
    for i, layer in enumerate(layers):
        one = evaluate(Workload([layer], [], []), spec, choices)
        assert np.array_equal(one.energy_pj[0], whole.energy_pj[i])
        assert np.array_equal(one.latency_cycles[0], whole.latency_cycles[i])
        for k, v in one.breakdown_pj.items():
            assert np.array_equal(v[0], whole.breakdown_pj[k][i])


def test_cost_command(capsys, tmp_path):
    from hwq.cli.main import main

    assert main(["cost", "--model", "digits_cnn", "--format", "bitmod", "--weights-bits", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out["layers"]] == ["stem_conv", "block_conv1", "block_conv2", "fc"]
    assert out["totals"]["energy_pj"] == pytest.approx(sum(r["energy_pj"] for r in out["layers"]))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"layers": [{"name": n, "format": "int", "bits": b, "act_bits": 8} for n, b in
                                           (("stem_conv", 8), ("block_conv1", 4), ("block_conv2", 4), ("fc", 8))]}))
    assert main(["cost", "--model", "digits_cnn", "--plan", str(plan), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    assert [r["choice"] for r in rows] == ["int8/a8", "int4/a8", "int4/a8", "int8/a8"]
    plan.write_text("{not json")
    assert main(["cost", "--model", "digits_cnn", "--plan", str(plan)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["cost", "--model", "nope"]) == 2
    assert "known models" in capsys.readouterr().err
    assert main(["cost", "--model", "digits_cnn", "--arch", "int8_parallel", "--format", "int",
                 "--weights-bits", "4"]) == 2
    assert "does not run int4/a8" in capsys.readouterr().err
