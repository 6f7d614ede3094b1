"""Weight quantizers: grid membership, nearest rounding with midpoint-to-lower, least-MSE mixtures,
hardware scales, idempotence, monotonicity, codes/dequantize consistency, error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwq.datatypes import DATATYPES, FORMAT_BITS, GROUP_META_BITS, MIXTURES, MX_BLOCK, Mixture, resolve
from hwq.quant import quantize_weight, quantize_weight_codes
from hwq.quant.weights import round_to_grid

FORMATS = [("int", 3), ("int", 4), ("int", 8), ("int_asym", 4), ("fp", 3), ("fp", 4), ("bitmod", 3),
           ("bitmod", 4), ("ant", 3), ("ant", 4), ("mx", 4), ("mx", 8)]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def weights(draw: st.DrawFn, group: int) -> np.ndarray:
    rows = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    elems = st.floats(-50, 50, allow_nan=False, width=64).map(lambda v: 0.0 if abs(v) < 1e-6 else v)
    return draw(arrays(np.float64, (rows, groups * group), elements=elems))


def _nearest_lower(x: float, grid: tuple[int, ...]) -> int:
    """Brute force: nearest grid value, exact ties to the lower one."""
    best = min(grid, key=lambda g: (abs(g - x), g))
    return best


def _units(q) -> np.ndarray:
    """Real value per grid unit, per (row, group)."""
    return q.scale_int.numpy() * q.row_scale.numpy()[:, None] * 2.0 ** -q.frac_bits


def _check_structure(w: np.ndarray, fmt: str, bits: int, q) -> None:
    """Codes decode onto member grids; dequantize = decode * 2**-f * scale_int * row_scale; rounding is nearest."""
    out, k = w.shape
    gs = q.group_size
    assert q.codes.shape == (out, k) and q.scale_int.shape == (out, k // gs) == q.selectors.shape
    assert int(q.codes.min()) >= 0 and int(q.codes.max()) < 2 ** bits
    assert int(q.scale_int.min()) >= 0 and int(q.scale_int.max()) < 2 ** q.scale_bits
    deq = q.dequantize().numpy()
    unit = _units(q)
    for r in range(out):
        for g in range(k // gs):
            dt = DATATYPES[q.datatypes[int(q.selectors[r, g])]]
            codes = q.codes[r, g * gs:(g + 1) * gs].numpy()
            vals = np.array([dt.decode[c] for c in codes])
            if fmt == "int_asym":
                zp = int(q.zero_point[r, g])
                assert set(vals) <= set(dt.grid)
                vals = vals - zp
                grid = tuple(v - zp for v in dt.grid)
            else:
                assert set(vals) <= set(dt.grid), "emitted a value off the grid (e.g. INT's -2**(b-1))"
                grid = dt.grid
            np.testing.assert_array_equal(deq[r, g * gs:(g + 1) * gs], vals * unit[r, g])
            if unit[r, g] == 0:
                assert not w[r, g * gs:(g + 1) * gs].any()
                continue
            x = w[r, g * gs:(g + 1) * gs] / unit[r, g]
            for xi, vi in zip(x, vals):
                assert vi == _nearest_lower(xi, grid), (xi, vi)
                if min(grid) <= xi <= max(grid):  # in range: error <= half the local step
                    lo = max(v for v in grid if v <= xi)
                    hi = min(v for v in grid if v >= xi)
                    assert abs(vi - xi) <= (hi - lo) / 2 + 1e-9


def _check_scales(w: np.ndarray, fmt: str, bits: int, q) -> None:
    """Hardware scales: row_scale = max ideal scale / (2**sb - 1), scale_int = ceil; mixtures pick least MSE."""
    if fmt in ("mx", "int_asym"):
        return
    entry = resolve(fmt, bits)
    members = entry.members if isinstance(entry, Mixture) else (entry.name,)
    sb = entry.scale_bits if isinstance(entry, Mixture) else GROUP_META_BITS
    gs = q.group_size
    for r in range(w.shape[0]):
        groups = w[r].reshape(-1, gs)
        ideal = [[np.abs(grp).max() / (DATATYPES[m].max_abs * 2.0 ** -DATATYPES[m].frac_bits) for m in members]
                 for grp in groups]
        rs = max(max(i) for i in ideal) / (2 ** sb - 1)
        if rs == 0:
            continue
        assert math.isclose(float(q.row_scale[r]), rs, rel_tol=1e-12)
        rs = float(q.row_scale[r])
        for g, grp in enumerate(groups):
            errs = []
            for s, m in enumerate(members):
                dt = DATATYPES[m]
                si = min(max(1, math.ceil(ideal[g][s] / rs - 1e-9)), 2 ** sb - 1) if ideal[g][s] else 0
                unit = si * rs * 2.0 ** -dt.frac_bits
                qv = [_nearest_lower(x / unit, dt.grid) * unit if unit else 0.0 for x in grp]
                errs.append(sum((a - b) ** 2 for a, b in zip(qv, grp)))
            sel = int(q.selectors[r, g])
            assert errs[sel] <= min(errs) * (1 + 1e-9) + 1e-300, (errs, sel)
            assert int(q.scale_int[r, g]) == (min(max(1, math.ceil(ideal[g][sel] / rs - 1e-9)), 2 ** sb - 1) if ideal[g][sel] else 0)


@pytest.mark.parametrize("fmt,bits", FORMATS, ids=[f"{f}{b}" for f, b in FORMATS])
def test_grid_nearest_scales_and_monotonic(fmt: str, bits: int) -> None:
    group = MX_BLOCK if fmt == "mx" else 4

    @SETTINGS
    @given(weights(group))
    def prop(w: np.ndarray) -> None:
        q = quantize_weight_codes(torch.from_numpy(w), fmt, bits, group_size=group)
        _check_structure(w, fmt, bits, q)
        _check_scales(w, fmt, bits, q)
        # monotone within a group (one scale, one member)
        deq = q.dequantize().numpy().reshape(w.shape[0], -1, q.group_size)
        wg = w.reshape(deq.shape)
        order = np.argsort(wg, axis=2, kind="stable")
        assert (np.diff(np.take_along_axis(deq, order, axis=2), axis=2) >= 0).all()

    prop()


@pytest.mark.parametrize("fmt,bits", [("int", 4), ("int", 8), ("fp", 3), ("fp", 4), ("mx", 4), ("mx", 8)])
def test_idempotent_with_exact_scales(fmt: str, bits: int) -> None:
    """Q(Q(w)) == Q(w) where the stored scale equals the ideal one (one group per row; MX powers of two).

    With several groups per row (or mixtures) a group's integer scale is rounded up, so its
    re-quantized absmax can select a different integer scale: not idempotent by design. Nor is
    int_asym: when the zero point sits on a midpoint (e.g. [-45, 45]) the top value rounds down.
    """
    group = 0 if fmt != "mx" else MX_BLOCK

    @SETTINGS
    @given(weights(32))
    def prop(w: np.ndarray) -> None:
        w1 = quantize_weight(torch.from_numpy(w), fmt, bits, group_size=group)
        w2 = quantize_weight(w1, fmt, bits, group_size=group)
        torch.testing.assert_close(w2, w1, rtol=1e-12, atol=0)

    prop()


@pytest.mark.parametrize("name", sorted(DATATYPES))
def test_round_to_grid_midpoints_go_lower(name: str) -> None:
    grid = DATATYPES[name].grid
    g = torch.tensor(grid, dtype=torch.float64)
    mids = (g[1:] + g[:-1]) / 2
    vals, codes = round_to_grid(mids, name)
    torch.testing.assert_close(vals, g[:-1], rtol=0, atol=0)
    vals, codes = round_to_grid(g, name)
    torch.testing.assert_close(vals, g, rtol=0, atol=0)
    assert [DATATYPES[name].decode[c] for c in codes.tolist()] == list(grid)
    # just above a midpoint goes up; beyond the ends saturates
    vals, _ = round_to_grid(mids + 1e-9, name)
    torch.testing.assert_close(vals, g[1:], rtol=0, atol=0)
    vals, _ = round_to_grid(torch.tensor([grid[0] - 100.0, grid[-1] + 100.0]), name)
    assert vals.tolist() == [grid[0], grid[-1]]


def test_midpoint_to_lower_through_quantizer() -> None:
    """int4 with row_scale = 2**-8 exactly: weights on midpoints k + 1/2 (grid units) go to k."""
    unit = 255 * 2.0 ** -8  # scale_int 255 x row_scale 2**-8, exact
    w = torch.tensor([[7, 0.5, 1.5, -0.5, -2.5, 3.5, -6.5, 6.5]], dtype=torch.float64) * unit
    q = quantize_weight_codes(w, "int", 4, group_size=8)
    assert float(q.row_scale[0]) == 2.0 ** -8 and int(q.scale_int[0, 0]) == 255
    assert (q.dequantize() / unit).tolist() == [[7, 0, 1, -1, -3, 3, -7, 6]]


def test_mixture_members_and_selectors_come_from_table() -> None:
    torch.manual_seed(0)
    w = torch.randn(8, 256)
    for name, mix in MIXTURES.items():
        fmt, bits = name[:-1], int(name[-1])
        q = quantize_weight_codes(w, fmt, bits)
        assert q.datatypes == mix.members and q.scale_bits == mix.scale_bits
        assert int(q.selectors.max()) < len(mix.members)


def test_bitmod_special_values_are_used() -> None:
    """A group holding 5.0 (the ER-positive special, 10 x 2**-1) next to FP4 values picks fp4_er_pos."""
    w = torch.tensor([[6.0, 5.0, 1.0, -1.0, 2.0, 3.0, -4.0, 0.5]], dtype=torch.float64)
    q = quantize_weight_codes(w, "bitmod", 4, group_size=8)
    assert q.datatypes[int(q.selectors[0, 0])] == "fp4_er_pos"
    assert q.values()[0].tolist() == [12, 10, 2, -2, 4, 6, -8, 1]
    q = quantize_weight_codes(-w, "bitmod", 4, group_size=8)
    assert q.datatypes[int(q.selectors[0, 0])] == "fp4_er_neg"


def test_per_channel_per_tensor_and_conv_layout() -> None:
    torch.manual_seed(1)
    w = torch.randn(6, 4, 3, 3)
    flat = quantize_weight(w.reshape(6, -1), "int", 4, group_size=12)
    torch.testing.assert_close(quantize_weight(w, "int", 4, group_size=12), flat.reshape(w.shape), rtol=0, atol=0)
    qc = quantize_weight_codes(w, "fp", 4, group_size=None)
    assert qc.scale_int.shape == (6, 1) and (qc.scale_int == 255).all()
    qt = quantize_weight_codes(w, "int", 4, per_tensor=True)
    assert torch.unique(qt.row_scale).numel() == 1 and torch.unique(qt.scale_int).numel() == 1
    assert float(qt.dequantize().abs().max()) == pytest.approx(float(w.abs().max()), rel=1e-12)
    assert quantize_weight(w.float(), "int", 4, group_size=12).dtype == torch.float32


def test_tiny_groups_keep_a_nonzero_scale() -> None:
    w = torch.tensor([[1e6, 1, 1, 1, 1e-12, 0, 0, 0]], dtype=torch.float64)
    for fmt, bits in FORMATS:
        if fmt != "mx":
            q = quantize_weight_codes(w, fmt, bits, group_size=4)
            assert q.scale_int[0, 1] >= 1 and torch.isfinite(q.dequantize()).all()


def test_zero_weights_and_group_errors() -> None:
    z = torch.zeros(2, 8)
    for fmt, bits in FORMATS:
        if fmt != "mx":
            assert not quantize_weight(z, fmt, bits, group_size=4).any()
    with pytest.raises(ValueError, match="group size 3 does not divide the row length 8"):
        quantize_weight(torch.ones(2, 8), "int", 4, group_size=3)
    with pytest.raises(ValueError, match="does not divide"):
        quantize_weight(torch.ones(2, 40), "mx", 4)
    with pytest.raises(ValueError, match="unknown weight format"):
        quantize_weight(torch.ones(2, 8), "int9", 4)
    with pytest.raises(ValueError, match="no 5-bit variant"):
        quantize_weight(torch.ones(2, 8), "fp", 5)
    with pytest.raises(ValueError, match=">= 2 dimensions"):
        quantize_weight(torch.ones(8), "int", 4)


def test_every_table_format_is_accepted() -> None:
    w = torch.randn(4, 64)
    for fmt, widths in FORMAT_BITS.items():
        for bits in widths:
            wq = quantize_weight(w, fmt, bits, group_size=32)
            assert wq.shape == w.shape and torch.isfinite(wq).all()


# ----------------------------------------------------------------------------------------
# Fake-quant modules and quantize_model
# ----------------------------------------------------------------------------------------
from torch import nn  # noqa: E402

from hwq.quant import LayerPrecision, calibrate, quantize_model  # noqa: E402
from hwq.quant.modules import ActQuant, Add, QuantAdd, QuantConv2d, QuantLinear  # noqa: E402


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.add = Add()
        self.head = nn.Linear(4 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return self.head(self.add(h, h).flatten(1))


def test_quantize_model_swaps_keeps_names_and_matches_quantizer() -> None:
    torch.manual_seed(0)
    net = _Net()
    plan = {"conv": LayerPrecision("int", 4, 8, group_size=18), "head": LayerPrecision("bitmod", 4, 8, 64),
            "add": LayerPrecision("int", 8, act_bits=8)}
    q = quantize_model(net, plan)
    assert isinstance(q.conv, QuantConv2d) and isinstance(q.head, QuantLinear) and isinstance(q.add, QuantAdd)
    assert isinstance(net.conv, nn.Conv2d) and not isinstance(net.conv, QuantConv2d)  # original untouched
    assert set(net.state_dict()) <= set(q.state_dict())
    torch.testing.assert_close(q.head.quantized_weight(), quantize_weight(net.head.weight, "bitmod", 4, group_size=64))
    x = torch.randn(8, 2, 4, 4)
    calibrate(q, [x])
    assert not bool(q.conv.act_quant.calibrating) and q.conv.act_quant.signed and not q.head.act_quant.signed
    # the model's output equals the layer-by-layer fake-quant computation
    a = q.conv.act_quant
    xq = torch.clamp(torch.ceil(x / a.scale.float() - 0.5), a.qmin, a.qmax) * a.scale.float()
    conv_out = torch.relu(nn.functional.conv2d(xq, quantize_weight(net.conv.weight, "int", 4, group_size=18),
                                               net.conv.bias, padding=1))
    torch.testing.assert_close(q.conv.act_quant(x), xq)
    summed = q.add.act_quant(conv_out + conv_out)
    head_in = q.head.act_quant(summed.flatten(1))
    expect = nn.functional.linear(head_in, quantize_weight(net.head.weight, "bitmod", 4, group_size=64), net.head.bias)
    with torch.no_grad():
        torch.testing.assert_close(q(x), expect)


def test_act_quant_levels_and_ste() -> None:
    aq = ActQuant(4)
    aq.set_scale(0.5)
    x = torch.tensor([0.25, 0.26, -0.75, 10.0, -10.0], requires_grad=True)
    y = aq(x)
    assert y.tolist() == [0.0, 0.5, -1.0, 3.5, -3.5]  # midpoint to lower, saturate at +-7 levels
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]  # clipped straight-through estimator


def test_qat_reduces_loss() -> None:
    torch.manual_seed(0)
    net = quantize_model(_Net(), {"conv": LayerPrecision("fp", 4, 8, 18), "head": LayerPrecision("ant", 4, 8, 32)})
    x, y = torch.randn(32, 2, 4, 4), torch.randint(0, 3, (32,))
    calibrate(net, [x])
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(10):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        assert net.conv.weight.grad is not None and net.conv.weight.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_plan_json_form_and_errors() -> None:
    net = _Net()
    q = quantize_model(net, {"layers": [{"name": "head", "format": "mx", "bits": 4, "act_bits": None}]})
    assert isinstance(q.head, QuantLinear) and q.head.fmt == "mx" and q.head.act_quant is None
    with pytest.raises(ValueError, match="does not have: nope, zz"):
        quantize_model(net, {"zz": LayerPrecision("int", 4), "nope": LayerPrecision("int", 4)})
    with pytest.raises(ValueError, match="does not divide its row length 18"):
        quantize_model(net, {"conv": LayerPrecision("int", 4, group_size=4)})
    with pytest.raises(ValueError, match="lacks bits"):
        quantize_model(net, {"layers": [{"name": "head", "format": "int"}]})
    with pytest.raises(ValueError, match="no 9-bit variant"):
        LayerPrecision("int", 9)


def test_minilm_sentences_and_quantized_embeddings() -> None:
    from models.minilm import SENTENCES, embed, embedding_cosine, linear_layer_names, load_minilm

    assert len(SENTENCES) >= 200 and len(set(SENTENCES)) == len(SENTENCES)
    model = load_minilm()
    assert load_minilm() is model  # cached per process
    layers = linear_layer_names(model)
    assert len(layers) == 36
    few = SENTENCES[:24]
    ref = embed(model, few)
    assert ref.shape == (24, 384) and torch.allclose(ref.norm(dim=1), torch.ones(24))
    q = quantize_model(model, {n: LayerPrecision("bitmod", 4) for n in layers if n.startswith("encoder.layer.0.")})
    cos = embedding_cosine(q, ref, few)
    assert 0.9 < cos < 0.9999


def test_fixed_point_layers_delegate_to_fixed_modules() -> None:
    from hwq.datatypes import FixedFormat
    from hwq.quant.fixed_modules import FixedQuantLinear

    net = _Net()
    wf = FixedFormat(8, 1, rounding="RND", overflow="SAT")
    q = quantize_model(net, {"head": LayerPrecision("fixed", 8, weight_fixed=wf, act_fixed=FixedFormat(8, 4))})
    assert isinstance(q.head, FixedQuantLinear)
    assert q(torch.randn(2, 2, 4, 4)).shape == (2, 3)
