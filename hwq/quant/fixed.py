"""Bit-exact ``ap_fixed<W, I, Q, O>`` / ``ap_ufixed`` casts of float tensors (DESIGN.md section 2).

``fixed_point(x, width, int_bits, signed=..., rounding=..., overflow=...)`` returns the real value
that the HLS type would hold after ``ap_fixed<W,I,Q,O> v = x;``: F = W - I fractional bits, the
integer code is ``overflow(round(x * 2**F))`` and the value is ``code * 2**-F``.

Semantics (checked against the HLS ``ap_fixed_base`` conversion and, in
``tests/test_fixed_point.py``, against an independent integer/Fraction reference):

* Rounding, on the exact bits below ``2**-F`` (first, on the source value):
  ``TRN`` floor, ``TRN_ZERO`` toward zero, ``RND`` half up (toward +inf), ``RND_ZERO`` half toward
  zero, ``RND_MIN_INF`` half toward -inf, ``RND_INF`` half away from zero, ``RND_CONV`` half to even.
* Overflow, applied when the *rounded* code lies outside ``[min_code, max_code]``:
  ``WRAP`` two's-complement wrap to W bits; ``SAT`` clamp; ``SAT_ZERO`` the code becomes 0;
  ``SAT_SYM`` clamp to ``[-max, max]`` (signed; a code equal to ``min_code`` also becomes
  ``-max``), ``[0, max]`` unsigned; ``WRAP_SM`` (signed only): take the wrapped W-bit pattern V;
  if the first discarded integer bit ``lD`` (bit W of ``floor(x * 2**F)``, i.e. of the value
  *before* rounding) differs from V's sign bit, invert every bit of V and set the sign bit to lD.
* HLS corner kept on purpose: a 1-bit signed ``SAT_SYM`` type behaves like ``SAT`` (the HLS
  library writes ``min | 1`` = -1 there, since ``-max`` = 0 has no room for a sign).

Exactness: the computation runs in float64; ``x * 2**F`` is exact (a power-of-two scaling), the
floor, fraction, rounding increment, ``fmod`` wrap and bit extraction are exact for every finite
float64 input with ``|x| * 2**F < 2**1023`` and no subnormal underflow. Codes fit 32 bits
(W <= 32), so the result ``code * 2**-F`` is exact in float64; in float32 it is exact for W <= 24.
Non-finite inputs are not representable in ``ap_fixed``; NaN stays NaN and +-inf give NaN under
WRAP/WRAP_SM and the saturated value under the saturating modes.

No gradient flows through these functions (the result is detached); use
:class:`hwq.quant.fixed_modules.LearnedFixedQuantizer` for training.
"""

from __future__ import annotations

import torch

from hwq.datatypes import FixedFormat

__all__ = ["fixed_point", "fixed_point_codes", "cast", "codes_to_value"]


def _check(width: int, int_bits: int, signed: bool, rounding: str, overflow: str) -> FixedFormat:
    """Validate through the one datatype table (``FixedFormat`` raises ``ValueError``)."""
    return FixedFormat(int(width), int(int_bits), bool(signed), rounding, overflow)


def _round_increment(y: torch.Tensor, fl: torch.Tensor, rounding: str) -> torch.Tensor:
    """0/1 increment added to ``floor(y)`` by rounding mode ``rounding`` (float64, exact)."""
    frac = y - fl  # exact: in [0, 1)
    half = frac == 0.5
    above = frac > 0.5
    if rounding == "TRN":
        return torch.zeros_like(y)
    if rounding == "TRN_ZERO":
        inc = (y < 0) & (frac > 0)
    elif rounding == "RND":
        inc = frac >= 0.5
    elif rounding == "RND_ZERO":
        inc = above | (half & (y < 0))
    elif rounding == "RND_MIN_INF":
        inc = above
    elif rounding == "RND_INF":
        inc = above | (half & (y > 0))
    elif rounding == "RND_CONV":
        inc = above | (half & (torch.fmod(fl, 2.0) != 0))
    else:  # pragma: no cover - validated by FixedFormat
        raise ValueError(rounding)
    return inc.to(y.dtype)


def _codes_f64(x: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Integer codes of ``x`` under ``fmt`` as an exact float64 tensor."""
    w, f = fmt.width, fmt.frac_bits
    y = x.detach().to(torch.float64) * (2.0 ** f)
    fl = torch.floor(y)
    r = fl + _round_increment(y, fl, fmt.rounding)  # exact: |fl| < 2**52 whenever the increment is 1
    lo, hi = float(fmt.min_code), float(fmt.max_code)
    out_of_range = (r < lo) | (r > hi)
    modulus = float(1 << w)
    half = float(1 << (w - 1))

    def wrapped_pattern() -> torch.Tensor:
        p = torch.fmod(r, modulus)  # exact, sign of r
        return torch.where(p < 0, p + modulus, p)  # unsigned W-bit pattern in [0, 2**W)

    def as_signed(p: torch.Tensor) -> torch.Tensor:
        return torch.where(p >= half, p - modulus, p)

    o = fmt.overflow
    if o == "WRAP":
        p = wrapped_pattern()
        return as_signed(p) if fmt.signed else p
    if o == "SAT":
        return r.clamp(lo, hi)
    if o == "SAT_ZERO":
        return torch.where(out_of_range, torch.zeros_like(r), r)
    if o == "SAT_SYM":
        if not fmt.signed or w == 1:
            return r.clamp(lo, hi)
        return torch.where(r > hi, torch.full_like(r, hi), torch.where(r <= lo, torch.full_like(r, -hi), r))
    if o == "WRAP_SM":
        p = wrapped_pattern()
        sign_v = p >= half
        # lD: bit W of floor(y) in two's complement (the value before rounding).
        q = torch.floor(fl / modulus)
        ld = torch.fmod(q, 2.0) != 0
        flip = out_of_range & (ld != sign_v)
        inverted = (modulus - 1.0) - p  # ~V within W bits; its sign bit is !sign_v == lD
        p = torch.where(flip, inverted, p)
        return as_signed(p)
    raise ValueError(o)  # pragma: no cover - validated by FixedFormat


def fixed_point_codes(x: torch.Tensor, width: int, int_bits: int, *, signed: bool = True,
                      rounding: str = "TRN", overflow: str = "WRAP") -> torch.Tensor:
    """The ``ap_fixed<width, int_bits, rounding, overflow>`` integer codes of ``x`` (int64, same shape).

    Value = code * 2**-(width - int_bits). Signed codes are two's-complement values in
    ``[-2**(W-1), 2**(W-1) - 1]``, unsigned in ``[0, 2**W - 1]``.
    """
    fmt = _check(width, int_bits, signed, rounding, overflow)
    x = torch.as_tensor(x)
    codes = _codes_f64(x, fmt)
    return torch.nan_to_num(codes, nan=0.0).to(torch.int64)


def codes_to_value(codes: torch.Tensor, width: int, int_bits: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Real value ``codes * 2**-(width - int_bits)`` of integer codes, as ``dtype``."""
    return (torch.as_tensor(codes).to(torch.float64) * 2.0 ** (int_bits - width)).to(dtype)


def fixed_point(x: torch.Tensor, width: int, int_bits: int, *, signed: bool = True, rounding: str = "TRN",
                overflow: str = "WRAP") -> torch.Tensor:
    """Cast ``x`` to ``ap_fixed<width, int_bits, rounding, overflow>`` (``ap_ufixed`` if not ``signed``).

    Args:
        x: real values (any float dtype; computed exactly in float64).
        width: W, total bits (1..32).
        int_bits: I, integer bits including the sign; may be negative or exceed W.
        signed: ``ap_fixed`` (True) or ``ap_ufixed`` (False).
        rounding: one of ``hwq.datatypes.ROUNDING_MODES``.
        overflow: one of ``hwq.datatypes.OVERFLOW_MODES`` (``WRAP_SM`` signed only).

    Returns:
        The represented real values, same shape and dtype as ``x``, detached from autograd.

    Raises:
        ValueError: invalid width or mode (message from ``hwq.datatypes.FixedFormat``).
    """
    fmt = _check(width, int_bits, signed, rounding, overflow)
    x = torch.as_tensor(x)
    out_dtype = x.dtype if x.is_floating_point() else torch.float64
    codes = _codes_f64(x, fmt)
    return (codes * 2.0 ** (-fmt.frac_bits)).to(out_dtype)


def cast(x: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """``fixed_point`` with the parameters of a :class:`hwq.datatypes.FixedFormat` (``k_hot`` is ignored here;
    see :func:`hwq.quant.khot.khot_fixed`)."""
    return fixed_point(x, fmt.width, fmt.int_bits, signed=fmt.signed, rounding=fmt.rounding, overflow=fmt.overflow)
