"""The one datatype table: every weight format hwq knows, in one place.

The quantizer (``hwq.quant``), the golden model (``hwq.golden``), the RTL weight decoder
(``hwq.hw``) and the cost model (``hwq.cost``) all read this module; no grid, code
assignment or cycle count may be written anywhere else (``tests/test_datatypes.py``
fails if one is).

Conventions
-----------
* Grids are stored as **integers**: real value = ``grid value * 2**-frac_bits``. FP4 (E2M1)
  values are stored x2 (``frac_bits = 1``), as in DESIGN.md section 1.
* ``decode[code]`` gives the integer value of every bit pattern ``0 .. 2**bits - 1``.
  Sign-magnitude formats (FP, FLINT, BitMoD) use ``code = sign << (bits-1) | magnitude_index``;
  the redundant "-0" pattern (``sign=1, index=0``) decodes to the format's special value
  (BitMoD ER/EA) or to 0. INT formats are two's complement; the most negative pattern decodes
  to ``-2**(bits-1)`` but is not on the symmetric grid, so the quantizer never emits it.
* **Hardware decomposition** (BitMoD's unified representation): every value becomes at most
  ``term_slots`` signed power-of-two terms ``(negative, shift)``; value = sum of
  ``(-1)**negative * 2**shift``. INT uses radix-4 Booth digits (0, +-1, +-2 at 4**i); FP-like
  grids take at most two leading-one terms (12 = 8 + 4, 10 = 8 + 2). One slot is one 2-bit
  step of a bit-serial PE, so ``term_slots = ceil(bits / 2)``, and a PE consuming
  ``bits_per_cycle`` weight bits per cycle spends :func:`cycles_per_weight` cycles.
* Group metadata: a per-group unsigned integer scale of ``scale_bits`` bits (times a
  per-row float base scale folded into requantization), plus ``selector_bits`` for mixtures.
  Mixtures use a 2-bit selector and a 6-bit scale, single formats an 8-bit scale: 8 bits per
  group either way (4-bit weights cost 4.0625 bits at group 128, as in BitMoD). MX uses an
  8-bit shared power-of-two exponent per 32 values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

#: Bits of per-group metadata (scale + selector) for every group-quantized format.
GROUP_META_BITS = 8
#: Selector bits that pick a mixture member per group.
MIXTURE_SELECTOR_BITS = 2
#: MX block size (values sharing one exponent) and the exponent width (E8M0), in bits.
MX_BLOCK = 32
MX_EXPONENT_BITS = 8
#: Default quantization group along the input-channel axis, in weights.
DEFAULT_GROUP_SIZE = 128

Term = tuple[bool, int]  # (negative, shift): value (-1)**negative * 2**shift


@dataclass(frozen=True)
class Datatype:
    """One weight datatype: bit width, code assignment, integer grid and hardware terms.

    Attributes:
        name: table key, e.g. ``"int4"``, ``"fp4_er_pos"``.
        family: ``"int"``, ``"int_asym"``, ``"fp"``, ``"bitmod"``, ``"flint"``.
        bits: code width in bits.
        decode: integer value of every code ``0 .. 2**bits - 1``.
        grid: sorted values the quantizer may emit (the representable set).
        frac_bits: real value = integer value * 2**-frac_bits.
        special: the value that replaces "-0" (BitMoD ER/EA), else ``None``.
        signed: whether codes carry a sign (False only for ``int_asym``, which uses a zero point).
    """

    name: str
    family: str
    bits: int
    decode: tuple[int, ...]
    grid: tuple[int, ...]
    frac_bits: int = 0
    special: int | None = None
    signed: bool = True

    @property
    def term_slots(self) -> int:
        """Signed power-of-two terms per weight in the bit-serial PE (one per 2-bit step)."""
        return math.ceil(self.bits / 2) if self.family != "int_asym" else math.ceil((self.bits + 1) / 2)

    @property
    def max_abs(self) -> int:
        """Largest magnitude on the grid (integer units): the absmax scale maps onto it."""
        return max(abs(v) for v in self.grid)

    def encode(self, value: int) -> int:
        """The code of grid value ``value`` (the canonical one when several codes decode to it)."""
        return _encode_map(self)[value]

    def terms(self, value: int) -> tuple[Term, ...]:
        """Hardware decomposition of integer ``value`` into signed power-of-two terms."""
        if self.family in ("int", "int_asym"):
            width = self.bits if self.family == "int" else self.bits + 1
            return booth_terms(value, width)
        return leading_one_terms(value, max_terms=2)

    def term_slot_table(self) -> tuple[tuple[Term | None, ...], ...]:
        """For every code, its terms padded with ``None`` to ``term_slots`` (what the RTL decoder stores)."""
        rows = []
        for code in range(1 << self.bits):
            t = self.terms(self.decode[code])
            if len(t) > self.term_slots:
                raise ValueError(f"{self.name}: code {code} needs {len(t)} terms > {self.term_slots} slots")
            rows.append(tuple(t) + (None,) * (self.term_slots - len(t)))
        return tuple(rows)


@dataclass(frozen=True)
class Mixture:
    """A per-group choice among member datatypes of equal width, picked by least MSE.

    ``members[s]`` is the datatype selected by selector value ``s``.
    """

    name: str
    bits: int
    members: tuple[str, ...]
    selector_bits: int = MIXTURE_SELECTOR_BITS

    @property
    def scale_bits(self) -> int:
        """Bits of the per-group integer scale (metadata budget minus the selector)."""
        return GROUP_META_BITS - self.selector_bits

    @property
    def term_slots(self) -> int:
        """Term slots of the widest member (the PE spends that many steps on every group)."""
        return max(DATATYPES[m].term_slots for m in self.members)


@dataclass(frozen=True)
class FixedFormat:
    """``ap_fixed<W, I, Q, O>`` (``ap_ufixed`` when ``signed`` is False).

    ``width`` W total bits, ``int_bits`` I integer bits including the sign; fractional bits
    F = W - I may be negative or exceed W. Value = integer code * 2**-F. ``k_hot`` (if set)
    restricts values to at most that many nonzero signed power-of-two terms (multiplier-free).
    """

    width: int
    int_bits: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"
    k_hot: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.width <= 32:
            raise ValueError(f"fixed-point width must be 1..32 bits, got {self.width}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {self.rounding!r}; choose one of {', '.join(ROUNDING_MODES)}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"unknown overflow mode {self.overflow!r}; choose one of {', '.join(OVERFLOW_MODES)}")
        if self.overflow == "WRAP_SM" and not self.signed:
            raise ValueError("overflow mode WRAP_SM is defined for signed ap_fixed only")
        if self.k_hot is not None and self.k_hot < 1:
            raise ValueError(f"k_hot must be >= 1, got {self.k_hot}")

    @property
    def frac_bits(self) -> int:
        """F = W - I (may be negative or exceed W)."""
        return self.width - self.int_bits

    @property
    def min_code(self) -> int:
        """Smallest integer code (two's complement for signed)."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        """Largest integer code."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def term_slots(self) -> int:
        """Terms per weight on a shift-add datapath: K for K-hot, else radix-4 Booth digits."""
        return self.k_hot if self.k_hot is not None else math.ceil((self.width + (0 if self.signed else 1)) / 2)

    @property
    def name(self) -> str:
        base = "ap_fixed" if self.signed else "ap_ufixed"
        khot = f"_k{self.k_hot}" if self.k_hot else ""
        return f"{base}<{self.width},{self.int_bits},{self.rounding},{self.overflow}>{khot}"


#: ap_fixed rounding modes (without the ``AP_`` prefix), DESIGN.md section 2.
ROUNDING_MODES: tuple[str, ...] = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
#: ap_fixed overflow modes (without the ``AP_`` prefix).
OVERFLOW_MODES: tuple[str, ...] = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM", "WRAP_SM")


# ---------------------------------------------------------------------------------------
# Hardware decomposition helpers
# ---------------------------------------------------------------------------------------
def booth_terms(value: int, width: int) -> tuple[Term, ...]:
    """Radix-4 Booth digits of two's-complement ``value`` (``width`` bits) as signed powers of two.

    Digit i is ``-2*b[2i+1] + b[2i] + b[2i-1]`` (b[-1] = 0) at weight 4**i; a zero digit
    yields no term, so the tuple may be shorter than ``ceil(width/2)`` slots.
    """
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if not lo <= value <= hi:
        raise ValueError(f"{value} does not fit {width}-bit two's complement")
    ndig = math.ceil(width / 2)
    bits = value & ((1 << (2 * ndig + 1)) - 1)  # sign-extended pattern
    out: list[Term] = []
    prev = 0
    for i in range(ndig):
        b0 = (bits >> (2 * i)) & 1
        b1 = (bits >> (2 * i + 1)) & 1
        digit = -2 * b1 + b0 + prev
        prev = b1
        if digit:
            out.append((digit < 0, 2 * i + (1 if abs(digit) == 2 else 0)))
    return tuple(out)


def leading_one_terms(value: int, max_terms: int) -> tuple[Term, ...]:
    """``value`` as at most ``max_terms`` signed powers of two taken from its leading ones.

    Exact for every FP-like grid value (DESIGN.md: 12 = 8 + 4, 10 = 8 + 2); raises if the
    magnitude has more set bits than ``max_terms``.
    """
    mag, neg = abs(value), value < 0
    shifts = [i for i in range(mag.bit_length() - 1, -1, -1) if (mag >> i) & 1]
    if len(shifts) > max_terms:
        raise ValueError(f"{value} needs {len(shifts)} power-of-two terms > {max_terms}")
    return tuple((neg, s) for s in shifts)


def khot_values(k: int, max_shift: int) -> tuple[int, ...]:
    """All integers with at most ``k`` nonzero signed power-of-two terms, shifts 0..max_shift (sorted)."""
    vals = {0}
    frontier = {0}
    for _ in range(k):
        nxt = set()
        for v in frontier:
            for s in range(max_shift + 1):
                nxt.add(v + (1 << s))
                nxt.add(v - (1 << s))
        vals |= nxt
        frontier = nxt
    return tuple(sorted(vals))


def cycles_per_weight(term_slots: int, bits_per_cycle: int | None) -> int:
    """Cycles a PE spends per weight: ``ceil(term_slots / (bits_per_cycle/2))`` bit-serial, 1 bit-parallel.

    ``bits_per_cycle`` is the bit-serial radix in weight bits per cycle (even, >= 2); ``None``
    means a bit-parallel PE.
    """
    if bits_per_cycle is None:
        return 1
    if bits_per_cycle < 2 or bits_per_cycle % 2:
        raise ValueError(f"bits_per_cycle must be an even number >= 2, got {bits_per_cycle}")
    return math.ceil(term_slots / (bits_per_cycle // 2))


# ---------------------------------------------------------------------------------------
# Table construction
# ---------------------------------------------------------------------------------------
# Magnitudes by sign-magnitude index (integer units). These lines are the only place the
# FP-like grids are written (DESIGN.md section 1).
_FP3_MAGNITUDES = (0, 1, 2, 4)
_FP4_MAGNITUDES = (0, 1, 2, 3, 4, 6, 8, 12)  # E2M1 x2
_FLINT4_MAGNITUDES = (0, 1, 2, 3, 4, 6, 8, 16)
# BitMoD special values replacing -0: (extra-resolution, extra-asymmetry) magnitudes.
_BITMOD_SPECIALS = {3: (3, 6), 4: (10, 16)}


def _sign_magnitude(name: str, family: str, bits: int, mags: tuple[int, ...], frac_bits: int,
                    special: int | None) -> Datatype:
    half = 1 << (bits - 1)
    decode = [mags[i] for i in range(half)] + [-mags[i] for i in range(half)]
    decode[half] = special if special is not None else 0
    grid = tuple(sorted(set(decode)))
    return Datatype(name, family, bits, tuple(decode), grid, frac_bits, special)


def _int_sym(bits: int) -> Datatype:
    decode = tuple(c if c < (1 << (bits - 1)) else c - (1 << bits) for c in range(1 << bits))
    m = (1 << (bits - 1)) - 1
    return Datatype(f"int{bits}", "int", bits, decode, tuple(range(-m, m + 1)))


def _int_asym(bits: int) -> Datatype:
    decode = tuple(range(1 << bits))
    return Datatype(f"uint{bits}", "int_asym", bits, decode, decode, signed=False)


def _build_table() -> dict[str, Datatype]:
    table: dict[str, Datatype] = {}
    for b in range(2, 9):
        table[f"int{b}"] = _int_sym(b)
        table[f"uint{b}"] = _int_asym(b)
    table["fp3"] = _sign_magnitude("fp3", "fp", 3, _FP3_MAGNITUDES, 0, None)
    table["fp4"] = _sign_magnitude("fp4", "fp", 4, _FP4_MAGNITUDES, 1, None)
    table["flint4"] = _sign_magnitude("flint4", "flint", 4, _FLINT4_MAGNITUDES, 0, None)
    for bits, mags, frac in ((3, _FP3_MAGNITUDES, 0), (4, _FP4_MAGNITUDES, 1)):
        er, ea = _BITMOD_SPECIALS[bits]
        for kind, mag in (("er", er), ("ea", ea)):
            for sign, sp in (("pos", mag), ("neg", -mag)):
                name = f"fp{bits}_{kind}_{sign}"
                table[name] = _sign_magnitude(name, "bitmod", bits, mags, frac, sp)
    return table


#: Every weight datatype by name.
DATATYPES: dict[str, Datatype] = _build_table()

#: Per-group mixtures by name; ``members[selector]``.
MIXTURES: dict[str, Mixture] = {
    "bitmod4": Mixture("bitmod4", 4, ("fp4_er_pos", "fp4_er_neg", "fp4_ea_pos", "fp4_ea_neg")),
    "bitmod3": Mixture("bitmod3", 3, ("fp3_er_pos", "fp3_er_neg", "fp3_ea_pos", "fp3_ea_neg")),
    "ant4": Mixture("ant4", 4, ("int4", "flint4"), selector_bits=1),
    "ant3": Mixture("ant3", 3, ("int3", "fp3"), selector_bits=1),
}

#: Weight-format families accepted by ``hwq.quant.quantize_weight(fmt=...)`` -> bit widths.
FORMAT_BITS: dict[str, tuple[int, ...]] = {
    "int": tuple(range(2, 9)),
    "int_asym": tuple(range(2, 9)),
    "fp": (3, 4),
    "bitmod": (3, 4),
    "ant": (3, 4),
    "mx": (4, 6, 8),  # MX: mx4 = MXFP4 (E2M1) elements, mx6/mx8 = MXINT6/MXINT8 elements
}


def resolve(fmt: str, bits: int) -> Datatype | Mixture:
    """The table entry for user-facing format family ``fmt`` at ``bits``.

    ``int``/``int_asym``/``fp`` give a :class:`Datatype`; ``bitmod``/``ant`` a :class:`Mixture`;
    ``mx`` gives the element datatype (the shared exponent is described by ``MX_*``).
    """
    if fmt not in FORMAT_BITS:
        raise ValueError(f"unknown weight format {fmt!r}; choose one of {', '.join(FORMAT_BITS)}")
    if bits not in FORMAT_BITS[fmt]:
        raise ValueError(f"format {fmt!r} has no {bits}-bit variant; supported bits: "
                         f"{', '.join(map(str, FORMAT_BITS[fmt]))}")
    if fmt == "int":
        return DATATYPES[f"int{bits}"]
    if fmt == "int_asym":
        return DATATYPES[f"uint{bits}"]
    if fmt == "fp":
        return DATATYPES[f"fp{bits}"]
    if fmt == "mx":
        return DATATYPES["fp4"] if bits == 4 else DATATYPES[f"int{bits}"]
    return MIXTURES[f"{fmt}{bits}"]


def term_slots(fmt: str, bits: int) -> int:
    """Term slots per weight for format family ``fmt`` at ``bits`` (drives PE cycles)."""
    return resolve(fmt, bits).term_slots


def meta_bits_per_weight(fmt: str, bits: int, group_size: int | None = DEFAULT_GROUP_SIZE) -> float:
    """Stored bits per weight including group metadata (e.g. bitmod 4-bit, group 128: 4.0625).

    ``group_size`` None/0 means one group per row; that metadata is then negligible per
    weight and counted as 0 here (the cost model counts per-row metadata itself).
    """
    resolve(fmt, bits)
    if fmt == "mx":
        return bits + MX_EXPONENT_BITS / MX_BLOCK
    if not group_size:
        return float(bits)
    return bits + GROUP_META_BITS / group_size


@lru_cache(maxsize=None)
def _encode_map_cached(name: str) -> dict[int, int]:
    dt = DATATYPES[name]
    out: dict[int, int] = {}
    for code, v in enumerate(dt.decode):
        out.setdefault(v, code)
    return out


def _encode_map(dt: Datatype) -> dict[int, int]:
    return _encode_map_cached(dt.name)


def all_datatypes() -> Iterable[Datatype]:
    """Every datatype in the table, in a stable order."""
    return DATATYPES.values()


def max_term_shift() -> int:
    """Largest shift any table datatype's decomposition uses (sizes the RTL shifter), in bits."""
    return max(s for dt in DATATYPES.values() for row in dt.term_slot_table() for t in row if t for s in [t[1]])
