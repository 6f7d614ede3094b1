"""What ``hwq rtl`` emits for an accelerator spec: the array and every block, with port docs.

:func:`rtl_blocks` maps a spec to named blocks (Amaranth components and the Verilog module
each becomes); :func:`write_rtl` writes the Verilog, the Yosys script ``synth.ys`` and a
``README.md`` that lists every port with its width and payload fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from hwq.atomic import atomic_dir
from hwq.datatypes import FixedFormat
from hwq.errors import UsageError
from hwq.hw.config import ArrayConfig, array_config_from_spec
from hwq.hw.fixed_datapath import FixedDatapathConfig


@dataclass
class Block:
    """One emitted block: Verilog ``module`` (top), its files and the component behind it."""

    module: str
    component: object
    summary: str
    files: list[str] = field(default_factory=list)


def buffer_depths(spec, cfg: ArrayConfig) -> dict[str, int]:
    """Buffer depths (words) at the spec's sizes: capacity bits over the word width
    (:func:`hwq.hw.buffers.buffer_plan`; no cap: ``hwq rtl`` emits the buffers the spec prices)."""
    from hwq.hw.buffers import buffer_depths as depths

    return depths(spec, cfg)


def array_config_for(spec, **overrides) -> ArrayConfig:
    """The preset's full-size :class:`ArrayConfig` with buffer depths from its SRAM sizes
    (``overrides``, e.g. smaller depths for a quick simulation, win)."""
    cfg = array_config_from_spec(spec)
    return array_config_from_spec(spec, **{**buffer_depths(spec, cfg), **overrides})


def fixed_config_for(spec, *, lanes: int | None = None, khot: int | None = None) -> FixedDatapathConfig:
    """Fixed-point datapath formats for an FPGA spec.

    A spec may carry ``fixed`` (a :class:`FixedDatapathConfig`); otherwise QFX's 8-bit setting:
    activations ``ap_fixed<A, A/2>`` (A = widest act_bits), weights ``ap_fixed<8, 2>``, BN scale
    ``ap_fixed<8, 3>``, BN shift ``ap_fixed<12, 6>``, residual like the activations, output
    ``ap_fixed<A, A/2, RND, SAT>``.
    """
    given = getattr(spec, "fixed", None)
    if isinstance(given, FixedDatapathConfig):
        cfg = given
    else:
        a = max(spec.arithmetic.act_bits)
        cfg = FixedDatapathConfig(lanes=spec.array.lanes, x_fmt=FixedFormat(a, a // 2), w_fmt=FixedFormat(8, 2),
                                  bn_fmt=FixedFormat(8, 3), shift_fmt=FixedFormat(12, 6),
                                  res_fmt=FixedFormat(a, a // 2), out_fmt=FixedFormat(a, a // 2, rounding="RND",
                                                                                       overflow="SAT"))
    kw = {}
    if lanes is not None:
        kw["lanes"] = lanes
    if khot is not None:
        kw["khot"] = khot
    if kw:
        from dataclasses import replace

        cfg = replace(cfg, **kw)
    return cfg


def array_top(spec, cfg: ArrayConfig):
    """The ``pe_array`` component ``hwq rtl`` emits: hierarchical, buffers with the spec's FPGA
    ``ram_style`` (:func:`hwq.hw.buffers.ram_styles`)."""
    from hwq.hw.array import PEArray
    from hwq.hw.buffers import ram_styles

    return PEArray(cfg, hierarchical=True, ram_styles=ram_styles(spec))


def rtl_blocks(spec, cfg: ArrayConfig | None = None) -> dict[str, Block]:
    """Every block ``hwq rtl`` emits for ``spec``, by Verilog module name (array first)."""
    from hwq.hw.array import DECODER_MODULE, PE_MODULE, make_decoder, make_pe
    from hwq.hw.dequant import BitSerialDequant
    from hwq.hw.fixed_datapath import FixedDatapath

    cfg = cfg or array_config_for(spec)
    blocks = {
        "pe_array": Block("pe_array", array_top(spec, cfg),
                          f"{cfg.rows}x{cfg.cols} weight-stationary PE array, {cfg.lanes} lanes per PE, "
                          f"{cfg.mode.replace('_', '-')}, formats "
                          + ", ".join(f"{f}{b}" for f, b in cfg.formats),
                          ["pe_array.v", f"{PE_MODULE}.v", f"{DECODER_MODULE}.v"]),
        PE_MODULE: Block(PE_MODULE, make_pe(cfg), "one PE of the array (weight registers + lanes-wide MAC)",
                         [f"{PE_MODULE}.v"]),
        DECODER_MODULE: Block(DECODER_MODULE, make_decoder(cfg),
                              "weight decoder (ROM from hwq.datatypes), cols x lanes instances in the array",
                              [f"{DECODER_MODULE}.v"]),
        "dequant": Block("dequant", BitSerialDequant(psum_bits=cfg.seg_bits, scale_bits=cfg.scale_bits,
                                                     acc_bits=cfg.acc_bits, digits_per_cycle=1),
                         "bit-serial dequantizer (1 scale bit per cycle), standalone with streams",
                         ["dequant.v"]),
    }
    if spec.family == "fpga":
        fx = fixed_config_for(spec)
        blocks["fixed_datapath"] = Block("fixed_datapath", FixedDatapath(fx),
                                         f"fixed-point MAC+BN+residual+ReLU, out {fx.out_fmt.name}",
                                         ["fixed_datapath.v"])
        kx = fixed_config_for(spec, khot=2)
        blocks["fixed_datapath_khot"] = Block("fixed_datapath_khot", FixedDatapath(kx),
                                              "the same, K-hot (K=2) weights and BN scale: multiplier-free",
                                              ["fixed_datapath_khot.v"])
    return blocks


def _port_lines(component) -> list[str]:
    rows = []
    for path, member in _flat_members(component.signature):
        name = "__".join(path)
        direction = "input" if member.flow == wiring.In else "output"
        shape = member.shape
        width = shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width
        kind = _describe_shape(shape)
        rows.append(f"| `{name}` | {direction} | {width} | {kind} |")
    return rows


def _flat_members(sig, prefix=()):
    for name, member in sig.members.items():
        if member.is_port:
            yield prefix + (name,), member
        else:
            yield from _flat_members(member.signature, prefix + (name,))


def _describe_shape(shape) -> str:
    if isinstance(shape, data.StructLayout):
        return "struct: " + ", ".join(f"`{n}` [{f.offset}+:{Shape.cast(f.shape).width if not isinstance(f.shape, data.Layout) else f.shape.size}] {_describe_shape(f.shape)}"
                                      for n, f in shape)
    if isinstance(shape, data.ArrayLayout):
        return f"array of {shape.length} x ({_describe_shape(shape.elem_shape)}, {_width(shape.elem_shape)} bits), element i at bits [i*{_width(shape.elem_shape)}+:...]"
    s = Shape.cast(shape)
    return ("signed" if s.signed else "unsigned")


def _width(shape) -> int:
    return shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width


def readme_text(spec, cfg: ArrayConfig, blocks: dict[str, Block], clocked: set[str] | None = None) -> str:
    """README.md of an RTL folder: what each file is and every port of every block.

    ``clocked``: modules with ``clk``/``rst`` ports (default: all; combinational blocks such as
    the weight decoder have neither).
    """
    from hwq.hw.buffers import buffer_plan
    from hwq.timing import PIPELINE_DEPTH_CYCLES

    plan = buffer_plan(spec, cfg) if _spec_sized(spec, cfg) else None

    lines = [
        f"# RTL of `{spec.name}`",
        "",
        f"Generated by `hwq rtl --arch {spec.name} --out DIR` (Amaranth {_amaranth_version()}); do not edit. "
        "`hwq synth DIR` synthesises every block with Yosys (`synth.ys` is the script for "
        f"`{spec.fpga.synth_target if getattr(spec, 'fpga', None) is not None else 'xilinx'}`, hwq.hw.synth).",
        "",
        "Clocked blocks are synchronous to `clk` with an active-high synchronous `rst` (the port tables "
        "list them; the weight decoder is combinational). Streams use "
        "`*__valid`/`*__ready`/`*__payload` (a beat moves on a rising edge where valid and ready are both high).",
        "",
        "## Array operation",
        "",
        f"- Tile: {cfg.rows} PE rows x {cfg.lanes} lanes = {cfg.tile_k} reduction elements x {cfg.cols} output "
        f"channels. Group size {cfg.group_size}: {cfg.segs} group segment(s) of {cfg.rows_per_seg} rows per tile.",
        f"- Fill `w_in` (word `(nt*k_tiles + kt)*{cfg.rows} + r`: per column `lanes` codes, selector, scale) and "
        "`x_in` (word `kt*M + m`: the layer's activations) while `busy` is low, then pulse `start` with `cfg` "
        "(`m`, `k_tiles`, `n_tiles`, `fmt` = index into the format list below, `m_tile` = rows per M tile, "
        f"at most {cfg.out_depth}; 0 = one M tile of all `m` rows).",
        "- Loop order n tile, M tile, k tile; partial sums of the M tile accumulate in `o_mem` across k tiles; "
        "outputs (nt-major, then m) leave on each M tile's last k tile.",
        f"- Cycles from the start edge to the edge that moves the last `out` word (out ready held high): "
        f"`n_tiles*k_tiles*sum over M tiles of (rows + (m_t+1)*I + {PIPELINE_DEPTH_CYCLES})`, m_t = rows of the "
        "M tile, I = cycles per weight (hwq.timing.layer_compute_cycles with m_tile).",
        "- Partial sums: " + ("elided (first k tile writes without reading, last k tile does not write back)"
                              if cfg.psum_elide else "read-modify-write on every k tile")
        + "; `psum_reads`/`psum_writes` count the run's `o_mem` row accesses (cleared by `start`; "
        "hwq.timing.psum_row_accesses).",
        "- Formats (`cfg.fmt`): " + ", ".join(f"{i}: {f}{b} (I={cfg.interval(i)})" for i, (f, b) in enumerate(cfg.formats)),
        f"- Decoder members (selector = member index within the format): {', '.join(cfg.members)}",
        f"- Buffers: x {cfg.x_depth} words, w {cfg.w_depth} words, o_mem (partial sums) {cfg.out_depth} words.",
    ]
    if plan is not None:
        lines += ["- Buffer sizes are the spec's (hwq.hw.buffers): depth = capacity / word; no per-word init "
                  "(written before read), so Yosys maps them to block RAM / URAM / SPRAM:", "",
                  "| memory | spec buffer | word (bits) | depth (words) | bits | spec access (bits) | banks per word |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| `{p.memory}` | {p.buffer} | {p.word_bits} | {p.depth} | {p.bits} | {p.access_bits} | {p.ports} |"
                  for p in plan.values()]
    lines += [
        "",
        "## Files and ports",
    ]
    for name, blk in blocks.items():
        lines += ["", f"### `{blk.module}` — {blk.summary}", "",
                  "Files: " + ", ".join(f"`{f}`" for f in blk.files), "",
                  "| port | dir | bits | layout |", "| --- | --- | --- | --- |"]
        if clocked is None or blk.module in clocked:
            lines += ["| `clk` | input | 1 | clock |", "| `rst` | input | 1 | synchronous reset, active high |"]
        lines += _port_lines(blk.component)
    return "\n".join(lines) + "\n"


def _spec_sized(spec, cfg: ArrayConfig) -> bool:
    """Whether ``cfg``'s buffer depths are the spec's (not overridden)."""
    try:
        return buffer_depths(spec, cfg) == {"x_depth": cfg.x_depth, "w_depth": cfg.w_depth, "out_depth": cfg.out_depth}
    except (UsageError, ValueError, KeyError):  # a spec the plan cannot size: no table
        return False


def _amaranth_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("amaranth")


def synth_blocks(blocks: dict[str, Block]) -> dict[str, list[str]]:
    """``{module: [files]}`` for the Yosys script."""
    return {b.module: b.files for b in blocks.values()}


def write_rtl(spec, out_dir: Path, cfg: ArrayConfig | None = None) -> list[str]:
    """Write every block's Verilog, ``synth.ys`` and ``README.md`` to ``out_dir`` (atomically:
    a temporary sibling folder renamed into place). Returns the file names."""
    from hwq.hw.generate import to_verilog
    from hwq.hw.synth import yosys_script

    cfg = cfg or array_config_for(spec)
    blocks = rtl_blocks(spec, cfg)
    files: dict[str, str] = {}
    for name, blk in blocks.items():
        if name == "pe_array":
            files["pe_array.v"] = to_verilog(blk.component, "pe_array")
        elif blk.files[0] not in files:
            files[blk.files[0]] = to_verilog(blk.component, blk.module)
    target = spec.fpga.synth_target if getattr(spec, "fpga", None) is not None else "xilinx"
    files["synth.ys"] = yosys_script(synth_blocks(blocks), target)
    files["blocks.json"] = json.dumps({"spec": spec.name, "blocks": synth_blocks(blocks),
                                       "summaries": {b.module: b.summary for b in blocks.values()}}, indent=2) + "\n"
    clocked = {b.module for b in blocks.values() if re.search(r"^\s*input clk;", files[b.files[0]], re.M)}
    files["README.md"] = readme_text(spec, cfg, blocks, clocked)
    with atomic_dir(out_dir, marker="hwq rtl") as tmp:
        for fname, text in sorted(files.items()):
            (tmp / fname).write_text(text)
    return sorted(files)
