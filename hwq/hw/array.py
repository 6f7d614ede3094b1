"""Weight-stationary PE array running a tiled matrix product from on-chip buffers.

``Y[M, N] = sum_g scale[n, g] * sum_{k in g} X[m, k] * W[n, k]`` (integers; the golden model's
``dequant_accumulate(group_psums(...))``), over ``k_tiles x n_tiles`` tiles of
``tile_k = rows * lanes`` reduction elements and ``cols`` output channels.

Buffers (``amaranth.lib.memory.Memory``, one-cycle read latency), filled through streams
while the array is idle; write addresses restart at 0 after every run:

* ``x_in`` -> activation buffer: word ``kt * M + m`` = ``X[m, kt*tile_k : (kt+1)*tile_k]``
  (zero-padded past K).
* ``w_in`` -> weight buffer: word ``(nt * k_tiles + kt) * rows + r`` holds, for every column
  ``c``, the ``lanes`` codes of ``W[nt*cols + c, kt*tile_k + r*lanes ...]``, the group's member
  selector and its ``scale_int`` (read from the first row of each group segment).
* accumulator memory ``o_mem``: ``out_depth`` words of ``cols`` accumulators, the partial sums
  of the current M tile (word = row within the M tile), accumulated across ``kt``.

Control (one run = one layer; ``start`` samples ``cfg`` = M, k_tiles, n_tiles, fmt, m_tile;
``m_tile`` 0 or ``>= M`` means one M tile of all M rows): for nt, for M tile (``m_tile`` rows,
the last one ragged), for kt: LOAD (``rows`` cycles: one weight-buffer row per cycle, decoded
into terms and written to PE row registers; the n tile's weight rows are re-read for every M
tile), COMPUTE (the M tile's activation vectors back to back, each ``I = cycles_per_weight``
cycles in every PE), DRAIN (``I + 4`` cycles: PE -> segment sum -> bit-serial dequantizer (``I``
cycles) -> accumulate in ``o_mem`` -> output register). On the M tile's last ``kt`` each of its
rows leaves on ``out`` (``cols`` values), so the output order is nt-major, then m. If
``out.ready`` is low, the whole array stalls. With ``out.ready`` high, the cycles from the
``start`` edge to the edge that transfers the last output are exactly
:func:`hwq.timing.layer_compute_cycles` (with ``m_tile``).

Partial sums (``ArrayConfig.psum_elide``): read-modify-write reads and writes the row's
``o_mem`` word on every K tile (the first K tile's read is discarded); elided, the first K tile
writes without reading and the last K tile sends its total out without writing it back. The
``psum_reads`` / ``psum_writes`` outputs count the run's ``o_mem`` row reads and writes (cleared
by ``start``, held after the run): :func:`hwq.timing.psum_row_accesses`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Mapping

from amaranth import Cat, ClockSignal, Instance, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwq.hw.common import clog2
from hwq.hw.config import ArrayConfig
from hwq.hw.decoder import ValueDecoder
from hwq.hw.digits import DigitDecoder, digit_geometry, digit_layout
from hwq.hw.dequant import digit_product
from hwq.hw.pe import TermMac
from hwq.hw.pe_parallel import ParallelMac
from hwq.timing import PIPELINE_DEPTH_CYCLES

#: Cycles of the drain beyond the dequantizer's ``I`` (memory read latency, PE accumulator,
#: segment-sum capture, output register): the cycle contract's number, read from hwq.timing so
#: it is stated once. The simulations prove the pipeline really needs exactly that many (a
#: shorter drain loses the last outputs, a longer one misses the predicted cycle count).
DRAIN_EXTRA_CYCLES = PIPELINE_DEPTH_CYCLES


#: Verilog module names of the blocks the array instantiates (hierarchical emission).
PE_MODULE = "hwq_pe"
DECODER_MODULE = "hwq_decoder"


def make_pe(cfg: ArrayConfig) -> wiring.Component:
    """One PE of the array: :class:`TermMac` (bit-serial) or :class:`ParallelMac`."""
    geo = cfg.geometry
    if cfg.mode == "bit_serial":
        dg = digit_geometry(cfg.members)  # radix-4 digits (hwq.hw.digits), not the table's terms
        return TermMac(lanes=cfg.lanes, act_bits=cfg.act_bits, slots=dg["slots"], fine_bits=dg["fine_bits"],
                       terms_per_cycle=cfg.bits_per_cycle // 2, acc_bits=cfg.pe_bits, stationary=True)
    return ParallelMac(lanes=cfg.lanes, act_bits=cfg.act_bits, w_bits=geo["value_bits"], acc_bits=cfg.pe_bits,
                       stationary=True)


def make_decoder(cfg: ArrayConfig) -> wiring.Component:
    """One weight decoder of the array (terms for bit-serial PEs, values for bit-parallel)."""
    return DigitDecoder(cfg.members) if cfg.mode == "bit_serial" else ValueDecoder(cfg.members)


def array_blocks(cfg: ArrayConfig) -> dict[str, wiring.Component]:
    """The leaf blocks the array replicates, by Verilog module name: one PE, one weight decoder."""
    return {PE_MODULE: make_pe(cfg), DECODER_MODULE: make_decoder(cfg)}


def _place(m: Module, name: str, block: wiring.Component, module: str | None, clocked: bool):
    """Add ``block`` as submodule ``name``; with ``module`` set, as an ``Instance`` of that Verilog
    module instead (its ports become local signals), so the block's Verilog is emitted once."""
    if module is None:
        m.submodules[name] = block
        return block
    block._MustUse__silence = True  # only its signature is used here
    proxy = SimpleNamespace()
    ports = {}
    for pname, member in block.signature.members.items():
        shape = member.shape
        # Plain signals (a layout's bits, unnamed fields) keep the emitted top small.
        sig = Signal(shape.size if isinstance(shape, data.Layout) else shape, name=f"{name}__{pname}")
        setattr(proxy, pname, sig)
        ports[("i_" if member.flow == wiring.In else "o_") + pname] = sig
    if clocked:
        ports["i_clk"] = ClockSignal()
        ports["i_rst"] = ResetSignal()
    m.submodules[name] = Instance(module, **ports)
    return proxy


def w_row_layout(cfg: ArrayConfig) -> data.ArrayLayout:
    """One weight-buffer word: per column, ``lanes`` codes, member selector and group scale."""
    col = data.StructLayout({"codes": data.ArrayLayout(cfg.code_bits, cfg.lanes),
                             "sel": cfg.selector_bits, "scale": cfg.scale_bits})
    return data.ArrayLayout(col, cfg.cols)


def run_layout(cfg: ArrayConfig) -> data.StructLayout:
    """Run configuration sampled at ``start``: M (rows of the whole layer, up to ``x_depth``),
    k_tiles, n_tiles, the weight format index and ``m_tile`` (rows per M tile, at most
    ``out_depth``; 0 means one M tile of all M rows)."""
    return data.StructLayout({
        "m": clog2(cfg.x_depth + 1),
        "k_tiles": clog2(cfg.x_depth + 1),
        "n_tiles": clog2(cfg.w_depth + 1),
        "fmt": clog2(len(cfg.formats)),
        "m_tile": clog2(cfg.out_depth + 1),
    })


def psum_count_bits(cfg: ArrayConfig) -> int:
    """Width of the ``psum_reads``/``psum_writes`` counters: a run makes at most
    ``k_tiles * M * n_tiles <= x_depth * (w_depth // rows)`` accesses of each kind."""
    return clog2(cfg.x_depth * max(1, cfg.w_depth // cfg.rows) + 1)


class PEArray(wiring.Component):
    """rows x cols weight-stationary PE array with buffers, sequencer and dequantizers.

    Attributes:
        x_in: In(stream of tile_k x signed(act_bits)), activation-buffer fill.
        w_in: In(stream of :func:`w_row_layout`), weight-buffer fill.
        start: In(1), begin a run (ignored while busy); cfg: In(:func:`run_layout`).
        busy: Out(1), high from the start edge until the last output is transferred.
        out: Out(stream of cols x signed(acc_bits)), one output row per m on its M tile's last k tile.
        psum_reads, psum_writes: Out(:func:`psum_count_bits`), ``o_mem`` row reads / writes of the
            current (or last) run, cleared by ``start``.
    """

    def __init__(self, cfg: ArrayConfig, *, hierarchical: bool = False,
                 ram_styles: Mapping[str, str] | None = None):
        self.config = cfg
        #: Instantiate PEs and decoders as the Verilog modules of :func:`array_blocks` (for
        #: emission) rather than as Amaranth submodules (needed by Amaranth's simulator).
        self.hierarchical = hierarchical
        #: ``ram_style`` attribute per buffer (``x_mem``/``w_mem``/``o_mem`` -> ``block``/``ultra``),
        #: the FPGA memory each maps to (:func:`hwq.hw.buffers.ram_styles`); none: synthesis picks.
        self.ram_styles = dict(ram_styles or {})
        super().__init__({
            "x_in": In(stream.Signature(data.ArrayLayout(signed(cfg.act_bits), cfg.tile_k))),
            "w_in": In(stream.Signature(w_row_layout(cfg))),
            "start": In(1),
            "cfg": In(run_layout(cfg)),
            "busy": Out(1),
            "out": Out(stream.Signature(data.ArrayLayout(signed(cfg.acc_bits), cfg.cols))),
            "psum_reads": Out(psum_count_bits(cfg)),
            "psum_writes": Out(psum_count_bits(cfg)),
        })

    def elaborate(self, platform):  # noqa: C901 - one sequencer, kept in one place
        c = self.config
        m = Module()
        serial = c.mode == "bit_serial"
        n_fmt = len(c.formats)
        # Counters get >= 1 bit even when they only ever hold 0 (bit-parallel I = 1, one row):
        # a zero-width signal becomes `[-1:0]` in Verilog.
        max_iv = max(max(c.interval(i) for i in range(n_fmt)), 2)

        # ---- buffers -----------------------------------------------------------------------
        # No contents: every word is written before it is read, so the Verilog carries no per-word
        # init (hwq.hw.generate) and the buffers map to block RAM / URAM at the spec's depths.
        def attrs(name):
            return {"ram_style": self.ram_styles[name]} if name in self.ram_styles else None

        m.submodules.x_mem = x_mem = Memory(shape=data.ArrayLayout(signed(c.act_bits), c.tile_k),
                                            depth=c.x_depth, init=[], attrs=attrs("x_mem"))
        m.submodules.w_mem = w_mem = Memory(shape=w_row_layout(c), depth=c.w_depth, init=[], attrs=attrs("w_mem"))
        m.submodules.o_mem = o_mem = Memory(shape=data.ArrayLayout(signed(c.acc_bits), c.cols),
                                            depth=c.out_depth, init=[], attrs=attrs("o_mem"))
        x_wr, x_rd = x_mem.write_port(), x_mem.read_port()
        w_wr, w_rd = w_mem.write_port(), w_mem.read_port()
        o_wr, o_rd = o_mem.write_port(), o_mem.read_port()

        x_fill = Signal(range(c.x_depth + 1))
        w_fill = Signal(range(c.w_depth + 1))
        m.d.comb += [self.x_in.ready.eq(~self.busy), self.w_in.ready.eq(~self.busy),
                     x_wr.addr.eq(x_fill), x_wr.data.eq(self.x_in.payload),
                     w_wr.addr.eq(w_fill), w_wr.data.eq(self.w_in.payload)]
        with m.If(self.x_in.valid & self.x_in.ready):
            m.d.comb += x_wr.en.eq(1)
            m.d.sync += x_fill.eq(x_fill + 1)
        with m.If(self.w_in.valid & self.w_in.ready):
            m.d.comb += w_wr.en.eq(1)
            m.d.sync += w_fill.eq(w_fill + 1)

        # ---- stall and run configuration ---------------------------------------------------
        run = Signal()
        m.d.comb += run.eq(~(self.out.valid & ~self.out.ready))
        m.d.comb += [x_rd.en.eq(run), w_rd.en.eq(run)]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        rc = Signal(run_layout(c))
        last_j = Signal(range(max_iv))
        with m.Switch(rc.fmt):
            for i in range(n_fmt):
                with m.Case(i):
                    m.d.comb += last_j.eq(c.interval(i) - 1)
        member_base = Signal(range(len(c.members) + 1))
        with m.Switch(rc.fmt):
            for i, b in enumerate(c.fmt_base):
                with m.Case(i):
                    m.d.comb += member_base.eq(b)

        # ---- S0: sequencer -----------------------------------------------------------------
        r = Signal(range(max(c.rows, 2)))
        mi = Signal(range(c.out_depth + 1))  # row within the M tile (= its o_mem word)
        j = Signal(range(max_iv))
        kt = Signal.like(rc.k_tiles)
        nt = Signal.like(rc.n_tiles)
        dcnt = Signal(range(max_iv + DRAIN_EXTRA_CYCLES))
        w_addr = Signal(range(c.w_depth))
        w_nbase = Signal(range(c.w_depth))  # first weight row of the current n tile
        x_base = Signal(range(c.x_depth + 1))  # kt * M + first row of the M tile
        mt_rows = Signal(range(c.out_depth + 1))  # rows per full M tile
        mt0 = Signal(range(c.x_depth + 1))  # first layer row of the current M tile
        mrows = Signal(range(c.out_depth + 1))  # rows of the current M tile
        m.d.comb += [w_rd.addr.eq(w_addr), x_rd.addr.eq(x_base + mi)]
        ld0, cv0 = Signal(), Signal()
        psum_reads, psum_writes = self.psum_reads, self.psum_writes
        one_mt = (self.cfg.m_tile == 0) | (self.cfg.m_tile >= self.cfg.m)
        mt_next = mt0 + mrows  # first row of the next M tile

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [rc.eq(self.cfg), self.busy.eq(1), r.eq(0), kt.eq(0), nt.eq(0),
                                 w_addr.eq(0), w_nbase.eq(0), x_base.eq(0), mt0.eq(0),
                                 mt_rows.eq(Mux(one_mt, self.cfg.m, self.cfg.m_tile)),
                                 mrows.eq(Mux(one_mt, self.cfg.m, self.cfg.m_tile)),
                                 psum_reads.eq(0), psum_writes.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += ld0.eq(1)
                with m.If(run):
                    m.d.sync += [w_addr.eq(w_addr + 1), r.eq(r + 1)]
                    with m.If(r == c.rows - 1):
                        m.d.sync += [r.eq(0), mi.eq(0), j.eq(0)]
                        m.next = "COMPUTE"
            with m.State("COMPUTE"):
                m.d.comb += cv0.eq(1)
                with m.If(run):
                    m.d.sync += j.eq(j + 1)
                    with m.If(j == last_j):
                        m.d.sync += [j.eq(0), mi.eq(mi + 1)]
                        with m.If(mi == mrows - 1):
                            m.d.sync += dcnt.eq(0)
                            m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(run):
                    m.d.sync += dcnt.eq(dcnt + 1)
                    with m.If(dcnt == last_j + DRAIN_EXTRA_CYCLES):
                        with m.If(kt != rc.k_tiles - 1):
                            m.d.sync += [kt.eq(kt + 1), x_base.eq(x_base + rc.m)]
                            m.next = "LOAD"
                        with m.Elif(mt_next != rc.m):
                            # next M tile of this n tile: re-read the n tile's weight rows
                            m.d.sync += [kt.eq(0), mt0.eq(mt_next), x_base.eq(mt_next), w_addr.eq(w_nbase),
                                         mrows.eq(Mux(mt_next + mt_rows > rc.m, rc.m - mt_next, mt_rows))]
                            m.next = "LOAD"
                        with m.Else():
                            m.d.sync += [kt.eq(0), mt0.eq(0), mrows.eq(mt_rows), x_base.eq(0), nt.eq(nt + 1),
                                         w_nbase.eq(w_addr)]
                            with m.If(nt == rc.n_tiles - 1):
                                m.d.sync += [self.busy.eq(0), w_addr.eq(0), x_fill.eq(0), w_fill.eq(0)]
                                m.next = "IDLE"
                            with m.Else():
                                m.next = "LOAD"

        # ---- S1: weight load (decode into PE registers) and PE compute -----------------------
        ld1, cv1 = Signal(), Signal()
        r1 = Signal.like(r)
        j1 = Signal.like(j)
        m1 = Signal.like(mi)
        lk1, fk1 = Signal(), Signal()
        with m.If(run):
            m.d.sync += [ld1.eq(ld0), r1.eq(r), cv1.eq(cv0), j1.eq(j), m1.eq(mi),
                         lk1.eq(kt == rc.k_tiles - 1), fk1.eq(kt == 0)]

        geo = c.geometry
        w_word = w_rd.data
        if serial:
            dg = digit_geometry(c.members)
            tl = digit_layout(dg["fine_bits"])
            reg_layout = data.ArrayLayout(data.ArrayLayout(tl, dg["slots"]), c.lanes)
        else:
            reg_layout = data.ArrayLayout(signed(geo["value_bits"]), c.lanes)
        decoded = []  # per column: bits for the PE weight registers of the row being loaded
        for col in range(c.cols):
            dec_col = Signal(reg_layout.size, name=f"dec_c{col}")
            lanes_out = []
            for lane in range(c.lanes):
                dec = _place(m, f"dec_c{col}_l{lane}", make_decoder(c),
                             DECODER_MODULE if self.hierarchical else None, clocked=False)
                m.d.comb += [dec.member.eq(member_base + w_word[col].sel), dec.code.eq(w_word[col].codes[lane])]
                out = dec.terms if serial else dec.value
                lanes_out.append(out.as_value() if isinstance(out, data.View) else out[:])
            m.d.comb += dec_col.eq(Cat(*lanes_out))
            decoded.append(dec_col)

        scales = [[Signal(c.scale_bits, name=f"scale_s{s}_c{col}") for col in range(c.cols)] for s in range(c.segs)]
        macs = []
        x_word = x_rd.data
        for row in range(c.rows):
            mac_row = []
            load_row = Signal(name=f"load_r{row}")
            m.d.comb += load_row.eq(run & ld1 & (r1 == row))
            for col in range(c.cols):
                mac = _place(m, f"pe_r{row}_c{col}", make_pe(c),
                             PE_MODULE if self.hierarchical else None, clocked=True)
                m.d.comb += mac.load.eq(load_row)
                if serial:
                    m.d.comb += [mac.load_terms.eq(decoded[col]), mac.step.eq(j1)]
                else:
                    m.d.comb += mac.load_w.eq(decoded[col])
                xw = c.lanes * c.act_bits
                m.d.comb += mac.x.eq(x_word.as_value()[row * xw:(row + 1) * xw])
                m.d.comb += [mac.en.eq(run & cv1), mac.first.eq(j1 == 0)]
                mac_row.append(mac)
            macs.append(mac_row)
        for s in range(c.segs):
            for col in range(c.cols):
                with m.If(run & ld1 & (r1 == s * c.rows_per_seg)):
                    m.d.sync += scales[s][col].eq(w_word[col].scale)

        # ---- S2: capture segment sums into the dequantizers ----------------------------------
        cap2 = Signal()
        m2 = Signal.like(mi)
        lk2, fk2 = Signal(), Signal()
        with m.If(run):
            m.d.sync += [cap2.eq(cv1 & (j1 == last_j)), m2.eq(m1), lk2.eq(lk1), fk2.eq(fk1)]

        dpc = c.dq_digits
        steps_bits = max_iv * dpc
        prod_bits = c.seg_bits + c.scale_bits
        p_sh = [[Signal(signed(prod_bits), name=f"dq_p_s{s}_c{col}") for col in range(c.cols)] for s in range(c.segs)]
        s_sh = [[Signal(max(steps_bits, c.scale_bits), name=f"dq_s_s{s}_c{col}") for col in range(c.cols)]
                for s in range(c.segs)]
        prod = [[Signal(signed(prod_bits), name=f"dq_acc_s{s}_c{col}") for col in range(c.cols)] for s in range(c.segs)]
        dq_act = Signal()
        dq_j = Signal(range(max_iv))
        m3 = Signal.like(mi)
        lk3, fk3 = Signal(), Signal()
        fin4 = Signal()
        m4 = Signal.like(mi)
        lk4, fk4 = Signal(), Signal()

        # S3: bit-serial dequantization, dpc scale bits per cycle for I cycles.
        with m.If(run):
            m.d.sync += fin4.eq(0)
            with m.If(dq_act):
                m.d.sync += dq_j.eq(dq_j + 1)
                for s in range(c.segs):
                    for col in range(c.cols):
                        m.d.sync += [prod[s][col].eq(Mux(dq_j == 0, 0, prod[s][col])
                                                     + digit_product(p_sh[s][col], s_sh[s][col], dpc)),
                                     p_sh[s][col].eq(p_sh[s][col] << dpc),
                                     s_sh[s][col].eq(s_sh[s][col] >> dpc)]
                with m.If(dq_j == last_j):
                    m.d.sync += [dq_act.eq(0), fin4.eq(1), m4.eq(m3), lk4.eq(lk3), fk4.eq(fk3)]
            with m.If(cap2):
                m.d.sync += [dq_act.eq(1), dq_j.eq(0), m3.eq(m2), lk3.eq(lk2), fk3.eq(fk2)]
                for s in range(c.segs):
                    for col in range(c.cols):
                        seg = macs[s * c.rows_per_seg][col].acc
                        for row in range(s * c.rows_per_seg + 1, (s + 1) * c.rows_per_seg):
                            seg = seg + macs[row][col].acc
                        m.d.sync += [p_sh[s][col].eq(seg), s_sh[s][col].eq(scales[s][col])]

        # ---- S4: accumulate across k tiles in o_mem, emit on the last one -------------------
        # The row's o_mem word is read on the edge that ends its dequantization (data ready with
        # fin4); elided, the first K tile neither reads nor (S4) the last one writes back.
        rd_now, wr_now = Signal(), Signal()
        m.d.comb += [rd_now.eq(run & dq_act & (dq_j == last_j) & (~fk3 if c.psum_elide else 1)),
                     wr_now.eq(run & fin4 & (~lk4 if c.psum_elide else 1)),
                     o_rd.en.eq(rd_now), o_wr.en.eq(wr_now),
                     o_rd.addr.eq(m3), o_wr.addr.eq(m4)]
        with m.If(rd_now):
            m.d.sync += psum_reads.eq(psum_reads + 1)
        with m.If(wr_now):
            m.d.sync += psum_writes.eq(psum_writes + 1)
        totals = Signal(data.ArrayLayout(signed(c.acc_bits), c.cols))
        for col in range(c.cols):
            t = Mux(fk4, 0, o_rd.data[col])
            for s in range(c.segs):
                t = t + prod[s][col]
            m.d.comb += totals[col].eq(t)
        m.d.comb += o_wr.data.eq(totals)
        with m.If(run & fin4):
            with m.If(lk4):
                m.d.sync += [self.out.valid.eq(1), self.out.payload.eq(totals)]
        return m
