"""Markdown of the "K-hot vs multiplier datapath" section of ``reports/hardware.md``.

The three variants of the ``fpga_zu`` fixed-point datapath (:class:`hwq.hw.fixed_datapath.FixedDatapath`):
multipliers in DSPs, the same multipliers in LUTs (``nodsp``), and K-hot (K=2) weights and BN scale
(:mod:`hwq.hw.shift_add`). Resources come from the caller's Yosys results; routed Fmax from the
iCE40 timing section (:func:`hwq.reports.hardware_timing.routed_results`, LUT multipliers, median
of its seeds) where that module is present. The winner on LUTs and DSPs is named from the numbers.
"""

from __future__ import annotations

from typing import Mapping

#: Labels of the three datapath blocks in the hardware report.
MUL_DSP, MUL_LUT, KHOT = "fixed_datapath", "fixed_datapath_nodsp", "fixed_datapath_khot"
#: The timing section's label of each block it routes (it routes ``fixed_datapath`` with LUT multipliers).
ROUTED_AS = {MUL_LUT: "fixed_datapath", KHOT: "fixed_datapath_khot"}


def khot_section_lines(results: Mapping[str, Mapping[str, Mapping[str, float]]],
                       routed: Mapping[str, object] | None, *, khot: int, term_bits: int,
                       shift_bits: int) -> list[str]:
    """Lines of the section: ``results[target][label]`` resources; ``routed[label]`` a
    :class:`hwq.hw.pnr.PnrResult` (or None when the timing section is absent); ``khot`` terms per
    weight; a term's width ``term_bits`` with ``shift_bits`` of shift."""
    x, i = results["xilinx"], results["ice40"]
    lines = ["## K-hot vs multiplier fixed-point datapath", "",
             f"The `fpga_zu` fixed-point datapath (MAC + BN + residual + ReLU + requantization, one beat per cycle) "
             f"three ways: multipliers in DSPs, the same multipliers in LUTs, and K-hot (K={khot}) weights and BN scale "
             "with no multiplier. LUT = LUT1-6 / SB_LUT4; other = MUXF7/MUXF8/INV (Xilinx). Routed Fmax: the "
             "iCE40 routed-Fmax section above (LUT multipliers on HX8K; the DSP variant is not routed: nextpnr-ice40 "
             "does not time inside SB_MAC16). LUT·ns per beat = iCE40 LUTs x routed clock period.", "",
             "| datapath | xilinx LUT | xilinx other | xilinx CARRY | xilinx DSP | ice40 LUT | ice40 CARRY | ice40 DSP "
             "| routed Fmax HX8K (MHz) | LUT·ns per beat (ice40) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, name in ((MUL_DSP, "multipliers in DSPs"), (MUL_LUT, "multipliers in LUTs"),
                        (KHOT, f"K-hot, K={khot}")):
        rx, ri = x[label], i[label]
        r = (routed or {}).get(ROUTED_AS.get(label, ""))
        fmax = f"{r.fmax_mhz:.1f}" if r is not None else "-"
        lutns = f"{ri['LUT'] * 1000 / r.fmax_mhz:,.0f}" if r is not None else "-"
        lines.append(f"| `{label}` ({name}) | {rx['LUT']:g} | {rx['other']:g} | {rx['CARRY']:g} | {rx['DSP']:g} | "
                     f"{ri['LUT']:g} | {ri['CARRY']:g} | {ri['DSP']:g} | {fmax} | {lutns} |")
    kx, mx, ki, mi = x[KHOT], x[MUL_LUT], i[KHOT], i[MUL_LUT]
    wins = kx["LUT"] < mx["LUT"] and ki["LUT"] < mi["LUT"] and kx["DSP"] + ki["DSP"] == 0
    lines += ["",
              f"Winner on LUTs and DSPs: **{'K-hot' if wins else 'the multiplier datapath'}**. K-hot uses "
              f"{kx['LUT']:g} vs {mx['LUT']:g} LUTs on Xilinx ({kx['LUT'] / mx['LUT'] - 1:+.0%}) and {ki['LUT']:g} vs "
              f"{mi['LUT']:g} on iCE40 ({ki['LUT'] / mi['LUT'] - 1:+.0%}), and {kx['DSP'] + ki['DSP']:g} DSPs against "
              f"{x[MUL_DSP]['DSP']:g} (Xilinx) / {i[MUL_DSP]['DSP']:g} (iCE40) when the multipliers go to DSPs. "
              f"With DSPs available the multiplier datapath needs only {x[MUL_DSP]['LUT']:g} LUTs: K-hot pays off "
              "where DSPs are scarce (an array that fills its device's DSPs) or absent (iCE40 HX has none).",
              ""]
    if routed and all(v in routed for v in ROUTED_AS.values()):
        rk, rm = routed[ROUTED_AS[KHOT]], routed[ROUTED_AS[MUL_LUT]]
        lines += [f"Routed on HX8K (median of {len(rk.fmax_by_seed)} seeds): K-hot {rk.fmax_mhz:.1f} MHz vs "
                  f"{rm.fmax_mhz:.1f} MHz with LUT multipliers "
                  f"(**{'K-hot' if rk.fmax_mhz > rm.fmax_mhz else 'the multiplier datapath'}** is faster).", ""]
    else:
        lines += ["Routed Fmax: the iCE40 timing section (`hwq.reports.hardware_timing`) is not present.", ""]
    lines += ["How the K-hot datapath saves LUTs (`hwq/hw/shift_add.py`):", "",
              f"- Term shifts are {shift_bits} bits (a term is {term_bits} bits: nonzero, neg, shift): the NAF terms of "
              "a signed W-bit code have shifts 0..W-1 (an unsigned code's 0..W). They were one bit wider, which "
              f"doubled every variable shifter and widened every shifted term by {1 << shift_bits} bits.",
              "- A negative term is the one's complement of its shifted value plus a 1-bit carry operand, instead of "
              "a negating adder per term; every term of every lane (and the BN scale's terms) goes into one sum "
              "that Yosys maps to a single carry-save tree.",
              "- The zero term is an AND gate on the activation before the shifter, so a term is AND, shifter, XOR.",
              "",
              "Before this redesign (git 534f81d, same flow at the time): 1,630 Xilinx / 1,802 iCE40 LUTs against "
              "1,518 / 1,732 with LUT multipliers.", ""]
    return lines
