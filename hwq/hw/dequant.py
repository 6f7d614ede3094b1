"""Bit-serial dequantization: per-group partial sum x unsigned integer scale, by shift-and-add.

Each cycle the unit consumes ``digits_per_cycle`` bits of the scale (LSB first) and adds
``psum << i`` for every set bit ``i`` (:func:`digit_product`); no multiplier is used. A scale
of ``scale_bits`` bits takes ``ceil(scale_bits / digits_per_cycle)`` cycles. Products of
consecutive groups are accumulated; the sum leaves on ``out`` after a ``last`` group
(``hwq.golden.dequant_accumulate`` is the reference, ``shift_add_multiply`` the per-bit view).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


def digit_product(p, s, digits: int):
    """``p * s[:digits]`` as a sum of ``Mux(s[i], p << i, 0)`` (shift-and-add, no ``*``)."""
    total = Mux(s[0], p, 0)
    for i in range(1, digits):
        total = total + Mux(s[i], p << i, 0)
    return total


class BitSerialDequant(wiring.Component):
    """Bit-serial dequantize-and-accumulate unit with valid/ready streams.

    Parameters:
        psum_bits: signed partial-sum width (bits); scale_bits: unsigned scale width (bits);
        acc_bits: accumulator width (bits, wraps); digits_per_cycle: scale bits per cycle.

    Attributes:
        inp: In(stream of {psum: signed(psum_bits), scale: unsigned(scale_bits), last: 1}); a
            beat is taken when the unit is idle and then occupies it for ``steps`` cycles.
        out: Out(stream of signed(acc_bits)): ``sum psum * scale`` over the groups up to ``last``.
    """

    def __init__(self, *, psum_bits: int = 24, scale_bits: int = 8, acc_bits: int = 32,
                 digits_per_cycle: int = 1):
        if psum_bits < 2 or scale_bits < 1 or not 1 <= digits_per_cycle <= scale_bits:
            raise ValueError("BitSerialDequant needs psum_bits >= 2 and 1 <= digits_per_cycle <= scale_bits")
        self.psum_bits, self.scale_bits, self.acc_bits = psum_bits, scale_bits, acc_bits
        self.digits_per_cycle = digits_per_cycle
        self.steps = -(-scale_bits // digits_per_cycle)
        self.beat = data.StructLayout({"psum": signed(psum_bits), "scale": unsigned(scale_bits), "last": 1})
        super().__init__({
            "inp": In(stream.Signature(self.beat)),
            "out": Out(stream.Signature(signed(acc_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        dpc = self.digits_per_cycle
        p_sh = Signal(signed(self.psum_bits + self.scale_bits))
        s_sh = Signal(self.steps * dpc)
        acc = Signal(signed(self.acc_bits))
        busy = Signal()
        last = Signal()
        count = Signal(range(self.steps))
        blocked = self.out.valid & ~self.out.ready
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        m.d.comb += self.inp.ready.eq(~busy & ~blocked)
        with m.If(self.inp.valid & self.inp.ready):
            m.d.sync += [p_sh.eq(self.inp.payload.psum), s_sh.eq(self.inp.payload.scale),
                         last.eq(self.inp.payload.last), busy.eq(1), count.eq(0)]
        with m.If(busy & ~blocked):
            nxt = Signal(signed(self.acc_bits))
            m.d.comb += nxt.eq(acc + digit_product(p_sh, s_sh, dpc))
            m.d.sync += [p_sh.eq(p_sh << dpc), s_sh.eq(s_sh >> dpc), count.eq(count + 1), acc.eq(nxt)]
            with m.If(count == self.steps - 1):
                m.d.sync += busy.eq(0)
                with m.If(last):
                    m.d.sync += [self.out.valid.eq(1), self.out.payload.eq(nxt), acc.eq(0)]
        return m
