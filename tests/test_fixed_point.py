"""ap_fixed / ap_ufixed casts (hwq.quant.fixed) against an independent integer + Fraction reference."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwq.datatypes import OVERFLOW_MODES, ROUNDING_MODES, FixedFormat
from hwq.quant.fixed import cast, fixed_point, fixed_point_codes


# ---------------------------------------------------------------------------------------------
# Reference: python integers (infinite two's complement) and exact fractions, DESIGN.md section 2.
# ---------------------------------------------------------------------------------------------
def ref_code(x: Fraction, w: int, i: int, signed: bool, q: str, o: str) -> int:
    f = w - i
    y = x * Fraction(2) ** f
    fl = y.numerator // y.denominator  # floor
    rem = y - fl
    half = Fraction(1, 2)
    neg = y < 0
    inc = {
        "TRN": False,
        "TRN_ZERO": neg and rem != 0,
        "RND": rem >= half,
        "RND_ZERO": rem > half or (rem == half and neg),
        "RND_MIN_INF": rem > half,
        "RND_INF": rem > half or (rem == half and not neg),
        "RND_CONV": rem > half or (rem == half and fl % 2 == 1),
    }[q]
    r = fl + int(inc)
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
    mask = (1 << w) - 1
    sign_bit = 1 << (w - 1)

    def from_pattern(v: int) -> int:
        return v - (1 << w) if signed and v & sign_bit else v

    pattern = r & mask
    if o == "WRAP":
        return from_pattern(pattern)
    sym_min = o == "SAT_SYM" and signed and w > 1 and r == lo
    if lo <= r <= hi and not sym_min:
        return r
    if o == "SAT":
        return hi if r > hi else lo
    if o == "SAT_ZERO":
        return 0
    if o == "SAT_SYM":
        if r > hi:
            return hi
        return -hi if signed and w > 1 else lo
    assert o == "WRAP_SM" and signed
    ld = (fl >> w) & 1  # first discarded integer bit, before rounding
    ro = (pattern >> (w - 1)) & 1
    if ld != ro:
        pattern = ~pattern & mask
        pattern = (pattern & ~sign_bit) | (ld << (w - 1))
    return from_pattern(pattern)


def check(values: list[float], w: int, i: int, signed: bool, q: str, o: str) -> None:
    x = torch.tensor(values, dtype=torch.float64)
    got = fixed_point_codes(x, w, i, signed=signed, rounding=q, overflow=o).tolist()
    want = [ref_code(Fraction(v), w, i, signed, q, o) for v in values]
    bad = [(v, g, r) for v, g, r in zip(values, got, want) if g != r]
    assert not bad, f"ap_fixed<{w},{i},{q},{o}> signed={signed}: (x, got, want) {bad[:5]}"
    vals = fixed_point(x, w, i, signed=signed, rounding=q, overflow=o)
    assert vals.dtype == torch.float64 and vals.shape == x.shape
    assert vals.tolist() == [c * 2.0 ** (i - w) for c in want]


def modes(signed: bool) -> list[tuple[str, str]]:
    return [(q, o) for q in ROUNDING_MODES for o in OVERFLOW_MODES if signed or o != "WRAP_SM"]


# ---------------------------------------------------------------------------------------------
# Documented HLS examples (Vitis HLS user guide, ap_fixed quantization / overflow modes).
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q,x,want", [
    ("RND", 1.25, 1.5), ("RND", -1.25, -1.0), ("RND_ZERO", 1.25, 1.0), ("RND_ZERO", -1.25, -1.0),
    ("RND_MIN_INF", 1.25, 1.0), ("RND_MIN_INF", -1.25, -1.5), ("RND_INF", 1.25, 1.5), ("RND_INF", -1.25, -1.5),
    ("RND_CONV", 0.75, 1.0), ("RND_CONV", -1.25, -1.0), ("TRN", 1.25, 1.0), ("TRN", -1.25, -1.5),
    ("TRN_ZERO", 1.25, 1.0), ("TRN_ZERO", -1.25, -1.0),
])
def test_rounding_examples(q: str, x: float, want: float) -> None:
    assert fixed_point(torch.tensor([x]), 3, 2, rounding=q, overflow="SAT").item() == want


@pytest.mark.parametrize("o,x,want", [
    ("SAT", 19.0, 7.0), ("SAT", -19.0, -8.0), ("SAT_ZERO", 19.0, 0.0), ("SAT_ZERO", -19.0, 0.0),
    ("SAT_SYM", 19.0, 7.0), ("SAT_SYM", -19.0, -7.0), ("SAT_SYM", -8.0, -7.0),
    ("WRAP", 19.0, 3.0), ("WRAP", -19.0, -3.0), ("WRAP_SM", 19.0, -4.0), ("WRAP_SM", -19.0, 2.0),
])
def test_overflow_examples(o: str, x: float, want: float) -> None:
    assert fixed_point(torch.tensor([x]), 4, 4, rounding="RND", overflow=o).item() == want


# ---------------------------------------------------------------------------------------------
# Exhaustive small formats: every mode, dyadic inputs finer than the grid, well past both ends.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("w", [1, 2, 3, 4])
def test_exhaustive_small_formats(w: int) -> None:
    for i, signed in itertools.product((-2, 1, w + 3), (True, False)):
        f = w - i
        step = 2.0 ** -(f + 2)  # quarter LSB: hits exact ties and both sides of them
        span = 2 * (1 << w) * 4  # two full wrap periods in quarter LSBs
        values = [k * step for k in range(-span, span + 1)]
        for q, o in modes(signed):
            check(values, w, i, signed, q, o)


# ---------------------------------------------------------------------------------------------
# Hypothesis: wide formats, exact ties at many binary points, both overflow ends, huge wraps.
# ---------------------------------------------------------------------------------------------
formats = st.tuples(st.integers(1, 32), st.integers(-12, 44), st.booleans(),
                    st.sampled_from(ROUNDING_MODES), st.sampled_from(OVERFLOW_MODES)).filter(
    lambda t: t[2] or t[4] != "WRAP_SM")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(fmt=formats, data=st.data())
def test_ties_every_binary_point(fmt: tuple, data: st.DataObject) -> None:
    w, i, signed, q, o = fmt
    f = w - i
    lim = 1 << (w + 1)
    ms = data.draw(st.lists(st.integers(-lim, lim), min_size=1, max_size=40))
    extra = data.draw(st.integers(0, 3))  # sub-LSB bits below the tie bit
    values = [(m + 0.5) * 2.0 ** -f for m in ms]  # exact ties
    values += [(m + 0.5 + 2.0 ** -(extra + 2)) * 2.0 ** -f for m in ms]  # just above the tie
    values += [(m + 0.5 - 2.0 ** -(extra + 2)) * 2.0 ** -f for m in ms]  # just below the tie
    check(values, w, i, signed, q, o)


@SETTINGS
@given(fmt=formats, data=st.data())
def test_overflow_both_ends(fmt: tuple, data: st.DataObject) -> None:
    w, i, signed, q, o = fmt
    f = w - i
    ff = FixedFormat(w, i, signed, q, o)
    offsets = data.draw(st.lists(st.tuples(st.integers(-4, 4), st.sampled_from([0, 0.25, 0.5, 0.75])),
                                 min_size=1, max_size=20))
    big = data.draw(st.lists(st.integers(-(1 << 50), 1 << 50), max_size=10))  # many wrap periods
    values = []
    for d, frac in offsets:
        values += [(ff.max_code + d + frac) * 2.0 ** -f, (ff.min_code + d + frac) * 2.0 ** -f]
    values += [b * 2.0 ** -f for b in big]
    check(values, w, i, signed, q, o)


@SETTINGS
@given(fmt=formats, xs=st.lists(st.floats(-1e7, 1e7, allow_nan=False, allow_subnormal=False),
                                min_size=1, max_size=30))
def test_random_floats(fmt: tuple, xs: list[float]) -> None:
    w, i, signed, q, o = fmt
    check(xs, w, i, signed, q, o)


@SETTINGS
@given(w=st.integers(1, 32), i=st.integers(-6, 40), q=st.sampled_from(ROUNDING_MODES),
       xs=st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=30))
def test_wrap_sm(w: int, i: int, q: str, xs: list[float]) -> None:
    f = w - i
    xs = xs + [x * 2.0 ** (w - f) for x in xs]  # push many of them out of range
    check(xs, w, i, True, q, "WRAP_SM")


# ---------------------------------------------------------------------------------------------
# API details
# ---------------------------------------------------------------------------------------------
def test_dtype_shape_and_cast() -> None:
    x = torch.linspace(-3, 3, 24, dtype=torch.float32).reshape(2, 3, 4)
    y = fixed_point(x, 8, 3, rounding="RND", overflow="SAT")
    assert y.shape == x.shape and y.dtype == torch.float32
    fmt = FixedFormat(8, 3, True, "RND", "SAT")
    assert torch.equal(cast(x, fmt), y)
    assert torch.equal(fixed_point_codes(x, 8, 3, rounding="RND", overflow="SAT").to(torch.float32) / 32, y)


@pytest.mark.parametrize("kwargs", [dict(width=0, int_bits=0), dict(width=33, int_bits=1),
                                    dict(width=8, int_bits=2, rounding="ROUND"),
                                    dict(width=8, int_bits=2, overflow="CLAMP"),
                                    dict(width=8, int_bits=2, signed=False, overflow="WRAP_SM")])
def test_invalid_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        fixed_point(torch.zeros(3), **kwargs)


# ---------------------------------------------------------------------------------------------
# Learned binary point (hwq.quant.fixed_modules.LearnedFixedQuantizer)
# ---------------------------------------------------------------------------------------------
def test_learned_quantizer_forward_is_the_cast() -> None:
    from hwq.quant.fixed_modules import LearnedFixedQuantizer

    x = torch.randn(200, generator=torch.Generator().manual_seed(0)) * 3
    for q_mode, o_mode in (("RND", "SAT"), ("TRN", "WRAP"), ("RND_CONV", "SAT_SYM")):
        q = LearnedFixedQuantizer(6, 2.7, rounding=q_mode, overflow=o_mode)  # f rounds to F = 3
        assert q.frac_bits == 3 and q.fmt.int_bits == 3
        assert torch.equal(q(x), fixed_point(x, 6, 3, rounding=q_mode, overflow=o_mode))


def test_learned_quantizer_gradients() -> None:
    from hwq.quant.fixed_modules import LearnedFixedQuantizer

    q = LearnedFixedQuantizer(4, 1.0)  # ap_fixed<4,3>: codes -8..7, step 0.5, range [-4, 3.5]
    x = torch.tensor([0.3, 1.1, -2.2, 10.0, -10.0], requires_grad=True)
    q(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]  # STE inside the range, zero outside
    assert q.f.grad is not None and q.f.grad.item() != 0.0
    # clipped values dominate: more range (smaller f) would reduce the squared error
    q.f.grad = None
    x2 = torch.randn(1000, generator=torch.Generator().manual_seed(1)) * 20
    ((q(x2) - x2) ** 2).mean().backward()
    assert q.f.grad.item() > 0


def test_learned_binary_point_converges_to_least_squares() -> None:
    from hwq.quant.fixed_modules import LearnedFixedQuantizer, best_frac_bits

    x = torch.randn(1000, generator=torch.Generator().manual_seed(2)) * 2
    q = LearnedFixedQuantizer(5, 8.0)  # far too little range: almost everything saturates
    opt = torch.optim.Adam(q.parameters(), lr=0.1)
    first = last = None
    for _ in range(100):
        loss = ((q(x) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < 0.05 * first
    assert abs(q.frac_bits - best_frac_bits(x, 5)) <= 1


def test_fixed_qat_improves_toy_regression() -> None:
    from torch import nn

    from hwq.quant.fixed_modules import FixedQuantLinear

    gen = torch.Generator().manual_seed(3)
    teacher = torch.randn(4, 8, generator=gen)
    x = torch.randn(256, 8, generator=gen)
    y = x @ teacher.T
    fmt = FixedFormat(5, 1, True, "RND", "SAT")  # deliberately poor start: range [-1, 1)
    out = FixedFormat(8, 5, True, "RND", "SAT")
    m = FixedQuantLinear.from_float(nn.Linear(8, 4), weight_fixed=fmt, out_fixed=out, init="format")
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    losses = []
    for _ in range(120):
        loss = ((m(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    wq = m.weight_quant
    w = wq(m.weight.detach())
    assert torch.equal(w * 2.0 ** wq.frac_bits, torch.round(w * 2.0 ** wq.frac_bits))  # on the W-bit grid
    assert (w * 2.0 ** wq.frac_bits).abs().max() <= 16
