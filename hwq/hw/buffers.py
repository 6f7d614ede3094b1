"""On-chip buffers of the PE array as the spec sizes them: word width, depth, access width.

The array (:mod:`hwq.hw.array`) has three memories, each one array-wide word per access:

========  ==============  ===========================================  ==========================
memory    spec buffer     word (bits)                                  depth (words)
========  ==============  ===========================================  ==========================
``x_mem`` ``activation``  ``rows * lanes * act_bits`` (one K slice)    capacity_bits // word
``w_mem`` ``weight``      ``cols * (lanes * code_bits + sel + scale)``  capacity_bits // word
``o_mem`` ``output``      ``cols * acc_bits`` (one psum row)           capacity_bits // word
========  ==============  ===========================================  ==========================

In the ``accumulate_in_array`` dataflow (a spec whose first ``dataflow.modes`` entry it is)
``o_mem`` is the per-column accumulator register files instead: ``accumulators.depth`` words;
the output buffer then lies outside the array (the ``out`` stream feeds it) and is not emitted.

Access width: the cost model (:mod:`hwq.cost`) charges ``bits / access_bits * energy_pj`` per
buffer, i.e. one spec access per ``access_bits`` bits moved. The RTL word is ``ports`` =
``ceil(word_bits / access_bits)`` physical ``access_bits``-wide banks read or written together
(on the FPGA, Yosys splits the word over that many 72-bit RAMB36/URAM288 ports), so one RTL
word access is ``word_bits / access_bits`` spec accesses; :attr:`BufferPlan.port_overhead` is
the share of bank bits the rounding up leaves unused (what the cost model does not charge).
Both read the same numbers: the spec's ``capacity_kib`` and ``access_bits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BufferPlan:
    """One RTL memory: ``word_bits`` x ``depth`` words, from the spec's ``capacity_bits`` (bits)
    and ``access_bits`` (bits per spec access)."""

    memory: str
    buffer: str
    word_bits: int
    depth: int
    capacity_bits: float
    access_bits: int

    @property
    def bits(self) -> int:
        """Bits the RTL memory holds."""
        return self.word_bits * self.depth

    @property
    def ports(self) -> int:
        """``access_bits``-wide banks one word spans."""
        return math.ceil(self.word_bits / self.access_bits)

    @property
    def port_overhead(self) -> float:
        """Unused share of the banks' bits (0 when the word is a multiple of ``access_bits``)."""
        return 1 - self.word_bits / (self.ports * self.access_bits)


def word_bits(cfg) -> dict[str, int]:
    """Word width (bits) of ``x_mem``, ``w_mem``, ``o_mem`` of :class:`hwq.hw.config.ArrayConfig` ``cfg``."""
    from hwq.hw.array import w_row_layout

    return {"x_mem": cfg.tile_k * cfg.act_bits, "w_mem": w_row_layout(cfg).size, "o_mem": cfg.cols * cfg.acc_bits}


#: Spec buffer behind each memory, and the ArrayConfig field holding its depth.
MEMORIES = {"x_mem": ("activation", "x_depth"), "w_mem": ("weight", "w_depth"), "o_mem": ("output", "out_depth")}


def accumulates_in_array(spec) -> bool:
    """Whether the spec's RTL dataflow (its first mode) keeps psums in accumulator register files."""
    from hwq.hw.config import spec_dataflow

    return spec_dataflow(spec) == "accumulate_in_array"


def buffer_plan(spec, cfg) -> dict[str, BufferPlan]:
    """Every memory of the array of ``spec`` (its geometry and formats: ``cfg``) at the spec's size."""
    words = word_bits(cfg)
    out = {}
    for mem, (name, _) in MEMORIES.items():
        w = words[mem]
        if mem == "o_mem" and accumulates_in_array(spec):
            acc = spec.accumulators
            out[mem] = BufferPlan(mem, "accumulators", w, int(acc.depth), float(acc.depth * w), acc.access_bits)
            continue
        buf = spec.buffers[name]
        depth = int(buf.capacity_bits // w)
        if depth < 2:
            from hwq.errors import UsageError

            raise UsageError(f"buffers.{name}.capacity_kib: {buf.capacity_kib} KiB holds {depth} array word(s) of "
                             f"{w} bits; the {mem} buffer needs at least 2")
        out[mem] = BufferPlan(mem, name, w, depth, buf.capacity_bits, buf.access_bits)
    return out


def buffer_depths(spec, cfg) -> dict[str, int]:
    """``{x_depth, w_depth, out_depth}`` (words) of :func:`buffer_plan`, for ``ArrayConfig``."""
    return {MEMORIES[mem][1]: p.depth for mem, p in buffer_plan(spec, cfg).items()}


def ram_styles(spec) -> dict[str, str]:
    """``ram_style`` attribute per memory for the spec's FPGA (empty for an ASIC or a device
    without URAM, where synthesis picks): on an UltraScale+ device with URAM288 the memory of the
    largest spec buffer is ``ultra`` (URAM288) and the others ``block`` (RAMB36/RAMB18), which is
    how ``fpga_zu`` sizes them (weights in URAM, activations and outputs in block RAM)."""
    f = getattr(spec, "fpga", None)
    if f is None or f.synth_target != "xcup" or not f.uram:
        return {}
    sizes = {mem: spec.buffers[name].capacity_bits for mem, (name, _) in MEMORIES.items()}
    if accumulates_in_array(spec):
        sizes.pop("o_mem")
    big = max(sizes, key=lambda m: sizes[m])
    return {mem: ("ultra" if mem == big else "block") for mem in MEMORIES}
