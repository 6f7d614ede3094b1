"""Weight decoders generated from the datatype table (:mod:`hwq.datatypes`).

:class:`TermDecoder` maps a weight code of a run-time selected member datatype to its signed
power-of-two terms (``Datatype.term_slot_table()``), as the bit-serial PE consumes them.
:class:`ValueDecoder` maps it to its integer value, as a bit-parallel PE consumes it.
Both are a packed ROM (``amaranth.lib.memory.Memory`` with an asynchronous read port, which
synthesis turns into LUTs) whose contents are the table. Members are indexed in the order given (for a mixture: ``MIXTURES[name].members``, so the
per-group selector of the quantizer is the member index).
"""

from __future__ import annotations

from typing import Sequence

from amaranth import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwq.datatypes import DATATYPES, Datatype
from hwq.hw.common import clog2, signed_bits, term_layout


def _members(members: Sequence[str]) -> tuple[Datatype, ...]:
    if not members:
        raise ValueError("a decoder needs at least one member datatype")
    unknown = [m for m in members if m not in DATATYPES]
    if unknown:
        raise ValueError(f"unknown datatypes {unknown}; known: {', '.join(DATATYPES)}")
    return tuple(DATATYPES[m] for m in members)


def decoder_geometry(members: Sequence[str]) -> dict[str, int]:
    """Widths a decoder over ``members`` needs: code/member/shift/value bits and term slots."""
    dts = _members(members)
    shifts = [t[1] for dt in dts for row in dt.term_slot_table() for t in row if t is not None]
    values = [v for dt in dts for v in dt.decode]
    return {
        "code_bits": max(dt.bits for dt in dts),
        "member_bits": clog2(len(dts)),
        "slots": max(dt.term_slots for dt in dts),
        "shift_bits": max(1, max(shifts, default=0).bit_length()),
        "value_bits": signed_bits(min(values), max(values)),
    }


def _rom_rows(members: Sequence[str]) -> tuple[tuple[int, ...], list[tuple[Datatype, int, int]]]:
    """Member base offsets into a packed ROM, and (datatype, code, row index) for every row."""
    bases, rows, base = [], [], 0
    for dt in _members(members):
        bases.append(base)
        rows += [(dt, code, base + code) for code in range(1 << dt.bits)]
        base += 1 << dt.bits
    return tuple(bases), rows


class _RomDecoder(wiring.Component):
    """Shared structure: a packed ROM (``amaranth.lib.memory``, asynchronous read) indexed by
    ``base[member] + code[:bits(member)]``; subclasses say what one row holds."""

    def __init__(self, members: Sequence[str], out_name: str, out_shape):
        self.members = tuple(members)
        self.geometry = g = decoder_geometry(members)
        self.bases, self.rows = _rom_rows(members)
        super().__init__({
            "member": In(g["member_bits"]),
            "code": In(g["code_bits"]),
            out_name: Out(out_shape),
        })
        self._out = getattr(self, out_name)

    def row_value(self, dt: Datatype, code: int):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        dts = _members(self.members)
        m.submodules.rom = rom = Memory(shape=self._out.shape(), depth=len(self.rows),
                                        init=[self.row_value(dt, code) for dt, code, _ in self.rows])
        rd = rom.read_port(domain="comb")
        addr = Signal(range(len(self.rows)))
        with m.Switch(self.member):
            for mi, dt in enumerate(dts):
                with m.Case(mi):
                    m.d.comb += addr.eq(self.bases[mi] + self.code[:dt.bits])
        m.d.comb += [rd.addr.eq(addr), self._out.eq(rd.data)]
        return m


class TermDecoder(_RomDecoder):
    """Code -> power-of-two terms decoder (combinational ROM) for a set of member datatypes.

    Parameters:
        members: datatype names; ``member`` input value ``i`` selects ``members[i]``.

    Attributes:
        member: In(member_bits), which member datatype decodes ``code``.
        code: In(code_bits), the weight code (only the member's low ``bits`` are used).
        terms: Out(ArrayLayout(term_layout, slots)), the code's terms
            (``Datatype.term_slot_table()``), unused slots zero.
    """

    def __init__(self, members: Sequence[str]):
        g = decoder_geometry(members)
        self.term = term_layout(g["shift_bits"])
        super().__init__(members, "terms", data.ArrayLayout(self.term, g["slots"]))

    def row_value(self, dt: Datatype, code: int):
        row = dt.term_slot_table()[code]
        slots = self.geometry["slots"]
        return [{"nonzero": 1, "neg": int(t[0]), "shift": t[1]} if t is not None
                else {"nonzero": 0, "neg": 0, "shift": 0} for t in row] + \
               [{"nonzero": 0, "neg": 0, "shift": 0}] * (slots - len(row))


class ValueDecoder(_RomDecoder):
    """Code -> signed integer value decoder (combinational ROM), for bit-parallel PEs.

    Attributes:
        member: In(member_bits); code: In(code_bits); value: Out(signed(value_bits)).
    """

    def __init__(self, members: Sequence[str]):
        super().__init__(members, "value", signed(decoder_geometry(members)["value_bits"]))

    def row_value(self, dt: Datatype, code: int):
        return dt.decode[code]
