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
