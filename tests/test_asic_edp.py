"""ASIC iso-area energy-delay comparison (hwq.reports.asic_edp) on a small CNN."""

from __future__ import annotations

import pytest
import torch

from hwq.codesign.area import asic_area
from hwq.cost import Choice, evaluate
from hwq.reports.asic_edp import INT8_OVER_FP16_MAC_AREA, asic_edp_markdown, edp_rows, iso_area_side
from hwq.spec import load_spec
from hwq.workload import capture


@pytest.fixture(scope="module")
def workload():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 10))
    return capture(net.eval(), torch.zeros(1, 3, 8, 8))


def test_iso_area_side_is_the_largest_square_that_fits() -> None:
    assert iso_area_side(100.0, 4.0) == 5
    assert iso_area_side(99.9, 4.0) == 4
    with pytest.raises(ValueError):
        iso_area_side(3.0, 4.0)


def test_rows_are_iso_area_and_match_the_cost_model(workload) -> None:
    rows = edp_rows(workload)
    ser, par = load_spec("bitmod"), load_spec("int8_parallel")
    target = asic_area(ser).total_mm2
    assert rows[0].area_mm2 == pytest.approx(target)
    pe_mm2 = asic_area(par).pe_um2 * 1e-6
    for r, pe in ((rows[2], pe_mm2), (rows[3], pe_mm2), (rows[4], pe_mm2 * INT8_OVER_FP16_MAC_AREA)):
        assert r.rows == r.cols
        assert r.area_mm2 <= target + 1e-12
        # one more row and column would not fit
        assert r.area_mm2 + ((r.rows + 1) ** 2 - r.rows ** 2) * pe > target
    c = Choice("bitmod", 4, 8)
    u = evaluate(workload, ser, [c], batch=1).uniform(c)
    assert rows[0].energy_mj == pytest.approx(u["energy_pj"] * 1e-9)
    assert rows[0].latency_ms == pytest.approx(u["latency_s"] * 1e3)
    assert rows[0].edp == pytest.approx(rows[0].energy_mj * rows[0].latency_ms)
    # W4 on the bit-parallel array moves fewer DRAM bits than W8 on the same array
    assert rows[3].dram_mj < rows[2].dram_mj


def test_markdown_names_the_lower_edp_as_winner(workload) -> None:
    rows = edp_rows(workload)
    text = "\n".join(asic_edp_markdown(workload, "tiny"))
    base, iso4 = rows[0], rows[3]
    want = "bit-serial" if base.edp < iso4.edp else iso4.label
    assert f"EDP winner **{want}** ({iso4.edp:.2f} vs {base.edp:.2f}" in text
    assert text.count("| ") > 5 * 10
