"""Golden integer model: exact agreement with the PyTorch fake-quant path, bit-serial dequantizer,
and requantization that matches the ap_fixed cast ``hwq.quant.fixed`` bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwq.datatypes import DATATYPES, GROUP_META_BITS, OVERFLOW_MODES, ROUNDING_MODES, FixedFormat, Mixture, resolve
from hwq.golden import decode_codes, dequant_accumulate, group_psums, linear_int, requantize, shift_add_multiply
from hwq.quant import quantize_weight, quantize_weight_codes
from hwq.quant.fixed import fixed_point_codes

EXACT_FORMATS = [("int", 3), ("int", 4), ("int", 8), ("int_asym", 4), ("fp", 3), ("fp", 4), ("bitmod", 3),
                 ("bitmod", 4), ("ant", 3), ("ant", 4), ("mx", 4), ("mx", 8)]
X_SCALE = 2.0 ** -7  # power of two: x_deq = x_int * 2**-7 is exact


def _weights_with_dyadic_row_scale(fmt: str, bits: int, n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """Random weights whose row absmax makes row_scale = 2**-10 exactly (so all float math is exact)."""
    w = torch.randn(n, k, generator=gen, dtype=torch.float64)
    if fmt in ("mx", "int_asym"):
        return w
    entry = resolve(fmt, bits)
    members = entry.members if isinstance(entry, Mixture) else (entry.name,)
    sb = entry.scale_bits if isinstance(entry, Mixture) else GROUP_META_BITS
    min_max_real = min(DATATYPES[m].max_abs * 2.0 ** -DATATYPES[m].frac_bits for m in members)
    peak = min_max_real * (2 ** sb - 1) * 2.0 ** -10
    w = w / w.abs().amax(dim=1, keepdim=True) * peak * 0.99
    w[:, 3] = peak * torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    return w


@pytest.mark.parametrize("fmt,bits", EXACT_FORMATS, ids=[f"{f}{b}" for f, b in EXACT_FORMATS])
def test_linear_int_equals_fake_quant_exactly(fmt: str, bits: int) -> None:
    gen = torch.Generator().manual_seed(bits * 7 + len(fmt))
    gs = 32 if fmt == "mx" else 64
    w = _weights_with_dyadic_row_scale(fmt, bits, 12, 256, gen)
    q = quantize_weight_codes(w, fmt, bits, group_size=gs)
    if fmt not in ("mx", "int_asym"):
        assert (q.row_scale == 2.0 ** -10).all()
    x_int = torch.randint(-127, 128, (5, 256), generator=gen)
    acc = linear_int(x_int.numpy(), q)
    assert acc.dtype == np.int64
    golden = torch.from_numpy(acc).double() * q.row_scale[None, :] * X_SCALE * 2.0 ** -q.frac_bits
    reference = (x_int.double() * X_SCALE) @ quantize_weight(w, fmt, bits, group_size=gs).T
    if fmt in ("mx", "int_asym") and not torch.equal(golden, reference):
        torch.testing.assert_close(golden, reference, rtol=1e-13, atol=0)  # row_scale not dyadic (int_asym)
    else:
        assert torch.equal(golden, reference)


def test_decode_codes_matches_quantizer_values() -> None:
    w = torch.randn(4, 128, generator=torch.Generator().manual_seed(3))
    for fmt, bits in EXACT_FORMATS:
        q = quantize_weight_codes(w, fmt, bits, group_size=32)
        zp = q.zero_point.numpy() if fmt == "int_asym" else None
        vals = decode_codes(q.codes.numpy(), q.selectors.numpy(), q.group_size, q.datatypes, zp)
        np.testing.assert_array_equal(vals, q.values().numpy())


def test_group_psums_and_dequant_by_hand() -> None:
    x = np.array([[1, 2, 3, 4]])
    w = np.array([[1, 1, -1, 2], [0, 3, 1, 1]])
    ps = group_psums(x, w, 2)
    assert ps.tolist() == [[[3, 5], [6, 7]]]
    assert dequant_accumulate(ps, np.array([[2, 3], [1, 4]])).tolist() == [[3 * 2 + 5 * 3, 6 + 28]]
    with pytest.raises(ValueError):
        group_psums(x, w, 3)
    with pytest.raises(TypeError):
        group_psums(x.astype(float), w, 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-(2 ** 30), 2 ** 30), min_size=1, max_size=16), st.integers(1, 16), st.data())
def test_shift_add_equals_multiplication(values: list[int], scale_bits: int, data: st.DataObject) -> None:
    scales = data.draw(st.lists(st.integers(0, 2 ** scale_bits - 1), min_size=len(values), max_size=len(values)))
    v, s = np.array(values, dtype=np.int64), np.array(scales, dtype=np.int64)
    np.testing.assert_array_equal(shift_add_multiply(v, s, scale_bits), v * s)


def test_shift_add_rejects_wide_scale() -> None:
    with pytest.raises(ValueError, match="unsigned 6-bit"):
        shift_add_multiply(np.array([1]), np.array([64]), 6)


# ----------------------------------------------------------------------------------------
# requantize
# ----------------------------------------------------------------------------------------
HAND = [  # (value * 2, rounding) -> code in ap_fixed<4,4> (integers, F = 0)
    (5, {"TRN": 2, "TRN_ZERO": 2, "RND": 3, "RND_ZERO": 2, "RND_MIN_INF": 2, "RND_INF": 3, "RND_CONV": 2}),
    (-5, {"TRN": -3, "TRN_ZERO": -2, "RND": -2, "RND_ZERO": -2, "RND_MIN_INF": -3, "RND_INF": -3, "RND_CONV": -2}),
    (7, {"TRN": 3, "TRN_ZERO": 3, "RND": 4, "RND_ZERO": 3, "RND_MIN_INF": 3, "RND_INF": 4, "RND_CONV": 4}),
]


@pytest.mark.parametrize("twice,expected", HAND)
def test_requantize_rounding_by_hand(twice: int, expected: dict[str, int]) -> None:
    for mode, code in expected.items():
        assert requantize(np.array([twice]), 1, 1, FixedFormat(4, 4, rounding=mode)).tolist() == [code], mode


def test_requantize_overflow_by_hand() -> None:
    vals = np.array([9, -8, -9, 7])
    expect = {"WRAP": [-7, -8, 7, 7], "SAT": [7, -8, -8, 7], "SAT_ZERO": [0, -8, 0, 7], "SAT_SYM": [7, -7, -7, 7],
              "WRAP_SM": [6, -8, -8, 7]}
    for mode, codes in expect.items():
        assert requantize(vals, 1, 0, FixedFormat(4, 4, overflow=mode)).tolist() == codes, mode
    assert requantize(np.array([17, -1]), 1, 0, FixedFormat(4, 4, signed=False, overflow="WRAP")).tolist() == [1, 15]
    assert requantize(np.array([3]), 3, 2, FixedFormat(8, 4)).tolist() == [36]  # 9/4 = 2.25 -> 36 * 2**-4
    # shifts beyond int64: only sign and nonzeroness survive
    assert requantize(np.array([-1, 1, 0]), 1, 90, FixedFormat(8, 4)).tolist() == [-1, 0, 0]
    assert requantize(np.array([-1, 1]), 1, 90, FixedFormat(8, 4, rounding="TRN_ZERO")).tolist() == [0, 0]
    with pytest.raises(ValueError, match="K-hot"):
        requantize(np.array([1]), 1, 0, FixedFormat(8, 4, k_hot=2))


@st.composite
def fixed_formats(draw: st.DrawFn) -> FixedFormat:
    signed = draw(st.booleans())
    overflow = draw(st.sampled_from([o for o in OVERFLOW_MODES if signed or o != "WRAP_SM"]))
    return FixedFormat(draw(st.integers(1, 16)), draw(st.integers(-4, 20)), signed,
                       draw(st.sampled_from(ROUNDING_MODES)), overflow)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2 ** 20), 2 ** 20), min_size=1, max_size=8), st.integers(-(2 ** 10), 2 ** 10),
       st.integers(-6, 40), fixed_formats())
def test_requantize_matches_fixed_point(acc: list[int], multiplier: int, shift: int, fmt: FixedFormat) -> None:
    """Integer requantization == A1's torch ap_fixed cast of the same (exactly representable) reals."""
    a = np.array(acc, dtype=np.int64)
    ours = requantize(a, multiplier, shift, fmt)
    real = torch.from_numpy(a * multiplier).double() * 2.0 ** -shift  # exact: |a*m| < 2**31
    theirs = fixed_point_codes(real, fmt.width, fmt.int_bits, signed=fmt.signed, rounding=fmt.rounding,
                               overflow=fmt.overflow)
    np.testing.assert_array_equal(ours, theirs.numpy(), err_msg=fmt.name)
