"""Golden integer model of a quantized linear layer (numpy int64 only, no floats).

What the accelerator computes, step by step:

1. decode every weight code with its group's datatype (:func:`decode_codes`);
2. per group, an integer partial sum of activation codes times weight values (:func:`group_psums`);
3. the bit-serial dequantization unit rescales each partial sum by the group's unsigned
   ``scale_int`` with shift-and-add (:func:`shift_add_multiply`) and accumulates
   (:func:`dequant_accumulate`);
4. requantization to an ``ap_fixed`` output (:func:`requantize`).

The real result is ``linear_int(x_int, qw) * row_scale[n] * x_scale * 2**-frac_bits``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwq.datatypes import DATATYPES, FixedFormat

_LIMIT = 1 << 62


def _i64(a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"golden model takes integer arrays, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def decode_codes(codes: Any, selectors: Any, group_size: int, datatypes: Sequence[str],
                 zero_point: Any | None = None) -> np.ndarray:
    """Integer weight values ``[N, K]`` of ``codes`` ``[N, K]``; group g of row n uses member ``selectors[n, g]``.

    ``zero_point`` ``[N, G]`` (asymmetric INT) is subtracted from the decoded values.
    """
    codes, sel = _i64(codes), _i64(selectors)
    table = np.array([DATATYPES[d].decode for d in datatypes], dtype=np.int64)
    sel_full = np.repeat(sel, group_size, axis=1)
    if sel_full.shape != codes.shape:
        raise ValueError(f"selectors {sel.shape} x group {group_size} do not cover codes {codes.shape}")
    values = table[sel_full, codes]
    if zero_point is not None:
        values = values - np.repeat(_i64(zero_point), group_size, axis=1)
    return values


def group_psums(x_int: Any, values: Any, group_size: int) -> np.ndarray:
    """Per-group integer partial sums ``[M, N, G]``: ``sum_k x[m, g*gs+k] * w[n, g*gs+k]``."""
    x, w = _i64(x_int), _i64(values)
    m, k = x.shape
    n, k2 = w.shape
    if k != k2 or k % group_size:
        raise ValueError(f"x {x.shape} and weights {w.shape} do not match in groups of {group_size}")
    g = k // group_size
    xs = x.reshape(m, g, group_size)
    ws = w.reshape(n, g, group_size)
    return np.einsum("mgk,ngk->mng", xs, ws, dtype=np.int64)


def dequant_accumulate(psums: Any, scale_int: Any) -> np.ndarray:
    """``[M, N]``: ``sum_g psums[m, n, g] * scale_int[n, g]`` (the dequantizer's work, exact)."""
    p, s = _i64(psums), _i64(scale_int)
    return (p * s[None, :, :]).sum(axis=2, dtype=np.int64)


def shift_add_multiply(value: Any, scale_int: Any, scale_bits: int) -> np.ndarray:
    """``value * scale_int`` the way the bit-serial dequantizer does it: one shift-add per scale bit.

    ``scale_int`` is unsigned with ``scale_bits`` bits; bit i of it adds ``value << i``.
    """
    v, s = np.broadcast_arrays(_i64(value), _i64(scale_int))
    if (s < 0).any() or (s >= (1 << scale_bits)).any():
        raise ValueError(f"scale_int must be an unsigned {scale_bits}-bit integer")
    acc = np.zeros(v.shape, dtype=np.int64)
    for i in range(scale_bits):
        bit = (s >> i) & 1
        acc = acc + np.where(bit == 1, v << i, 0)
    return acc


def linear_int(x_int: Any, qw: Any) -> np.ndarray:
    """Integer output ``[M, N]`` of a quantized linear layer (``qw``: :class:`hwq.quant.QuantizedWeight`).

    Conv weights are taken in their flattened ``[out, in*kh*kw]`` layout (``x_int`` must be
    the matching im2col rows).
    """
    if getattr(qw, "float_scale", None) is not None:
        raise ValueError("float per-group scales (BitMoD reference mode) have no integer form for the hardware; "
                         "quantize with scales='int' (the default)")
    zp = np.asarray(qw.zero_point) if qw.fmt == "int_asym" else None
    values = decode_codes(np.asarray(qw.codes), np.asarray(qw.selectors), qw.group_size, qw.datatypes, zp)
    x = _i64(x_int)
    bound = int(np.abs(x).max(initial=0)) * int(np.abs(values).max(initial=0)) * values.shape[1] * \
        int(np.asarray(qw.scale_int).max(initial=0))
    if bound >= _LIMIT:
        raise OverflowError("golden accumulation may exceed int64; use narrower activations")
    return dequant_accumulate(group_psums(x, values, qw.group_size), np.asarray(qw.scale_int))


def _round_shift(t: np.ndarray, s: int, rounding: str) -> np.ndarray:
    """``t / 2**s`` rounded per ap_fixed mode (``s`` >= 1), integers only."""
    floor = t >> s
    rem = t & ((1 << s) - 1)
    half = 1 << (s - 1)
    up_more, at_half, exact = rem > half, rem == half, rem == 0
    if rounding == "TRN":
        up = np.zeros_like(exact)
    elif rounding == "TRN_ZERO":
        up = (t < 0) & ~exact
    elif rounding == "RND":
        up = up_more | at_half
    elif rounding == "RND_ZERO":
        up = up_more | (at_half & (t < 0))
    elif rounding == "RND_MIN_INF":
        up = up_more
    elif rounding == "RND_INF":
        up = up_more | (at_half & (t >= 0))
    elif rounding == "RND_CONV":
        up = up_more | (at_half & ((floor & 1) == 1))
    else:
        raise ValueError(f"unknown rounding mode {rounding!r}")
    return floor + up.astype(np.int64)


def _overflow(q: np.ndarray, pre_floor: np.ndarray, out: FixedFormat) -> np.ndarray:
    """Apply ``out.overflow`` to rounded integer codes ``q``; ``pre_floor`` = codes before rounding (floor)."""
    lo, hi, w = out.min_code, out.max_code, out.width
    over = (q < lo) | (q > hi)
    mask = (1 << w) - 1

    def wrap(v: np.ndarray) -> np.ndarray:
        u = v & mask
        return u - ((u >> (w - 1)) & 1) * (1 << w) if out.signed else u

    mode = out.overflow
    if mode == "WRAP":
        return wrap(q)
    if mode == "SAT":
        return np.clip(q, lo, hi)
    if mode == "SAT_ZERO":
        return np.where(over, 0, q)
    if mode == "SAT_SYM":  # a 1-bit signed type has no -max: behaves like SAT, as in the HLS library
        return np.clip(q, -hi if out.signed and w > 1 else lo, hi)
    if mode == "WRAP_SM":
        v = q & mask
        sign = (v >> (w - 1)) & 1
        discarded = (pre_floor >> w) & 1
        flip = over & (discarded != sign)
        v = np.where(flip, ((~v) & ((1 << (w - 1)) - 1)) | (discarded << (w - 1)), v)
        return v - ((v >> (w - 1)) & 1) * (1 << w)
    raise ValueError(f"unknown overflow mode {mode!r}")


def requantize(acc: Any, multiplier: Any, shift: int, out: FixedFormat) -> np.ndarray:
    """Integer codes of ``out`` for the real value ``acc * multiplier * 2**-shift``.

    Semantics of ``ap_fixed<W, I, Q, O>`` (DESIGN.md section 2): round the bits below
    ``2**-F`` per ``out.rounding``, then apply ``out.overflow``. The returned code ``c``
    means ``c * 2**-F``. ``multiplier`` is an integer (scalar or broadcastable).
    """
    if out.k_hot is not None:
        raise ValueError("requantize targets plain ap_fixed outputs; K-hot formats are for weights only")
    a, mlt = _i64(acc), _i64(multiplier)
    if int(np.abs(a).max(initial=0)) * int(np.abs(mlt).max(initial=0)) >= _LIMIT:
        raise OverflowError("acc * multiplier exceeds int64 in requantize")
    t = a * mlt
    s = shift - out.frac_bits  # value * 2**F = t * 2**-s
    if s <= 0:
        if int(np.abs(t).max(initial=0)) >= _LIMIT >> (-s):
            raise OverflowError("requantize left shift exceeds int64")
        q = t << (-s)
        pre = q
    else:
        if s > 62:  # |t| < 2**62 so |t * 2**-s| < 1/2: only sign and nonzeroness matter
            t, s = np.sign(t), 62
        pre = t >> s
        q = _round_shift(t, s, out.rounding)
    return _overflow(q, pre, out)
