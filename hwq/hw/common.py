"""Shared hardware helpers: bit-width arithmetic and the power-of-two term layout."""

from __future__ import annotations

from functools import lru_cache

from amaranth.lib import data


def clog2(n: int) -> int:
    """Bits to index ``n`` items (at least 1)."""
    return max(1, (max(n, 1) - 1).bit_length())


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width (bits) holding every integer in ``[lo, hi]``."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


@lru_cache(maxsize=None)
def term_layout(shift_bits: int) -> data.StructLayout:
    """One signed power-of-two term: ``nonzero`` (1 bit), ``neg`` (1 bit), ``shift`` (bits).

    Value = 0 if not nonzero else (-1)**neg * 2**shift.
    """
    return data.StructLayout({"nonzero": 1, "neg": 1, "shift": shift_bits})
