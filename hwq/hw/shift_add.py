"""Multiplier-free arithmetic on K-hot operands: gated shifts, one's-complement signs, one adder tree.

A K-hot operand is ``K`` signed power-of-two terms (:func:`hwq.hw.common.term_layout`:
``nonzero``, ``neg``, ``shift``); its product with ``x`` is the sum of the terms applied to
``x``. Each term is built as::

    v    = (nonzero ? x : 0) << shift          (AND gate, then a variable shift)
    term = v XOR (neg ? -1 : 0)   plus a carry bit  neg        ( -v == ~v + 1 )

so a negative term costs one XOR per bit instead of a negating adder, and the ``+1`` of every
negative term is a 1-bit operand of the adder tree that sums all terms of all lanes (Yosys
folds the whole sum into one carry-save tree). Measured on the fpga_zu datapath
(``reports/hardware.md``): this form needs fewer LUTs than a LUT multiplier, where
negating each shifted term and chaining the adds needed more.

Values keep Amaranth's exact widths: nothing wraps until the caller truncates.
"""

from __future__ import annotations

from typing import Sequence

from amaranth import Module, Mux, Signal
from amaranth.hdl import Value


def khot_terms(m: Module, x: Value, terms, name: str) -> list[Value]:
    """Operands whose sum is ``x`` times the K-hot operand ``terms`` (a sequence of term structs).

    Per term: the one's-complement shifted value and its 1-bit ``+1`` correction (2 operands).
    """
    out: list[Value] = []
    for t in range(len(terms)):
        tm = terms[t]
        shifted = Mux(tm.nonzero, x, 0) << tm.shift
        v = Signal(shifted.shape(), name=f"{name}_t{t}")
        m.d.comb += v.eq(shifted)
        neg = tm.neg & tm.nonzero
        out += [v ^ Mux(neg, -1, 0), neg]
    return out


def adder_tree(values: Sequence[Value]) -> Value:
    """Sum of ``values`` by a balanced binary tree (exact widths; depth ceil(log2(n)) adders)."""
    if not values:
        raise ValueError("adder_tree needs at least one value")
    level = list(values)
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]
