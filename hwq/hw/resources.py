"""Resource tables (Markdown) for synthesis results (columns: :data:`hwq.hw.synth.RESOURCE_KEYS`)."""

from __future__ import annotations

from typing import Mapping

from hwq.hw.synth import RESOURCE_KEYS


def _fmt(v: float) -> str:
    return f"{v:g}"


def resources_table(per_block: Mapping[str, Mapping[str, float]], summaries: Mapping[str, str] | None = None) -> list[str]:
    """Markdown table rows: one per block, columns :data:`RESOURCE_KEYS`."""
    lines = ["| block | " + " | ".join(RESOURCE_KEYS) + " |", "| --- |" + " --- |" * len(RESOURCE_KEYS)]
    for block, res in per_block.items():
        label = f"`{block}`" + (f" ({summaries[block]})" if summaries and block in summaries else "")
        lines.append(f"| {label} | " + " | ".join(_fmt(res.get(k, 0)) for k in RESOURCE_KEYS) + " |")
    return lines


def resources_markdown(name: str, by_target: Mapping[str, Mapping[str, Mapping[str, float]]],
                       summaries: Mapping[str, str] | None = None) -> str:
    """``resources.md`` of an RTL folder: a table per synthesis target."""
    lines = [f"# Yosys resources of `{name}`", "",
             "Regenerate: `hwq synth DIR --target T` for T in " + ", ".join(f"`{t}`" for t in by_target) + ". "
             "xilinx: 7-series cells from `synth_xilinx -noiopad`; xcup: UltraScale+ cells from "
             "`synth_xilinx -family xcup -uram -noiopad` (DSP48E2; URAM = URAM288); BRAM in 36 Kb blocks "
             "(RAMB18 = 0.5). ice40: `synth_ice40 -dsp` (DSP = SB_MAC16, BRAM = SB_RAM40_4K, SPRAM = "
             "SB_SPRAM256KA). Counts include every instance of a replicated block; buffers are at the "
             "spec's depths (hwq.hw.buffers).",
             ""]
    for target, per_block in by_target.items():
        lines += [f"## {target}", ""] + resources_table(per_block, summaries) + [""]
    return "\n".join(lines)
