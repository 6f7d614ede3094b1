"""Bit-parallel INT-k processing element: the plain-multiplier baseline of the same lanes.

:class:`ParallelMac` is the core the PE array replicates (``acc := first ? 0 : acc`` plus
``sum x[i] * w[i]`` each enabled cycle, one cycle per beat); :class:`BitParallelPE` wraps it
with valid/ready streams exactly like :class:`hwq.hw.pe.BitSerialPE`, so the two can be
synthesised and compared per MAC.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


class ParallelMac(wiring.Component):
    """``lanes``-wide multiply-accumulate with ``*`` (maps to DSPs / multipliers).

    Attributes:
        x: In(lanes x signed(act_bits)); w: In(lanes x signed(w_bits));
        en: In(1); first: In(1), start a new sum;
        acc: Out(signed(acc_bits)), registered; acc_next: Out, its next value.
    """

    def __init__(self, *, lanes: int, act_bits: int, w_bits: int, acc_bits: int = 32, stationary: bool = False):
        if lanes < 1 or act_bits < 2 or w_bits < 2:
            raise ValueError("ParallelMac needs lanes >= 1, act_bits >= 2, w_bits >= 2")
        self.lanes = lanes
        self.stationary = stationary
        w_layout = data.ArrayLayout(signed(w_bits), lanes)
        #: With ``stationary``, weights live in a register written from ``load_w`` when ``load``.
        weight_ports = {"load": In(1), "load_w": In(w_layout)} if stationary else {"w": In(w_layout)}
        super().__init__({
            "x": In(data.ArrayLayout(signed(act_bits), lanes)),
            **weight_ports,
            "en": In(1),
            "first": In(1),
            "acc": Out(signed(acc_bits)),
            "acc_next": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        if self.stationary:
            w = Signal.like(self.load_w, name="weights")
            with m.If(self.load):
                m.d.sync += w.eq(self.load_w)
        else:
            w = self.w
        total = self.x[0] * w[0]
        for i in range(1, self.lanes):
            total = total + self.x[i] * w[i]
        m.d.comb += self.acc_next.eq(Mux(self.first, 0, self.acc) + total)
        with m.If(self.en):
            m.d.sync += self.acc.eq(self.acc_next)
        return m


class BitParallelPE(wiring.Component):
    """INT-``w_bits`` PE with streams: one beat (``lanes`` activations and weights) per cycle.

    Attributes:
        inp: In(stream of {x: lanes x signed(act_bits), w: lanes x signed(w_bits), last: 1});
        out: Out(stream of signed(acc_bits)), the group's partial sum after a ``last`` beat.
    """

    def __init__(self, *, lanes: int = 4, act_bits: int = 8, w_bits: int = 8, acc_bits: int = 32):
        self.lanes, self.act_bits, self.w_bits, self.acc_bits = lanes, act_bits, w_bits, acc_bits
        self.beat = data.StructLayout({
            "x": data.ArrayLayout(signed(act_bits), lanes),
            "w": data.ArrayLayout(signed(w_bits), lanes),
            "last": 1,
        })
        super().__init__({
            "inp": In(stream.Signature(self.beat)),
            "out": Out(stream.Signature(signed(acc_bits))),
        })

    def elaborate(self, platform):
        from amaranth import Signal
        m = Module()
        m.submodules.mac = mac = ParallelMac(lanes=self.lanes, act_bits=self.act_bits,
                                             w_bits=self.w_bits, acc_bits=self.acc_bits)
        new_sum = Signal(init=1)
        blocked = self.out.valid & ~self.out.ready
        go = self.inp.valid & ~blocked
        m.d.comb += [mac.x.eq(self.inp.payload.x), mac.w.eq(self.inp.payload.w),
                     mac.first.eq(new_sum), mac.en.eq(go), self.inp.ready.eq(~blocked)]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        with m.If(go):
            m.d.sync += new_sum.eq(self.inp.payload.last)
            with m.If(self.inp.payload.last):
                m.d.sync += [self.out.valid.eq(1), self.out.payload.eq(mac.acc_next)]
        return m
