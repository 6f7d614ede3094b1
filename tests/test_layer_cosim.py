"""Layer-level proof: a tile of a real ResNet-50 convolution and of a real MiniLM linear layer,
quantized and run on the generated PE-array RTL (Icarus and Verilator), must give the golden
model's outputs bit for bit in exactly the cycles ``hwq.timing`` (the cost model) predicts.

The fast test checks the lowering itself: the golden integer GEMM of the im2col rows, scaled
back to real units, equals PyTorch's own convolution / linear layer on the same quantized
operands (so the tile the RTL sees really is that layer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hwq.golden import linear_int
from hwq.toolchain import SIMULATORS
from hwq.verify.check import prepare_layer

#: One ResNet-50 3x3 convolution (stride 2, K = 128*9) and one MiniLM attention projection.
LAYERS = ("resnet50:layer2.0.conv2", "minilm:encoder.layer.0.attention.self.query")


@pytest.fixture(scope="module")
def tiny_arch_and_layers(tmp_path_factory: pytest.TempPathFactory):
    """The bitmod preset at a 2x3-PE geometry (4 lanes, BitMoD formats only, so the RTL builds fast),
    a plan giving the ResNet conv bitmod4/a8 and the MiniLM projection bitmod3/a4, and both layers
    prepared (weights and real activations quantized, lowered, tiles cut)."""
    import json

    import yaml

    from hwq.spec import load_spec

    d = load_spec("bitmod").to_dict()
    d["name"] = "bitmod_tiny"
    d["array"] = {"rows": 2, "cols": 3, "lanes": 4}
    d["arithmetic"]["weight_formats"] = [{"format": "bitmod", "bits": [3, 4]}]
    root = tmp_path_factory.mktemp("layer_cosim")
    arch = root / "bitmod_tiny.yaml"
    arch.write_text(yaml.safe_dump(d, sort_keys=False))
    plan = root / "plan.json"
    plan.write_text(json.dumps({"layers": [
        {"name": LAYERS[0].split(":")[1], "format": "bitmod", "bits": 4, "act_bits": 8, "group_size": 128},
        {"name": LAYERS[1].split(":")[1], "format": "bitmod", "bits": 3, "act_bits": 4, "group_size": 128}]}))
    return arch, [prepare_layer(layer, arch, plan=plan) for layer in LAYERS]


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=LAYERS)
def test_lowering_matches_torch_layer(index: int, tiny_arch_and_layers) -> None:
    p = tiny_arch_and_layers[1][index]
    rows = p.tile.row_index
    qw = p.qw
    w_dq = qw.dequantize()  # [N, ...] real weights the integer codes stand for
    scale = qw.row_scale.numpy() * 2.0 ** (p.act_exponent - qw.frac_bits)
    got = linear_int(p.x_rows[rows], qw) * scale[None, :]
    x_q = torch.round(p.x_float.double() * 2.0 ** -p.act_exponent)
    x_q = x_q.clamp(-(2 ** (p.precision.act_bits - 1)), 2 ** (p.precision.act_bits - 1) - 1) * 2.0 ** p.act_exponent
    mod = p.module
    if isinstance(mod, torch.nn.Conv2d):
        y = F.conv2d(x_q, w_dq, None, mod.stride, mod.padding, mod.dilation)  # [B, N, OH, OW]
        y = y.flatten(2).transpose(1, 2).reshape(-1, y.shape[1])
    else:
        y = x_q.reshape(-1, mod.in_features) @ w_dq.T
    want = y[torch.from_numpy(rows)].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
    # The tile is a real window of that GEMM, ragged against the array in K and N.
    a = p.spec.array
    assert p.tile.k % (a.rows * a.lanes) and p.tile.k > a.rows * a.lanes
    assert p.tile.n % a.cols and p.tile.n > a.cols
    assert np.array_equal(p.tile.x_int, p.x_rows[rows, : p.tile.k])


def test_first_mismatch_is_reported_with_its_operands(tiny_arch_and_layers) -> None:
    from hwq.verify.check import compare_outputs

    p = tiny_arch_and_layers[1][0]
    expected = p.tile.expected()
    got = expected.copy()
    got[1, 2] += 1
    got[3, 0] -= 5
    n_bad, first = compare_outputs(p.tile, expected, got)
    assert n_bad == 2
    assert (first.m, first.n, first.expected, first.got) == (1, 2, int(expected[1, 2]), int(expected[1, 2]) + 1)
    assert first.x_int == p.tile.x_int[1].tolist() and len(first.weight_values) == p.tile.k
    assert first.layer_row == int(p.tile.row_index[1])
    assert "expected" in str(first) and "got" in str(first)
    assert compare_outputs(p.tile, expected, expected) == (0, None)


def test_default_precision_and_tile_on_the_bitmod_preset() -> None:
    """Without a plan the arch's default choice is used; the tile is ragged against the 32x32x4 array."""
    from hwq.timing import layer_compute_cycles

    p = prepare_layer(LAYERS[1], "bitmod")
    assert (p.precision.fmt, p.precision.bits, p.precision.act_bits, p.group_size) == ("bitmod", 3, 8, 128)
    assert "default" in p.precision.source
    assert (p.tile.k, p.tile.n) == (128 + 64, 32 + 16)
    assert p.predicted_cycles == layer_compute_cycles(p.tile.m, 192, 48, rows=32, cols=32, lanes=4, term_slots=2,
                                                      bits_per_cycle=2)


@pytest.mark.slow
@pytest.mark.hw
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_layer_tiles_bit_exact_in_predicted_cycles(simulator: str, tiny_arch_and_layers, tmp_path: Path) -> None:
    from hwq.verify.check import run_prepared

    _, prepared = tiny_arch_and_layers
    results = run_prepared(prepared, simulator, tmp_path / f"build_{simulator}",
                           with_cost_model=simulator == SIMULATORS[0])
    for p, r in zip(prepared, results):
        assert r.outputs_compared == p.tile.m * p.tile.n >= 12
        assert r.mismatches == 0, f"{r.layer} on {simulator}: {r.mismatches} mismatches; first {r.first_mismatch}"
        assert r.measured_cycles == r.predicted_cycles, (r.layer, simulator, r.measured_cycles, r.predicted_cycles)
        assert r.predicted_cycles > 20 * p.spec.array.rows  # many tiles: the controller really tiled K and N
        if r.cost_model:
            assert r.cost_model["compute_cycles"] == r.cost_model["timing_cycles"], r.cost_model
        assert r.ok


def _tiny_accumulating_arch(path: Path) -> Path:
    """The 2x3-PE x 4-lane BitMoD array with both dataflows, elided partial sums and 8-deep
    per-column accumulators (so a batch-4 tile needs several M tiles)."""
    import yaml

    from hwq.spec import load_spec

    d = load_spec("bitmod").to_dict()
    d["name"] = "bitmod_tiny_acc"
    d["array"] = {"rows": 2, "cols": 3, "lanes": 4}
    d["arithmetic"]["weight_formats"] = [{"format": "bitmod", "bits": [3, 4]}]
    d["dataflow"] = {"modes": ["accumulate_in_array", "output_buffer"], "partial_sums": "elide_first_last"}
    d["accumulators"] = {"depth": 8, "access_bits": 32, "read_energy_pj": 1.36, "write_energy_pj": 1.36}
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def test_batch_tile_takes_rows_of_every_image(tmp_path: Path) -> None:
    """--batch 4: the tile's M rows come from 4 calibration images (rows of each, image-major), and
    the accumulate_in_array prediction uses M tiles of accumulators.depth rows."""
    from hwq.timing import layer_compute_cycles, psum_row_accesses

    arch = _tiny_accumulating_arch(tmp_path / "acc.yaml")
    p = prepare_layer(LAYERS[0], arch, batch=4, m_rows=3, dataflow="accumulate_in_array")
    per_image = p.x_rows.shape[0] // 4
    assert p.x_rows.shape[0] == 4 * 28 * 28 and p.tile.m == 12
    assert [int(r) // per_image for r in p.tile.row_index] == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert p.m_tile == 8 and p.dataflow == "accumulate_in_array"
    kw = dict(rows=2, cols=3, lanes=4, term_slots=p.term_slots, bits_per_cycle=2)
    assert p.predicted_cycles == layer_compute_cycles(12, p.tile.k, p.tile.n, m_tile=8, **kw)
    assert p.predicted_cycles > layer_compute_cycles(12, p.tile.k, p.tile.n, **kw)
    k_tiles, n_tiles = -(-p.tile.k // 8), -(-p.tile.n // 3)
    assert p.predicted_psums == psum_row_accesses(12, k_tiles, n_tiles, elide=True)
    # the output_buffer dataflow runs the same tile as one M tile
    q = prepare_layer(LAYERS[0], arch, batch=4, m_rows=3, dataflow="output_buffer")
    assert q.m_tile is None and q.predicted_cycles == layer_compute_cycles(12, q.tile.k, q.tile.n, **kw)


@pytest.mark.slow
@pytest.mark.hw
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_batch4_accumulate_in_array_tile_on_rtl(simulator: str, tmp_path: Path) -> None:
    """A ResNet-50 conv tile at batch 4 (3 rows per image: M = 12 in M tiles of 8 and 4) on the
    accumulate_in_array dataflow with elided partial sums: bit-exact, cycles and o_mem accesses as
    hwq.timing predicts, on both simulators."""
    from hwq.verify.check import run_prepared

    arch = _tiny_accumulating_arch(tmp_path / "acc.yaml")
    p = prepare_layer(LAYERS[0], arch, batch=4, m_rows=3, dataflow="accumulate_in_array")
    [r] = run_prepared([p], simulator, tmp_path / f"build_{simulator}", with_cost_model=False)
    assert r.tiling["m_tiles"] == 2 and r.tiling["m_tile"] == 8 and r.tiling["k_tiles"] > 1
    assert r.mismatches == 0, f"{simulator}: {r.mismatches} mismatches; first {r.first_mismatch}"
    assert r.measured_cycles == r.predicted_cycles, (simulator, r.measured_cycles, r.predicted_cycles)
    assert r.psum_accesses["measured"] == r.psum_accesses["predicted"] == list(p.predicted_psums)
    assert p.predicted_psums[0] > 0 and r.ok
