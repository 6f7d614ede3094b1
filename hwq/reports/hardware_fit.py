"""Markdown of the "Buffers and device fit" section of ``reports/hardware.md``.

:func:`fit_section_lines` returns the section's lines: for every preset the RTL buffers at the
spec's sizes (:func:`hwq.hw.buffers.buffer_plan`), and for every ``family: fpga`` preset its
device utilisation per resource from the committed per-block synthesis table
(:func:`hwq.hw.fit.demand`, ``hwq/hw/fit_table.json``; ``tests/test_fpga_fit.py`` re-synthesises
and checks it). No synthesis runs here. ``python -m hwq.reports.hardware_fit`` prints the section.
"""

from __future__ import annotations

from typing import Mapping, Sequence


def _plan_rows(spec) -> list[str]:
    from hwq.hw.buffers import buffer_plan
    from hwq.hw.presets import array_config_for

    cfg = array_config_for(spec)
    rows = []
    for p in buffer_plan(spec, cfg).values():
        rows.append(f"| `{spec.name}` | `{p.memory}` | {p.buffer} | {p.word_bits} | {p.depth} | {p.bits / 8192:.0f} "
                    f"| {p.capacity_bits / 8192:.0f} | {p.access_bits} | {p.ports} |")
    return rows


def fit_section_lines(presets: Sequence[str] | None = None, table: Mapping | None = None) -> list[str]:
    """Lines of the "Buffers and device fit" section (presets: default every preset)."""
    from hwq.hw.fit import CELL_NAMES, FIELDS, demand, load_table, load_unchecked
    from hwq.hw.synth import _SYNTH_CMD
    from hwq.spec import PRESETS

    names = list(presets or PRESETS)
    table = load_table() if table is None else table
    specs = [load_unchecked(n) for n in names]
    lines = ["## Buffers and device fit", "",
             "`hwq rtl --arch P` emits each buffer at the spec's capacity: depth = capacity / word width "
             "(`hwq.hw.buffers`). One RTL word spans `banks` physical ports of the spec's access width; "
             "the cost model charges `bits / access_bits` accesses, the same numbers. The buffers carry no "
             "per-word init (every word is written before it is read), so Yosys maps them to block RAM "
             "(and URAM288 on UltraScale+).", "",
             "| preset | memory | spec buffer | word (bits) | depth (words) | RTL KiB | spec KiB | access (bits) "
             "| banks |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for spec in specs:
        lines += _plan_rows(spec)
    fpga = [s for s in specs if s.fpga is not None]
    for spec in fpga:
        f = spec.fpga
        cells = CELL_NAMES[f.synth_target]
        cmd = _SYNTH_CMD[f.synth_target].format(top="T")
        lines += ["", f"### `{spec.name}` on {f.device}", "",
                  f"Yosys 0.23 `{cmd}`, hierarchical: the PE and the decoder synthesised once and counted per "
                  f"instance, the `pe_array` top (sequencer, dequantizers, buffers) with both as black boxes. "
                  f"Numbers from `hwq/hw/fit_table.json` (`python -m hwq.hw.fit --update`).", "",
                  "| resource | needed | device | utilisation | made of | source |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for res, need in demand(spec, table).items():
            if need.needed == 0 and need.available == 0:
                continue  # the device has none and the array needs none (URAM on iCE40)
            label = f"{res} ({cells[res]})" if res in FIELDS and cells[res] != res else res
            lines.append(f"| {label} | {need.needed:g} | {need.available:g} | {100 * need.utilisation:.1f} % "
                         f"| {need.detail} | {need.source} |")
    lines.append("")
    return lines


def main() -> int:
    """Print the section."""
    print("\n".join(fit_section_lines()))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
