"""Weight quantizers: INT (symmetric / zero point), FP, BitMoD and ANT mixtures, MX.

Every grid, code assignment and mixture member list comes from :mod:`hwq.datatypes`.

Layout and scales
-----------------
A weight tensor is viewed as a matrix ``[out, K]``: Linear weights as they are, Conv
weights ``[out, in, kh, kw]`` flattened row-major to ``[out, in*kh*kw]`` (input channel
slowest, kernel column fastest, i.e. ``w.reshape(out, -1)``). Each row is split into
groups of ``group_size`` consecutive weights (``None``/0: one group per row; MX always
uses blocks of ``MX_BLOCK``). ``per_tensor=True`` uses one scale for the whole tensor.

Scales are what the hardware stores: an unsigned integer ``scale_int`` per group of
``scale_bits`` bits (``Mixture.scale_bits`` for mixtures, ``GROUP_META_BITS`` for single
formats) times a float ``row_scale`` per output row (folded into requantization)::

    S_g       = max|w_g| / (max|grid| * 2**-frac_bits)          # ideal absmax scale
    row_scale = max_g S_g / (2**scale_bits - 1)                 # max over members too
    scale_int = max(1, ceil(S_g / row_scale))                   # >= S_g: nothing clips
    value     = decode(code) * 2**-frac_bits * scale_int * row_scale

Rounding goes to the nearest grid value; an exact midpoint goes to the lower value.
A mixture picks, per group, the member with the least squared error (ties: lowest
selector). MX: a shared power-of-two scale ``2**X`` per block of 32 with
``X = floor(log2 max|w_b|) - floor(log2 max|element|)`` (OCP MX), elements saturate;
``row_scale = 2**X_min`` and ``scale_int = 2**(X - X_min)`` (the exponent spread per row is
capped at ``MX_MAX_EXPONENT_SPREAD``; blocks below use the coarser ``X_min``).

BitMoD reference mode (``scales="float"``)
------------------------------------------
BitMoD's reference quantizer keeps a float scale per group instead of the hardware's
integer one: per member, ``unit = clamp(max|w_g| / max|grid|, 1e-5, 1e4)`` (real units per
integer grid value; the clamp is the reference's), each ``w / unit`` to the nearest grid value
(midpoint to the lower one, ends saturate) and, for a mixture, the member with the least
squared error (ties: lowest selector, as the reference's strict ``<`` update). The result has
``float_scale [out, n_groups]`` (float64, real units per integer grid value) set, and
``scale_int``/``row_scale`` hold no hardware scale (zeros / ones): the golden model and the
RTL need the integer form, which stays the default. Supported for ``int``, ``fp``, ``bitmod``
and ``ant`` (the symmetric absmax formats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from hwq.datatypes import (
    DATATYPES,
    DEFAULT_GROUP_SIZE,
    GROUP_META_BITS,
    MX_BLOCK,
    Datatype,
    Mixture,
    resolve,
)

#: Largest exponent difference (bits) between blocks of one row that MX scale_int encodes.
MX_MAX_EXPONENT_SPREAD = 30
# Relative slack when taking ceil(S / row_scale): float division of an exact multiple may land
# one ulp above the integer; a slack of 1e-9 of a step never changes any rounding decision.
_CEIL_SLACK = 1e-9
#: ``scales=`` values: "int" (hardware: integer per group x float per row), "float" (BitMoD reference).
SCALE_MODES: tuple[str, ...] = ("int", "float")
#: Formats the float (reference) scale mode supports.
FLOAT_SCALE_FORMATS: tuple[str, ...] = ("int", "fp", "bitmod", "ant")
#: Clamp of the reference quantizer's float scale (``scale_fp.clamp(min=1e-5, max=1e4)``).
FLOAT_SCALE_CLAMP: tuple[float, float] = (1e-5, 1e4)


@dataclass
class QuantizedWeight:
    """Codes and scales of one quantized weight matrix (see module docstring for the layout).

    Attributes:
        codes: ``[out, K]`` int64 bit patterns (decode with the selected member's table).
        selectors: ``[out, n_groups]`` int64 mixture member index (0 for single formats).
        scale_int: ``[out, n_groups]`` int64 unsigned per-group integer scale.
        row_scale: ``[out]`` float64 per-row scale (real units per scale_int unit per grid unit
            times 2**frac_bits).
        zero_point: ``[out, n_groups]`` int64 (``int_asym`` only; zeros otherwise).
        fmt, bits, group_size: the request (``group_size`` = weights per group, resolved).
        datatypes: member datatype names by selector.
        shape: original tensor shape (``dequantize`` restores it).
        scale_bits: bits of ``scale_int`` (0 with float scales).
        float_scale: ``[out, n_groups]`` float64 real units per integer grid value when quantized
            with ``scales="float"`` (BitMoD reference mode), else None.
    """

    codes: torch.Tensor
    selectors: torch.Tensor
    scale_int: torch.Tensor
    row_scale: torch.Tensor
    zero_point: torch.Tensor
    fmt: str
    bits: int
    group_size: int
    datatypes: tuple[str, ...]
    shape: tuple[int, ...]
    scale_bits: int
    float_scale: torch.Tensor | None = None

    @property
    def frac_bits(self) -> int:
        """Fractional bits of the integer grid (equal for all members)."""
        return DATATYPES[self.datatypes[0]].frac_bits

    @property
    def n_groups(self) -> int:
        return int(self.scale_int.shape[1])

    def values(self) -> torch.Tensor:
        """Integer grid values ``[out, K]`` (int64, zero point already subtracted)."""
        table = decode_table(self.datatypes).to(self.codes.device)
        sel = self.selectors.repeat_interleave(self.group_size, dim=1)
        vals = table[sel, self.codes]
        if self.fmt == "int_asym":
            vals = vals - self.zero_point.repeat_interleave(self.group_size, dim=1)
        return vals

    def dequantize(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Real weights in the original shape: ``value * 2**-frac_bits * scale_int * row_scale``
        (``value * float_scale`` with float scales)."""
        if self.float_scale is not None:
            unit = self.float_scale.to(torch.float64)
            w = self.values().to(torch.float64) * unit.repeat_interleave(self.group_size, dim=1)
            return w.reshape(self.shape).to(dtype)
        unit = self.scale_int.to(torch.float64) * self.row_scale.to(torch.float64)[:, None]
        unit = unit * 2.0 ** -self.frac_bits
        w = self.values().to(torch.float64) * unit.repeat_interleave(self.group_size, dim=1)
        return w.reshape(self.shape).to(dtype)


@lru_cache(maxsize=None)
def decode_table(datatypes: tuple[str, ...]) -> torch.Tensor:
    """``[n_members, 2**bits]`` int64 decode table of the given members."""
    return torch.tensor([DATATYPES[n].decode for n in datatypes], dtype=torch.int64)


@lru_cache(maxsize=None)
def _grid_tables(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grid values float64, midpoints float64, code of each grid value int64) of one datatype."""
    dt = DATATYPES[name]
    grid = torch.tensor(dt.grid, dtype=torch.float64)
    mids = (grid[1:] + grid[:-1]) / 2
    codes = torch.tensor([dt.encode(v) for v in dt.grid], dtype=torch.int64)
    return grid, mids, codes


def round_to_grid(x: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest grid value of datatype ``name`` for every element of ``x`` (grid units, float64).

    Exact midpoints go to the lower value; values beyond the grid saturate to its ends.
    Returns ``(values float64, codes int64)``.
    """
    grid, mids, codes = (t.to(x.device) for t in _grid_tables(name))
    lo, hi = DATATYPES[name].grid[0], DATATYPES[name].grid[-1]
    if len(grid) == hi - lo + 1:  # uniform integer grid (INT): nearest = ceil(x - 1/2), same ties
        v = torch.ceil(x - 0.5).clamp_(lo, hi)
        return v, codes[(v - lo).to(torch.int64)]
    idx = torch.searchsorted(mids, x.contiguous(), right=False)  # count of midpoints < x
    return grid[idx], codes[idx]


def _members(fmt: str, bits: int) -> tuple[tuple[str, ...], int]:
    """(member datatype names, scale_bits) for a format family at ``bits``."""
    entry = resolve(fmt, bits)
    if isinstance(entry, Mixture):
        return entry.members, entry.scale_bits
    return (entry.name,), GROUP_META_BITS


def _as_matrix(w: torch.Tensor) -> torch.Tensor:
    if w.dim() < 2:
        raise ValueError(f"weight must have >= 2 dimensions [out, ...], got shape {tuple(w.shape)}")
    return w.detach().reshape(w.shape[0], -1).to(torch.float64)


def _resolve_group(k: int, group_size: int | None, what: str = "row") -> int:
    if not group_size:
        return k
    if group_size < 0:
        raise ValueError(f"group size must be positive (or 0/None for one group per row), got {group_size}")
    if k % group_size:
        raise ValueError(f"group size {group_size} does not divide the {what} length {k}; "
                         f"choose a divisor of {k} or group size 0 (one group per row)")
    return group_size


def quantize_weight_codes(w: torch.Tensor, fmt: str, bits: int, *, group_size: int | None = DEFAULT_GROUP_SIZE,
                          per_tensor: bool = False, scales: str = "int") -> QuantizedWeight:
    """Quantize ``w`` (``[out, ...]``) to format family ``fmt`` at ``bits``; return codes and scales.

    ``group_size`` weights per group along the flattened input axis (None/0: per output
    channel); ``per_tensor`` one scale for the whole tensor (not for ``mx``). ``scales``:
    ``"int"`` (default, what the hardware stores) or ``"float"`` (BitMoD's reference quantizer:
    float per-group absmax scales, see the module docstring). Raises ValueError for unknown
    formats/bits/scale modes or a group size that does not divide a row.
    """
    if scales not in SCALE_MODES:
        raise ValueError(f"unknown scales mode {scales!r}; choose one of {', '.join(SCALE_MODES)}")
    if scales == "float" and fmt not in FLOAT_SCALE_FORMATS:
        raise ValueError(f"scales='float' (BitMoD reference mode) supports formats {', '.join(FLOAT_SCALE_FORMATS)}, "
                         f"not {fmt!r}")
    members, scale_bits = _members(fmt, bits)
    shape = tuple(w.shape)
    mat = _as_matrix(w)
    out, k = mat.shape
    if scales == "float":
        if per_tensor:
            flat = quantize_weight_codes(mat.reshape(1, -1), fmt, bits, group_size=0, scales="float")
            rep = lambda t: t.expand(out, -1).clone()  # noqa: E731 - same value for every row
            return QuantizedWeight(flat.codes.reshape(out, k), rep(flat.selectors), rep(flat.scale_int),
                                   torch.ones(out, dtype=torch.float64), rep(flat.zero_point), fmt, bits, k,
                                   members, shape, 0, rep(flat.float_scale))
        return _quantize_float_scales(mat, members, fmt, bits, _resolve_group(k, group_size), shape)
    if fmt == "mx":
        if per_tensor:
            raise ValueError("mx uses a shared exponent per block of 32 values; per-tensor scaling does not apply")
        return _quantize_mx(mat, bits, members[0], shape)
    if per_tensor:
        flat = quantize_weight_codes(mat.reshape(1, -1), fmt, bits, group_size=0)
        rep = lambda t: t.expand(out, -1).clone()  # noqa: E731 - same value for every row
        return QuantizedWeight(flat.codes.reshape(out, k), rep(flat.selectors), rep(flat.scale_int),
                               flat.row_scale.expand(out).clone(), rep(flat.zero_point), fmt, bits, k,
                               members, shape, scale_bits)
    gs = _resolve_group(k, group_size)
    g = k // gs
    wg = mat.reshape(out, g, gs)
    smax = float(2 ** scale_bits - 1)
    if fmt == "int_asym":
        return _quantize_asym(wg, members[0], bits, scale_bits, shape, gs)

    # Ideal absmax scale per (member, row, group) in real units per grid unit * 2**frac.
    amax = wg.abs().amax(dim=2)  # [out, g]
    dts = [DATATYPES[m] for m in members]
    ideal = torch.stack([amax / (dt.max_abs * 2.0 ** -dt.frac_bits) for dt in dts])  # [m, out, g]
    row_scale = ideal.amax(dim=(0, 2)) / smax  # [out]
    row_scale = torch.where(row_scale > 0, row_scale, torch.ones_like(row_scale))
    scale_int = torch.ceil(ideal / row_scale[None, :, None] - _CEIL_SLACK).clamp_(1, smax)  # [m, out, g]
    scale_int = torch.where(ideal > 0, scale_int, torch.zeros_like(scale_int))

    has_zero = bool((amax <= 0).any())
    best_err = best_code = best_sel = None
    for s, dt in enumerate(dts):
        unit = scale_int[s] * row_scale[:, None] * 2.0 ** -dt.frac_bits  # real per grid unit [out, g]
        if has_zero:
            safe = torch.where(unit > 0, unit, torch.ones_like(unit))
            vals, codes = round_to_grid(wg / safe[..., None], dt.name)
            vals = torch.where(unit[..., None] > 0, vals, torch.zeros_like(vals))
            codes = torch.where(unit[..., None] > 0, codes, torch.full_like(codes, dt.encode(0)))
        else:
            vals, codes = round_to_grid(wg / unit[..., None], dt.name)
        err = ((vals * unit[..., None] - wg) ** 2).sum(dim=2)  # [out, g]
        if best_err is None:
            best_err, best_code = err, codes
            best_sel = torch.zeros_like(err, dtype=torch.int64)
        else:
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_code = torch.where(better[..., None], codes, best_code)
            best_sel = torch.where(better, torch.full_like(best_sel, s), best_sel)
    chosen_scale = torch.gather(scale_int, 0, best_sel[None]).squeeze(0)
    return QuantizedWeight(best_code.reshape(out, k), best_sel, chosen_scale.to(torch.int64), row_scale,
                           torch.zeros_like(best_sel), fmt, bits, gs, members, shape, scale_bits)


def _quantize_float_scales(mat: torch.Tensor, members: tuple[str, ...], fmt: str, bits: int, gs: int,
                           shape: tuple[int, ...]) -> QuantizedWeight:
    """BitMoD reference mode: float absmax scale per (member, group), least-squared-error member."""
    out, k = mat.shape
    wg = mat.reshape(out, k // gs, gs)
    amax = wg.abs().amax(dim=2)  # [out, g]
    lo, hi = FLOAT_SCALE_CLAMP
    best_err = best_code = best_sel = best_unit = None
    for s, name in enumerate(members):
        dt = DATATYPES[name]
        unit = (amax / float(dt.max_abs)).clamp(lo, hi)  # real units per integer grid value
        vals, codes = round_to_grid(wg / unit[..., None], name)
        err = ((vals * unit[..., None] - wg) ** 2).sum(dim=2)
        if best_err is None:
            best_err, best_code, best_unit = err, codes, unit
            best_sel = torch.zeros_like(err, dtype=torch.int64)
        else:
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_code = torch.where(better[..., None], codes, best_code)
            best_unit = torch.where(better, unit, best_unit)
            best_sel = torch.where(better, torch.full_like(best_sel, s), best_sel)
    zeros = torch.zeros_like(best_sel)
    return QuantizedWeight(best_code.reshape(out, k), best_sel, zeros, torch.ones(out, dtype=torch.float64), zeros,
                           fmt, bits, gs, members, shape, 0, best_unit)


def _quantize_asym(wg: torch.Tensor, name: str, bits: int, scale_bits: int, shape: tuple[int, ...],
                   gs: int) -> QuantizedWeight:
    """Asymmetric INT: ``value = (code - zero_point) * scale``; the range always contains 0."""
    out, g, _ = wg.shape
    levels = float(2 ** bits - 1)
    smax = float(2 ** scale_bits - 1)
    lo = wg.amin(dim=2).clamp(max=0)
    hi = wg.amax(dim=2).clamp(min=0)
    ideal = (hi - lo) / levels
    row_scale = ideal.amax(dim=1) / smax
    row_scale = torch.where(row_scale > 0, row_scale, torch.ones_like(row_scale))
    scale_int = torch.ceil(ideal / row_scale[:, None] - _CEIL_SLACK).clamp_(1, smax)
    scale_int = torch.where(ideal > 0, scale_int, torch.zeros_like(scale_int))
    unit = scale_int * row_scale[:, None]
    safe = torch.where(unit > 0, unit, torch.ones_like(unit))
    zp_real = -lo / safe
    zero_point = torch.ceil(zp_real - 0.5).clamp_(0, levels)  # nearest, midpoint to lower
    vals, codes = round_to_grid(wg / safe[..., None] + zero_point[..., None], name)
    codes = torch.where(unit[..., None] > 0, codes, zero_point[..., None].to(torch.int64))
    sel = torch.zeros(out, g, dtype=torch.int64)
    return QuantizedWeight(codes.reshape(out, -1), sel, scale_int.to(torch.int64), row_scale,
                           zero_point.to(torch.int64), "int_asym", bits, gs, (name,), shape, scale_bits)


def _quantize_mx(mat: torch.Tensor, bits: int, name: str, shape: tuple[int, ...]) -> QuantizedWeight:
    """MX: shared power-of-two scale per block of ``MX_BLOCK`` values, elements saturate."""
    out, k = mat.shape
    gs = _resolve_group(k, MX_BLOCK, "row (MX block of 32)")
    dt: Datatype = DATATYPES[name]
    wg = mat.reshape(out, k // gs, gs)
    amax = wg.abs().amax(dim=2)
    _, e = torch.frexp(amax)  # amax = m * 2**e, m in [0.5, 1): floor(log2 amax) = e - 1
    emax_elem = math.floor(math.log2(dt.max_abs * 2.0 ** -dt.frac_bits))
    x = (e - 1 - emax_elem).to(torch.int64)
    nonzero = amax > 0
    big = torch.full_like(x, 10 ** 6)
    xmax = torch.where(nonzero, x, -big).amax(dim=1)
    xmin = torch.where(nonzero, x, big).amin(dim=1)
    xmin = torch.maximum(xmin, xmax - MX_MAX_EXPONENT_SPREAD)
    xmin = torch.where(xmax > -big[:, 0], xmin, torch.zeros_like(xmin))  # all-zero rows
    x = torch.where(nonzero, torch.maximum(x, xmin[:, None]), xmin[:, None])
    scale_int = torch.where(nonzero, 2 ** (x - xmin[:, None]), torch.zeros_like(x))
    row_scale = torch.pow(2.0, xmin.to(torch.float64))
    unit = scale_int.to(torch.float64) * row_scale[:, None] * 2.0 ** -dt.frac_bits
    safe = torch.where(unit > 0, unit, torch.ones_like(unit))
    vals, codes = round_to_grid(wg / safe[..., None], name)
    codes = torch.where(unit[..., None] > 0, codes, torch.full_like(codes, dt.encode(0)))
    sel = torch.zeros_like(scale_int)
    return QuantizedWeight(codes.reshape(out, k), sel, scale_int, row_scale, torch.zeros_like(sel), "mx", bits,
                           gs, (name,), shape, MX_MAX_EXPONENT_SPREAD + 1)


def quantize_weight(w: torch.Tensor, fmt: str, bits: int, *, group_size: int | None = DEFAULT_GROUP_SIZE,
                    per_tensor: bool = False, scales: str = "int") -> torch.Tensor:
    """Fake-quantized (dequantized) copy of ``w`` in its shape and dtype; see :func:`quantize_weight_codes`
    (``scales="float"``: BitMoD's reference quantizer with float per-group scales)."""
    q = quantize_weight_codes(w, fmt, bits, group_size=group_size, per_tensor=per_tensor, scales=scales)
    return q.dequantize(w.dtype if w.dtype.is_floating_point else torch.float32)


def weight_error(w: torch.Tensor, wq: torch.Tensor) -> tuple[float, float]:
    """(MSE, SQNR in dB) of a quantized tensor against the original; SQNR is inf when exact."""
    w64, q64 = w.detach().to(torch.float64), wq.detach().to(torch.float64)
    mse = float(((w64 - q64) ** 2).mean())
    sig = float((w64 ** 2).mean())
    sqnr_db = math.inf if mse == 0 else (10 * math.log10(sig / mse) if sig > 0 else -math.inf)
    return mse, sqnr_db
