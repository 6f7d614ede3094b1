"""Bit-serial mixed-datatype processing element (BitMoD style), on radix-4 digits.

Every weight is a short string of radix-4 digits ``d[s]`` in ``{0, +-1, +-2, +-4}`` at ``4**s``
(:mod:`hwq.hw.digits`, derived from the datatype table; as many slots as the table's
``term_slots``). Each cycle the PE applies ``terms_per_cycle = bits_per_cycle / 2`` slots of all
``lanes`` weights and accumulates::

    acc += sum over slots s of this cycle:  (sum over lanes d[lane][s] * x[lane]) << 2*s

Because slot ``s`` weighs ``4**s`` for every datatype, the lanes' products are summed first
and shifted once per PE by the step's fixed amount; a lane only selects ``x``, ``x << 1``,
``x << 2`` or 0 and complements it for a negative digit (the ``+1`` of each negation is added in
the same multi-operand sum). So a weight of ``term_slots`` slots still costs
``cycles_per_weight(term_slots, bits_per_cycle)`` cycles (:func:`hwq.datatypes.cycles_per_weight`,
:mod:`hwq.timing`). No multiplier and no per-lane barrel shifter is used.

:class:`TermMac` is the arithmetic core (digits in, accumulator out) that the PE array
replicates; :class:`BitSerialPE` adds per-lane :class:`~hwq.hw.digits.DigitDecoder` s and
valid/ready streams: a beat (``lanes`` activations, ``lanes`` codes, the group's member
selector, ``last``) is consumed in its member's cycles-per-weight; on a ``last`` beat the
group's partial sum leaves on ``out``. :func:`term_product` (a table term applied to a value,
with a variable shift) is kept for the fixed-point datapath.
"""

from __future__ import annotations

from typing import Sequence

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwq.datatypes import DATATYPES, cycles_per_weight
from hwq.hw.common import clog2, signed_bits
from hwq.hw.decoder import decoder_geometry
from hwq.hw.digits import DigitDecoder, digit_geometry, digit_layout


def _check_bpc(bits_per_cycle: int) -> int:
    if bits_per_cycle < 2 or bits_per_cycle % 2:
        raise ValueError(f"bits_per_cycle must be an even number >= 2, got {bits_per_cycle}")
    return bits_per_cycle // 2


def term_product(x, term):
    """Signed value of one term applied to ``x``: 0, ``x << shift`` or ``-(x << shift)``."""
    shifted = x << term.shift
    return Mux(term.nonzero, Mux(term.neg, -shifted, shifted), 0)


def radix4_product(x, digit):
    """One lane's digit applied to ``x`` in ones' complement: ``(x << fine) ^ neg``, 0 for the zero
    digit (all-ones ``fine``; its ``neg`` is 0). The true product is this plus ``neg``: the caller
    adds the lanes' ``neg`` bits into the same sum, so no lane needs its own negation adder."""
    fine = digit.fine
    zero_code = (1 << len(fine)) - 1
    if len(fine) == 2:  # the usual case: x, x << 1, x << 2, 0 (one 4:1 mux per bit)
        shifted = Mux(fine[1], Mux(fine[0], 0, x << 2), Mux(fine[0], x << 1, x))
    else:
        shifted = x.as_signed() * 0
        for code in range(zero_code):
            shifted = Mux(fine == code, x << code, shifted)
    return Mux(digit.neg, ~shifted.as_signed(), shifted.as_signed())


class TermMac(wiring.Component):
    """``lanes``-wide bit-serial multiply-accumulate over radix-4 digits (:mod:`hwq.hw.digits`).

    Slot ``s`` of every weight weighs ``4**s``, so each cycle the lanes' digit products
    ``+-(x << fine)`` are summed first and the sum is shifted once, by the step's fixed
    ``2 * s`` (one shifter per PE)::

        acc_next = (first ? 0 : acc) + sum_t (sum_lanes d[lane][s] * x[lane]) << 2*s,
                   s = step * terms_per_cycle + t

    Parameters:
        lanes: dot-product width; act_bits: signed activation width (bits);
        slots: digit slots stored per weight; fine_bits: width of a digit's ``fine`` field
            (:func:`hwq.hw.digits.digit_layout`);
        terms_per_cycle: slots applied per cycle; acc_bits: accumulator width (wraps).

    Attributes:
        x: In(lanes x signed(act_bits)); terms: In(lanes x slots x digit) (:func:`~hwq.hw.digits.digit_layout`);
        step: In, which group of ``terms_per_cycle`` slots to apply this cycle;
        en: In(1), accumulate this cycle; first: In(1), start a new sum (acc := this cycle's part);
        acc: Out(signed(acc_bits)), registered accumulator;
        acc_next: Out(signed(acc_bits)), its next value (``first ? 0 : acc`` + this cycle's part).
    """

    def __init__(self, *, lanes: int, act_bits: int, slots: int, fine_bits: int,
                 terms_per_cycle: int = 1, acc_bits: int = 32, stationary: bool = False):
        if lanes < 1 or act_bits < 2 or slots < 1 or terms_per_cycle < 1:
            raise ValueError("TermMac needs lanes >= 1, act_bits >= 2, slots >= 1, terms_per_cycle >= 1")
        self.lanes, self.act_bits, self.slots = lanes, act_bits, slots
        self.terms_per_cycle = terms_per_cycle
        self.steps = -(-slots // terms_per_cycle)
        self.term = digit_layout(fine_bits)
        self.stationary = stationary
        terms_layout = data.ArrayLayout(data.ArrayLayout(self.term, slots), lanes)
        #: With ``stationary``, the digits live in a register inside the PE, written from
        #: ``load_terms`` when ``load`` is high (weight-stationary array); else ``terms`` is an input.
        weight_ports = {"load": In(1), "load_terms": In(terms_layout)} if stationary else {"terms": In(terms_layout)}
        super().__init__({
            "x": In(data.ArrayLayout(signed(act_bits), lanes)),
            **weight_ports,
            "step": In(clog2(self.steps)),
            "en": In(1),
            "first": In(1),
            "acc": Out(signed(acc_bits)),
            "acc_next": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        tpc = self.terms_per_cycle
        padded = self.steps * tpc
        if self.stationary:
            terms = Signal.like(self.load_terms, name="weights")
            with m.If(self.load):
                m.d.sync += terms.eq(self.load_terms)
        else:
            terms = self.terms
        lane_slots = []
        for lane in range(self.lanes):
            slots = Signal(data.ArrayLayout(self.term, padded), name=f"slots{lane}")
            m.d.comb += slots.as_value()[:terms[lane].as_value().shape().width].eq(terms[lane].as_value())
            for k in range(self.slots, padded):  # padding slots hold the zero digit
                m.d.comb += slots[k].fine.eq(-1)
            lane_slots.append(slots)
        parts, negs = [], []
        for t in range(tpc):
            for lane in range(self.lanes):
                slots = lane_slots[lane]
                digit = slots[self.step * tpc + t] if self.steps > 1 else slots[t]
                parts.append(radix4_product(self.x[lane], digit) << (2 * t))
                negs.append(digit.neg.as_unsigned() << (2 * t))
        # One sum of the ones'-complement products and their neg bits (Yosys maps it as a
        # single multi-operand adder), then one shift by the step's slot weight.
        bound = (self.lanes << (self.act_bits + 1)) * sum(4 ** t for t in range(tpc)) + len(negs) * 4 ** (tpc - 1)
        cycle_sum = Signal(signed(signed_bits(-bound, bound)), name="cycle_sum")
        total = parts[0]
        for p in parts[1:] + negs:
            total = total + p
        m.d.comb += cycle_sum.eq(total)
        shifted = Signal(signed(len(cycle_sum) + 2 * tpc * (self.steps - 1)), name="step_sum")
        with m.Switch(self.step):
            for st in range(self.steps):
                with m.Case(st):
                    m.d.comb += shifted.eq(cycle_sum << (2 * tpc * st))
        m.d.comb += self.acc_next.eq(Mux(self.first, 0, self.acc) + shifted)
        with m.If(self.en):
            m.d.sync += self.acc.eq(self.acc_next)
        return m


def pe_beat_layout(lanes: int, act_bits: int, code_bits: int, member_bits: int) -> data.StructLayout:
    """Input beat of a standalone PE: activations, weight codes, member selector, last-of-group."""
    return data.StructLayout({
        "x": data.ArrayLayout(signed(act_bits), lanes),
        "codes": data.ArrayLayout(code_bits, lanes),
        "member": member_bits,
        "last": 1,
    })


class BitSerialPE(wiring.Component):
    """Bit-serial mixed-datatype PE with decoders and valid/ready streams.

    Parameters:
        members: datatype names selectable per group (``member`` = index into this list;
            for a mixture pass ``MIXTURES[name].members``).
        lanes: activations x weights per beat; act_bits: signed activation width (bits);
        bits_per_cycle: weight bits consumed per cycle (2: one term slot/cycle, 4: two);
        acc_bits: group partial-sum width (bits, wraps).

    Attributes:
        inp: In(stream of :func:`pe_beat_layout`), one beat per ``lanes`` weights; a beat is
            acknowledged (``ready``) on its last cycle, after ``cycles_per_weight(member slots)``.
        out: Out(stream of signed(acc_bits)), the group's partial sum after a ``last`` beat.
    """

    def __init__(self, members: Sequence[str], *, lanes: int = 4, act_bits: int = 8,
                 bits_per_cycle: int = 2, acc_bits: int = 32):
        self.members = tuple(members)
        self.tpc = _check_bpc(bits_per_cycle)
        self.bits_per_cycle = bits_per_cycle
        self.g = g = decoder_geometry(members)
        self.lanes, self.act_bits, self.acc_bits = lanes, act_bits, acc_bits
        self.intervals = [cycles_per_weight(DATATYPES[n].term_slots, bits_per_cycle) for n in self.members]
        self.beat = pe_beat_layout(lanes, act_bits, g["code_bits"], g["member_bits"])
        super().__init__({
            "inp": In(stream.Signature(self.beat)),
            "out": Out(stream.Signature(signed(acc_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        dg = digit_geometry(self.members)
        mac = TermMac(lanes=self.lanes, act_bits=self.act_bits, slots=dg["slots"],
                      fine_bits=dg["fine_bits"], terms_per_cycle=self.tpc, acc_bits=self.acc_bits)
        m.submodules.mac = mac
        for lane in range(self.lanes):
            dec = DigitDecoder(self.members)
            m.submodules[f"dec{lane}"] = dec
            m.d.comb += [dec.member.eq(self.inp.payload.member), dec.code.eq(self.inp.payload.codes[lane]),
                         mac.terms[lane].eq(dec.terms)]
        step = Signal(range(max(self.intervals) + 1))
        last_step = Signal(range(max(self.intervals) + 1))
        with m.Switch(self.inp.payload.member):
            for mi, iv in enumerate(self.intervals):
                with m.Case(mi):
                    m.d.comb += last_step.eq(iv - 1)
        new_sum = Signal()  # next accumulation starts a new group
        m.d.comb += [mac.x.eq(self.inp.payload.x), mac.step.eq(step), mac.first.eq(new_sum & (step == 0))]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        blocked = self.out.valid & ~self.out.ready
        go = self.inp.valid & ~blocked
        m.d.comb += mac.en.eq(go)
        reset_sum = Signal(init=1)
        m.d.comb += new_sum.eq(reset_sum)
        with m.If(go):
            with m.If(step == last_step):
                m.d.comb += self.inp.ready.eq(1)
                m.d.sync += step.eq(0)
                m.d.sync += reset_sum.eq(self.inp.payload.last)
                with m.If(self.inp.payload.last):
                    m.d.sync += [self.out.valid.eq(1),
                                 self.out.payload.eq(mac.acc_next)]
            with m.Else():
                m.d.sync += step.eq(step + 1)
                m.d.sync += reset_sum.eq(0)
        return m
