"""Radix-4 positional digits of the datatype table: what the bit-serial PE consumes.

A weight of ``term_slots`` slots (:attr:`hwq.datatypes.Datatype.term_slots`) is written as
``value = sum_s d[s] * 4**s`` with every digit ``d[s]`` in ``{0, +-1, +-2, ..., +-2**max_fine}``.
Slot ``s`` always weighs ``4**s``, for every datatype, so the PE applies the *same* shift
``2*s`` to the lanes' summed products (one shifter per PE, not one per lane), and each lane only
picks ``x << fine`` with ``fine`` in ``0..max_fine`` (a 3:1 mux at ``max_fine = 2`` instead of an
8:1 barrel shifter).

* INT (symmetric and asymmetric) uses its radix-4 Booth digits (``hwq.datatypes.booth_terms``):
  ``fine`` is 0 or 1.
* FP-like grids (FP, FLINT, BitMoD) take the digit string with the fewest nonzero digits
  (ties: the smaller digits at the higher positions first), found by search over the digit
  set; :data:`MAX_FINE` = 2 suffices for every table format (e.g. BitMoD's 16 = 4 * 4**1,
  12 = 2 * 4**1 + 4 * 4**0, 10 = 2 * 4 + 2).

The number of slots (so the cycles per weight, :func:`hwq.datatypes.cycles_per_weight`) is the
datatype table's; only the digits differ from ``Datatype.term_slot_table()``. A digit is a
:func:`digit_layout` record: ``neg`` (1 bit) and ``fine`` (:func:`fine_bits` bits), where the
all-ones ``fine`` code means the digit is 0 (so no separate nonzero bit, and a lane's product is
one 4:1 mux of ``x, x<<1, x<<2, 0`` XOR ``neg``).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product
from typing import Sequence

from amaranth.lib import data

from hwq.datatypes import DATATYPES, Datatype, booth_terms
from hwq.hw.decoder import _RomDecoder, decoder_geometry

#: Largest fine shift a digit may use: digits are 0, +-1, +-2, +-4 (times 4**slot).
MAX_FINE = 2

Digit = tuple[bool, int]  # (negative, fine): value (-1)**negative * 2**fine, times 4**slot


def _booth_digits(dt: Datatype, value: int) -> tuple[Digit | None, ...]:
    width = dt.bits if dt.family == "int" else dt.bits + 1
    row: list[Digit | None] = [None] * dt.term_slots
    for neg, shift in booth_terms(value, width):
        row[shift // 2] = (neg, shift % 2)
    return tuple(row)


def _search_digits(dt: Datatype, value: int) -> tuple[Digit | None, ...]:
    choices: list[Digit | None] = [None] + [(n, f) for f in range(MAX_FINE + 1) for n in (False, True)]
    best = None
    for combo in product(choices, repeat=dt.term_slots):
        if sum((-1 if d[0] else 1) * (1 << d[1]) * 4 ** s for s, d in enumerate(combo) if d) != value:
            continue
        key = (sum(d is not None for d in combo), [(-1 if d is None else d[1]) for d in reversed(combo)])
        if best is None or key < best[0]:
            best = (key, combo)
    if best is None:
        raise ValueError(f"{dt.name}: value {value} has no {dt.term_slots}-digit radix-4 form with digits "
                         f"up to +-{1 << MAX_FINE}")
    return best[1]


@lru_cache(maxsize=None)
def digit_table(name: str) -> tuple[tuple[Digit | None, ...], ...]:
    """For every code of datatype ``name``: its ``term_slots`` radix-4 digits (``None`` = 0), slot 0 first."""
    dt = DATATYPES[name]
    find = _booth_digits if dt.family in ("int", "int_asym") else _search_digits
    return tuple(find(dt, v) for v in dt.decode)


def digit_value(row: Sequence[Digit | None]) -> int:
    """Integer value of a digit row: ``sum_s (-1)**neg * 2**fine * 4**s``."""
    return sum((-1 if d[0] else 1) * (1 << d[1]) * 4 ** s for s, d in enumerate(row) if d)


def digit_geometry(members: Sequence[str]) -> dict[str, int]:
    """Widths the bit-serial PE needs for ``members``: ``slots`` and ``fine_bits`` (bits of ``fine``,
    one code more than the largest fine shift used: the all-ones code is the zero digit)."""
    fines = [d[1] for n in members for row in digit_table(n) for d in row if d is not None]
    return {"slots": decoder_geometry(members)["slots"], "fine_bits": (max(fines, default=0) + 1).bit_length()}


@lru_cache(maxsize=None)
def digit_layout(fine_bits: int) -> data.StructLayout:
    """One radix-4 digit: ``neg`` (1 bit), ``fine`` (bits); value ``(-1)**neg * 2**fine``, or 0
    when ``fine`` is all ones (then ``neg`` is 0)."""
    return data.StructLayout({"neg": 1, "fine": fine_bits})


class DigitDecoder(_RomDecoder):
    """Code -> radix-4 digits decoder (combinational ROM) for a set of member datatypes.

    Attributes:
        member: In(member_bits); code: In(code_bits);
        terms: Out(ArrayLayout(digit_layout(fine_bits), slots)), slot ``s`` = digit at ``4**s``
            (:func:`digit_table`), unused slots zero.
    """

    def __init__(self, members: Sequence[str]):
        g = digit_geometry(members)
        self.digit_slots = g["slots"]
        self.zero_fine = (1 << g["fine_bits"]) - 1
        self.term = digit_layout(g["fine_bits"])
        super().__init__(members, "terms", data.ArrayLayout(self.term, g["slots"]))

    def row_value(self, dt: Datatype, code: int):
        row = digit_table(dt.name)[code]
        zero = {"neg": 0, "fine": self.zero_fine}
        return [zero if d is None else {"neg": int(d[0]), "fine": d[1]} for d in row] + \
               [zero] * (self.digit_slots - len(row))
