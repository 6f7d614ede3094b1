"""FPGA fixed-point datapath (QFX style), bit-exact with ``ap_fixed`` semantics.

One output channel per pass::

    acc  = sum over beats, lanes of  x * w                 (exact, frac Fx + Fw, wraps at acc_bits)
    y    = acc * bn_scale + bn_shift + residual            (exact, aligned to frac Fy = Fx + Fw + Fbn)
    y    = max(y, 0)                                       (if relu)
    out  = ap_fixed cast of y * 2**-Fy to out_fmt          (out_fmt's rounding, then overflow)

Every operand is an ``ap_fixed`` code (:class:`hwq.datatypes.FixedFormat`). With
``khot=True`` the weights and the BN scale arrive as ``K`` signed power-of-two terms
(``hwq.quant.khot.naf_terms``) and every product is a sum of shifts built by
:mod:`hwq.hw.shift_add` (gated shift, one's-complement sign plus a carry bit, one adder tree over
all terms of all lanes): no multiplier, so synthesis uses 0 DSPs, and fewer LUTs than the same
datapath with LUT multipliers (``reports/hardware.md``). :class:`Requantizer` implements only
the rounding and overflow mode of the format it is generated for (a datapath generates exactly
the modes its config asks for).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwq.datatypes import FixedFormat
from hwq.hw.common import term_layout
from hwq.hw.shift_add import adder_tree, khot_terms


def _shape(fmt: FixedFormat):
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


class Requantizer(wiring.Component):
    """Combinational ``ap_fixed`` cast of a signed integer ``y`` with ``in_frac`` fractional bits.

    Parameters:
        in_bits: width of ``y`` (signed); in_frac: its fractional bits; out: target format.

    Attributes:
        y: In(signed(in_bits)); code: Out(out's code shape), the ``out`` code.
    """

    def __init__(self, in_bits: int, in_frac: int, out: FixedFormat):
        self.in_bits, self.in_frac, self.fmt = in_bits, in_frac, out
        super().__init__({"y": In(signed(in_bits)), "code": Out(_shape(out))})

    def elaborate(self, platform):
        m = Module()
        fmt, y = self.fmt, self.y
        s = self.in_frac - fmt.frac_bits  # bits to drop (>0) or to append (<0)
        w = fmt.width
        if s > 0:
            fl = Signal(signed(max(self.in_bits - s, 1) + 1))
            m.d.comb += fl.eq(y >> s)
            rem = y[:s]
            half = rem[s - 1]
            lower = rem[:s - 1].any() if s > 1 else 0
            above = half & lower
            at_half = half & ~lower
            exact = ~rem.any()
            neg = y < 0
            inc = {
                "TRN": 0,
                "TRN_ZERO": neg & ~exact,
                "RND": half,
                "RND_ZERO": above | (at_half & neg),
                "RND_MIN_INF": above,
                "RND_INF": above | (at_half & ~neg),
                "RND_CONV": above | (at_half & fl[0]),
            }[fmt.rounding]
            r = Signal(signed(len(fl) + 1))
            m.d.comb += r.eq(fl + inc)
        else:
            fl = Signal(signed(self.in_bits - s))
            m.d.comb += fl.eq(y << -s)
            r = fl
        lo, hi = fmt.min_code, fmt.max_code
        over = (r < lo) | (r > hi)
        o = fmt.overflow
        if o == "WRAP":
            m.d.comb += self.code.eq(r[:w])
        elif o == "SAT":
            m.d.comb += self.code.eq(Mux(r > hi, hi, Mux(r < lo, lo, r)))
        elif o == "SAT_ZERO":
            m.d.comb += self.code.eq(Mux(over, 0, r))
        elif o == "SAT_SYM":
            if fmt.signed and w > 1:
                m.d.comb += self.code.eq(Mux(r > hi, hi, Mux(r <= lo, -hi, r)))
            else:
                m.d.comb += self.code.eq(Mux(r > hi, hi, Mux(r < lo, lo, r)))
        elif o == "WRAP_SM":
            p = r[:w]
            ld = fl[w] if len(fl) > w else fl[-1]
            flip = over & (ld != p[w - 1])
            m.d.comb += self.code.eq(Mux(flip, ~p, p))
        else:  # pragma: no cover - FixedFormat validates
            raise ValueError(o)
        return m


@dataclass(frozen=True)
class FixedDatapathConfig:
    """Formats and options of a :class:`FixedDatapath`.

    Attributes:
        lanes: products per beat; x_fmt, w_fmt: activation / weight formats; bn_fmt: BN scale
        format; shift_fmt: BN shift format; res_fmt: residual format (None: no residual input);
        out_fmt: output format (its rounding/overflow are the requantizer's modes);
        acc_bits: accumulator width (bits); relu: apply ReLU before the cast;
        khot: weights and BN scale as ``k`` power-of-two terms (multiplier-free).
    """

    lanes: int = 4
    x_fmt: FixedFormat = FixedFormat(8, 4)
    w_fmt: FixedFormat = FixedFormat(8, 2)
    bn_fmt: FixedFormat = FixedFormat(8, 3)
    shift_fmt: FixedFormat = FixedFormat(12, 6)
    res_fmt: FixedFormat | None = FixedFormat(8, 4)
    out_fmt: FixedFormat = FixedFormat(8, 4, rounding="RND", overflow="SAT")
    acc_bits: int = 24
    relu: bool = True
    khot: int | None = None

    def __post_init__(self) -> None:
        if self.lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {self.lanes}")
        for name in ("shift_fmt", "res_fmt"):
            f = getattr(self, name)
            if f is not None and f.frac_bits > self.y_frac:
                raise ValueError(f"{name} has {f.frac_bits} fractional bits > the BN product's {self.y_frac}")
        if self.khot is not None and self.khot < 1:
            raise ValueError(f"khot must be >= 1, got {self.khot}")

    @property
    def acc_frac(self) -> int:
        """Fractional bits of the accumulator (Fx + Fw)."""
        return self.x_fmt.frac_bits + self.w_fmt.frac_bits

    @property
    def y_frac(self) -> int:
        """Fractional bits after BN scaling (Fx + Fw + Fbn)."""
        return self.acc_frac + self.bn_fmt.frac_bits

    @property
    def y_bits(self) -> int:
        """Width of the exact BN/residual result (bits)."""
        b = self.acc_bits + self.bn_fmt.width + 1
        for f in (self.shift_fmt, self.res_fmt):
            if f is not None:
                b = max(b, f.width + (self.y_frac - f.frac_bits) + 1)
        return b + 2

    def term_shift_bits(self, fmt: FixedFormat) -> int:
        """Bits of a K-hot term's shift for codes of ``fmt`` (bits).

        The NAF terms of a signed W-bit code have shifts 0..W-1 (|code| <= 2**(W-1)); of an
        unsigned one 0..W (a code up to 2**W - 1 may need the digit 2**W).
        """
        max_shift = fmt.width - 1 if fmt.signed else fmt.width
        return max(1, max_shift.bit_length())


class FixedDatapath(wiring.Component):
    """QFX-style fixed-point MAC + BN + residual + ReLU + requantization, with streams.

    Attributes:
        inp: In(stream of {x: lanes x x_fmt, w: lanes x w_fmt (or K terms each), last: 1}).
        bn_scale, bn_shift, residual: In, sampled with the ``last`` beat (bn_scale as K terms
            when ``khot``).
        out: Out(stream of the out_fmt code); one per ``last`` beat, two cycles later.
    """

    def __init__(self, cfg: FixedDatapathConfig):
        self.config = c = cfg
        if c.khot:
            self.wterm = term_layout(c.term_shift_bits(c.w_fmt))
            self.bterm = term_layout(c.term_shift_bits(c.bn_fmt))
            w_shape = data.ArrayLayout(data.ArrayLayout(self.wterm, c.khot), c.lanes)
            b_shape = data.ArrayLayout(self.bterm, c.khot)
        else:
            w_shape = data.ArrayLayout(_shape(c.w_fmt), c.lanes)
            b_shape = _shape(c.bn_fmt)
        self.beat = data.StructLayout({"x": data.ArrayLayout(_shape(c.x_fmt), c.lanes), "w": w_shape, "last": 1})
        ports = {
            "inp": In(stream.Signature(self.beat)),
            "bn_scale": In(b_shape),
            "bn_shift": In(_shape(c.shift_fmt)),
            "out": Out(stream.Signature(_shape(c.out_fmt))),
        }
        if c.res_fmt is not None:
            ports["residual"] = In(_shape(c.res_fmt))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        c = self.config
        acc = Signal(signed(c.acc_bits))
        acc_next = Signal(signed(c.acc_bits))
        first = Signal(init=1)
        blocked = self.out.valid & ~self.out.ready
        go = self.inp.valid & ~blocked
        m.d.comb += self.inp.ready.eq(~blocked)
        if c.khot:  # every term of every lane in one balanced sum (hwq.hw.shift_add)
            prods = []
            for i in range(c.lanes):
                prods += khot_terms(m, self.inp.payload.x[i], self.inp.payload.w[i], f"x{i}")
            total = adder_tree(prods)
        else:  # a chain of adds: Yosys gives the multipliers fewer LUTs this way (with and without DSPs)
            total = self.inp.payload.x[0] * self.inp.payload.w[0]
            for i in range(1, c.lanes):
                total = total + self.inp.payload.x[i] * self.inp.payload.w[i]
        m.d.comb += acc_next.eq(Mux(first, 0, acc) + total)

        # Stage 2 registers: the finished accumulator and the per-channel operands.
        done_acc = Signal(signed(c.acc_bits))
        done = Signal()
        bn_r = Signal.like(self.bn_scale)
        sh_r = Signal.like(self.bn_shift)
        res_r = Signal.like(self.residual) if c.res_fmt is not None else None
        with m.If(~blocked):
            m.d.sync += done.eq(0)
        with m.If(go):
            m.d.sync += [acc.eq(acc_next), first.eq(self.inp.payload.last)]
            with m.If(self.inp.payload.last):
                m.d.sync += [done_acc.eq(acc_next), done.eq(1), bn_r.eq(self.bn_scale), sh_r.eq(self.bn_shift)]
                if res_r is not None:
                    m.d.sync += res_r.eq(self.residual)

        if c.khot:
            scaled = adder_tree(khot_terms(m, done_acc, bn_r, "acc"))
        else:
            scaled = done_acc * bn_r
        y = Signal(signed(c.y_bits))
        expr = scaled + (sh_r << (c.y_frac - c.shift_fmt.frac_bits))
        if res_r is not None:
            expr = expr + (res_r << (c.y_frac - c.res_fmt.frac_bits))
        m.d.comb += y.eq(expr)
        y_act = Signal(signed(c.y_bits))
        m.d.comb += y_act.eq(Mux(y < 0, 0, y) if c.relu else y)
        m.submodules.requant = rq = Requantizer(c.y_bits, c.y_frac, c.out_fmt)
        m.d.comb += rq.y.eq(y_act)
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        with m.If(done & ~blocked):
            m.d.sync += [self.out.valid.eq(1), self.out.payload.eq(rq.code)]
        return m
