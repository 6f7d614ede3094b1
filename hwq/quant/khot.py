"""K-hot (multiplier-free) weights: at most K nonzero signed power-of-two terms per weight (QFX, DESIGN.md section 2).

A K-hot weight is ``code * 2**scale_exp`` where the integer ``code`` is a sum of at most K terms
``+-2**s`` (``hwq.datatypes.khot_values``); a product with it is K shifts and adds.

* :func:`khot_quantize` — free-standing quantizer: per-tensor or per-channel power-of-two scale
  (the exponent minimising the squared error among a few candidates), shifts ``0..max_shift``.
* :func:`khot_fixed` — K-hot inside a fixed-point type ``FixedFormat(width, int_bits, k_hot=K)``:
  codes are K-hot integers in ``[min_code, max_code]``, value ``code * 2**-F``.

Nearest grid value; an exact midpoint goes to the value of smaller magnitude. Codes are
decomposed into terms by the non-adjacent form (NAF), which has the fewest nonzero signed
power-of-two digits of any representation, so a K-hot code yields at most K terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from hwq.datatypes import FixedFormat, khot_values

__all__ = ["KHotResult", "khot_quantize", "khot_fixed", "khot_fixed_codes", "khot_grid", "fixed_khot_grid",
           "nearest_on_grid", "naf_terms"]


@dataclass(frozen=True)
class KHotResult:
    """Output of :func:`khot_quantize`.

    Attributes:
        values: dequantized weights, same shape and dtype as the input.
        codes: int64 integer K-hot values; ``values = codes * 2**scale_exp`` (broadcast along ``axis``).
        scale_exp: int64 power-of-two exponents, shape ``[channels]`` (per-channel) or ``[]``.
        term_signs: int8 ``[..., k]`` in {-1, 0, +1} (0 = unused slot), most significant term first.
        term_shifts: int64 ``[..., k]`` shift of each term (0 in unused slots).
        axis: the channel axis of ``scale_exp`` (None for per-tensor).
    """

    values: torch.Tensor
    codes: torch.Tensor
    scale_exp: torch.Tensor
    term_signs: torch.Tensor
    term_shifts: torch.Tensor
    axis: int | None


@lru_cache(maxsize=64)
def _grid_cached(k: int, max_shift: int) -> torch.Tensor:
    return torch.tensor(khot_values(k, max_shift), dtype=torch.float64)


def khot_grid(k: int, max_shift: int) -> torch.Tensor:
    """Sorted float64 tensor of all integers with <= ``k`` signed power-of-two terms, shifts 0..max_shift."""
    if k < 1 or max_shift < 0:
        raise ValueError(f"k must be >= 1 and max_shift >= 0, got k={k}, max_shift={max_shift}")
    return _grid_cached(int(k), int(max_shift))


@lru_cache(maxsize=64)
def _fixed_grid_cached(k: int, width: int, signed: bool) -> torch.Tensor:
    fmt = FixedFormat(width, 0, signed)
    g = _grid_cached(k, width)
    return g[(g >= fmt.min_code) & (g <= fmt.max_code)].clone()


def fixed_khot_grid(k: int, width: int, signed: bool = True) -> torch.Tensor:
    """K-hot integer codes that fit a W-bit (signed two's-complement or unsigned) code, sorted float64."""
    return _fixed_grid_cached(int(k), int(width), bool(signed))


def nearest_on_grid(v: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Nearest value of sorted ``grid`` to each element of float64 ``v``; ties to the smaller magnitude.

    Values beyond the grid ends saturate to them.
    """
    idx = torch.searchsorted(grid, v.contiguous())
    hi = grid[idx.clamp(max=grid.numel() - 1)]
    lo = grid[(idx - 1).clamp(min=0)]
    d_lo, d_hi = v - lo, hi - v
    take_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi.abs() < lo.abs()))
    return torch.where(take_hi, hi, lo)


def naf_terms(codes: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-adjacent-form terms of int64 ``codes`` packed into ``k`` slots, most significant first.

    Returns ``(signs int8 [..., k], shifts int64 [..., k])``; raises ``ValueError`` if a code
    needs more than ``k`` terms.
    """
    n = codes.to(torch.int64).clone()
    max_bits = int(n.abs().max().item()).bit_length() + 2 if n.numel() else 1
    digits = []
    for _ in range(max_bits):
        odd = torch.remainder(n, 2) == 1
        d = torch.where(odd, 2 - torch.remainder(n, 4), torch.zeros_like(n))  # +1 or -1 when odd
        digits.append(d)
        n = torch.div(n - d, 2, rounding_mode="floor")
    dig = torch.stack(digits[::-1], dim=-1)  # most significant first
    shifts_all = torch.arange(max_bits - 1, -1, -1, dtype=torch.int64).expand_as(dig)
    nz = dig != 0
    count = nz.sum(-1)
    if codes.numel() and int(count.max()) > k:
        raise ValueError(f"a code needs {int(count.max())} power-of-two terms > k={k}")
    slot = torch.cumsum(nz.to(torch.int64), dim=-1) - 1
    slot = torch.where(nz, slot, torch.full_like(slot, k))  # dump zero digits into an extra slot
    signs = torch.zeros(dig.shape[:-1] + (k + 1,), dtype=torch.int64)
    shifts = torch.zeros_like(signs)
    signs.scatter_(-1, slot, dig)
    shifts.scatter_(-1, slot, torch.where(nz, shifts_all, torch.zeros_like(shifts_all)))
    # the dump slot received arbitrary zero-digit writes: drop it
    return signs[..., :k].to(torch.int8), shifts[..., :k]


def _per_channel_view(x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """``x`` as ``[channels, -1]`` (or ``[1, -1]`` for per-tensor)."""
    if axis is None:
        return x.reshape(1, -1)
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def khot_quantize(w: torch.Tensor, k: int, *, max_shift: int = 6, per_channel: bool = True, axis: int = 0,
                  scale_exp: torch.Tensor | int | None = None, search: int = 4) -> KHotResult:
    """Quantize ``w`` to K-hot values ``code * 2**scale_exp`` (nearest; vectorised).

    Args:
        w: weights (any float dtype).
        k: maximum number of nonzero signed power-of-two terms per weight (>= 1).
        max_shift: largest term shift in the integer code (codes in ``khot_values(k, max_shift)``).
        per_channel: one exponent per slice along ``axis`` (else one per tensor).
        axis: channel axis (output channels: 0 for Conv/Linear weights).
        scale_exp: fixed exponent(s) to use instead of the search (int, or int tensor ``[channels]``).
        search: number of candidate exponents tried below the absmax-fitting one (squared error picks).

    Returns:
        :class:`KHotResult`.
    """
    grid = khot_grid(k, max_shift)
    ax = (axis % w.dim()) if per_channel and w.dim() > 0 else None
    x = _per_channel_view(w.detach().to(torch.float64), ax)  # [C, N]
    c = x.shape[0]
    if scale_exp is None:
        absmax = x.abs().amax(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
        top = torch.ceil(torch.log2(absmax / grid[-1])).to(torch.int64)  # absmax fits without clipping
        cands = torch.stack([top - j for j in range(search + 1)], dim=1)  # [C, S]
        errs = []
        for j in range(cands.shape[1]):
            s = torch.pow(2.0, cands[:, j].to(torch.float64)).unsqueeze(1)
            q = nearest_on_grid(x / s, grid) * s
            errs.append(((q - x) ** 2).sum(1))
        best = torch.stack(errs, 1).argmin(1)
        exps = cands.gather(1, best.unsqueeze(1)).squeeze(1)
    else:
        exps = torch.as_tensor(scale_exp, dtype=torch.int64).reshape(-1).expand(c).clone()
    s = torch.pow(2.0, exps.to(torch.float64)).unsqueeze(1)
    codes2d = nearest_on_grid(x / s, grid)
    vals2d = codes2d * s
    if ax is None:
        shape_back = lambda t: t.reshape(w.shape)  # noqa: E731
        exps_out = exps.reshape(())
    else:
        moved = list(w.movedim(ax, 0).shape)
        shape_back = lambda t: t.reshape(moved).movedim(0, ax)  # noqa: E731
        exps_out = exps
    codes = shape_back(codes2d).to(torch.int64)
    signs, shifts = naf_terms(codes, k)
    return KHotResult(shape_back(vals2d).to(w.dtype), codes, exps_out, signs, shifts, ax)


def khot_fixed_codes(x: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Integer codes (int64) of ``x`` in fixed-point type ``fmt`` restricted to ``fmt.k_hot`` terms.

    Nearest K-hot code in ``[min_code, max_code]`` (saturating); ``fmt.rounding``/``fmt.overflow``
    do not apply (a K-hot grid has no single LSB to round at).
    """
    if fmt.k_hot is None:
        raise ValueError(f"{fmt.name} has no k_hot; use hwq.quant.fixed.cast")
    grid = fixed_khot_grid(fmt.k_hot, fmt.width, fmt.signed)
    y = x.detach().to(torch.float64) * 2.0 ** fmt.frac_bits
    return nearest_on_grid(y, grid).to(torch.int64)


def khot_fixed(x: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Dequantized ``code * 2**-F`` of :func:`khot_fixed_codes`, same shape and dtype as ``x``."""
    codes = khot_fixed_codes(x, fmt)
    return (codes.to(torch.float64) * 2.0 ** -fmt.frac_bits).to(x.dtype)


def khot_term_count(k: int, max_shift: int) -> int:
    """Number of distinct K-hot codes (grid size), for reports."""
    return len(khot_values(k, max_shift))


def bits_for_khot(k: int, max_shift: int) -> int:
    """Bits to store one K-hot code as a table index (ceil(log2(grid size)))."""
    return math.ceil(math.log2(khot_term_count(k, max_shift)))
