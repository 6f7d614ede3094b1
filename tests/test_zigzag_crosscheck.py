"""The recorded ZigZag cross-check (reports/zigzag_crosscheck.json) still describes the current cost model.

ZigZag is not installed in CI (it is a peer tool run by ``scripts/zigzag_crosscheck.py`` in its own venv), so
these tests recompute hwq's side from the current code and compare it with what the JSON recorded: a cost-model
change that moves the compared terms fails here until the cross-check is re-run. They also hold the issue-11
criterion (hwq within 10 % of ZigZag on the compared total) and that the ZigZag hardware is still what the spec
says (no retyped numbers).
"""

from __future__ import annotations

import math

import pytest

from hwq.cost import Choice
from hwq.errors import HwqError
from hwq.reports.zigzag_crosscheck import (TERMS, TOLERANCE, VARIANTS, hwq_side, load_crosscheck,
                                           reduction_unrolling, variant_spec, zigzag_hardware)
from hwq.spec import load_spec


@pytest.fixture(scope="module")
def recorded() -> dict:
    return load_crosscheck()


@pytest.fixture(scope="module")
def resnet50():
    from hwq.workload import capture
    from models.registry import get_recipe

    r = get_recipe("resnet50")
    return capture(r.build("random"), r.example_input())


def test_int8_parallel_is_recorded(recorded):
    run = recorded["runs"]["int8_parallel"]
    assert run["zigzag_version"].startswith("3.")
    assert run["zigzag_wall_s"] > 0 and run["hwq_eval_s"] > 0
    assert len(run["comparison"]["layers"]) == 54        # ResNet-50: 53 convolutions + fc


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_hwq_side_unchanged(recorded, resnet50, variant):
    """The current cost model gives the hwq numbers the cross-check recorded, layer by layer and term by term."""
    for preset, run in recorded["runs"].items():
        c = Choice.parse(run["choice"])
        now = hwq_side(resnet50, variant_spec(load_spec(preset), variant), c.fmt, c.bits, c.act_bits, run["batch"])
        rec = run["variants"][variant]["layers"]
        assert [r["name"] for r in now["layers"]] == [r["name"] for r in rec]
        for a, b in zip(now["layers"], rec):
            for k in TERMS:
                assert math.isclose(a[k], b["hwq"][k], rel_tol=1e-9, abs_tol=1e-6), \
                    (f"{preset}/{variant} {a['name']} {k}: now {a[k]:.1f} pJ, recorded {b['hwq'][k]:.1f} pJ: "
                     "the cost model changed; re-run scripts/zigzag_crosscheck.py")


def test_within_tolerance_of_zigzag(recorded):
    """Issue 11: compute + buffers + DRAM weights within 10 % of ZigZag on the same hardware."""
    for preset, run in recorded["runs"].items():
        t = run["comparison"]["totals"]
        assert math.isclose(t["hwq_compared_pj"], sum(t["hwq"][k] for k in TERMS), rel_tol=1e-12)
        assert math.isclose(t["zigzag_compared_pj"], sum(t["zigzag"][k] for k in TERMS), rel_tol=1e-12)
        assert abs(t["ratio"] - 1) <= TOLERANCE, f"{preset}: hwq / ZigZag = {t['ratio']:.3f}"


def test_recorded_hardware_is_the_spec(recorded):
    """The accelerator ZigZag ran is what zigzag_hardware derives from the spec today (numbers not retyped)."""
    for preset, run in recorded["runs"].items():
        c = Choice.parse(run["choice"])
        spec = load_spec(preset)
        hw = zigzag_hardware(spec, c.fmt, c.bits, c.act_bits)
        assert hw["accelerator"] == run["hardware"]["accelerator"]
        mem = hw["accelerator"]["memories"]
        wb = spec.buffers["weight"]
        port = mem["weight_buffer"]["ports"][0]
        # ZigZag charges r_cost per bandwidth_max-bit access: the per-bit energy must be the spec's
        assert math.isclose(mem["weight_buffer"]["r_cost"] / port["bandwidth_max"], wb.read_energy_pj / wb.access_bits)
        dram = mem["dram"]
        assert math.isclose(dram["r_cost"] / dram["ports"][0]["bandwidth_max"], spec.dram.energy_pj_per_bit)
        assert math.isclose(hw["unit_energy_pj"] * spec.array.lanes,
                            spec.compute.pe_cycle_pj(c.bits, c.act_bits) * hw["cycles_per_weight"])


def test_reduction_unrolling_fills_the_tile():
    assert reduction_unrolling(128, 3, 7, 7) == [("C", 3), ("FX", 7), ("FY", 6)]
    assert reduction_unrolling(128, 64, 3, 3) == [("C", 64), ("FX", 2)]
    assert reduction_unrolling(128, 512, 3, 3) == [("C", 128)]
    for c, f in ((3, 7), (64, 3), (64, 1), (256, 1)):
        used = math.prod(u for _, u in reduction_unrolling(128, c, f, f))
        assert used <= 128


def test_bit_serial_pe_energy_per_mac():
    """A bit-serial PE is a MAC unit of its energy per weight: ceil(8/2) = 4 cycles at int8 on ``bitmod``."""
    spec = load_spec("bitmod")
    hw = zigzag_hardware(spec, "int", 8, 8)
    assert hw["cycles_per_weight"] == 4
    assert math.isclose(hw["unit_energy_pj"], spec.compute.pe_cycle_pj(8, 8) * 4 / spec.array.lanes)


def test_weight_formats_zigzag_cannot_express_are_refused():
    with pytest.raises(HwqError, match="cannot be expressed"):
        zigzag_hardware(load_spec("bitmod"), "bitmod", 4, 8)
    with pytest.raises(HwqError, match="dataflow"):
        zigzag_hardware(load_spec("bitmod_edge"), "int", 8, 8)
