"""Yosys synthesis of generated Verilog: scripts, cell counts, resource summaries.

For each block the script runs ``synth_xilinx -noiopad`` (7-series cells) or
``synth_ice40 -dsp`` on its top module, keeping the hierarchy (a replicated PE is
synthesised once and counted per instance), and writes ``stat -json``; the cells of
``design.num_cells_by_type`` are grouped into LUT / FF / CARRY / DSP / BRAM (36 Kb
equivalents on Xilinx, 4 Kb blocks on iCE40) / LUTRAM / other.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from hwq.errors import HwqError, UsageError
from hwq.toolchain import require_yosys

TARGETS = ("xilinx", "ice40")
RESOURCE_KEYS = ("LUT", "FF", "CARRY", "DSP", "BRAM", "LUTRAM", "other")

_SYNTH_CMD = {
    "xilinx": "synth_xilinx -top {top} -noiopad",
    "ice40": "synth_ice40 -top {top} -dsp",
}


def yosys_script(blocks: Mapping[str, Sequence[str]], target: str, stat_dir: str = ".", *,
                 nodsp: bool = False) -> str:
    """Yosys script synthesising every block ``{top: [verilog files]}`` for ``target``.

    Each block writes ``{stat_dir}/stat_{top}.json``. ``nodsp`` maps multipliers to LUTs
    (``-nodsp`` on Xilinx, no ``-dsp`` on iCE40), for LUT-only comparisons.
    """
    if target not in TARGETS:
        raise UsageError(f"unknown synthesis target {target!r}; choose one of {', '.join(TARGETS)}")
    lines = [f"# hwq: Yosys synthesis of every generated block for {target} (run: yosys -s <this file>)"]
    for top, files in blocks.items():
        lines += ["design -reset"]
        lines += [f"read_verilog {f}" for f in files]
        cmd = _SYNTH_CMD[target].format(top=top)
        if nodsp:
            cmd = cmd + " -nodsp" if target == "xilinx" else cmd.replace(" -dsp", "")
        lines += [cmd,
                  f"tee -q -o {stat_dir}/stat_{top}.json stat -json -top {top}"]
    return "\n".join(lines) + "\n"


def classify(cells: Mapping[str, int], target: str) -> dict[str, float]:
    """Group Yosys cell counts into :data:`RESOURCE_KEYS` for ``target``."""
    out = {k: 0.0 for k in RESOURCE_KEYS}
    for cell, n in cells.items():
        c = cell.lstrip("$").split("\\")[-1]
        if target == "xilinx":
            if re.fullmatch(r"LUT[1-6]", c):
                key = "LUT"
            elif re.fullmatch(r"FD[RSCP]E(_1)?|FD[RSCP]|LD[CP]E?", c):
                key = "FF"
            elif c.startswith("CARRY"):
                key = "CARRY"
            elif c.startswith("DSP48"):
                key = "DSP"
            elif c.startswith("RAMB36"):
                out["BRAM"] += n
                continue
            elif c.startswith("RAMB18"):
                out["BRAM"] += 0.5 * n
                continue
            elif re.fullmatch(r"RAM\d+[XM].*|SRL.*", c):
                key = "LUTRAM"
            else:
                key = "other"
        else:
            if c == "SB_LUT4":
                key = "LUT"
            elif c.startswith("SB_DFF"):
                key = "FF"
            elif c == "SB_CARRY":
                key = "CARRY"
            elif c == "SB_MAC16":
                key = "DSP"
            elif c.startswith("SB_RAM"):
                key = "BRAM"
            else:
                key = "other"
        out[key] += n
    return out


def run_yosys(script: str, workdir: Path, log_name: str = "yosys.log", timeout_s: int = 1800) -> None:
    """Run ``script`` with Yosys in ``workdir``; raise :class:`HwqError` with the log tail on failure."""
    yosys = require_yosys()
    workdir = Path(workdir)
    (workdir / "_synth.ys").write_text(script)
    log = workdir / log_name
    with open(log, "w") as f:
        proc = subprocess.run([yosys, "-q", "-s", "_synth.ys"], cwd=workdir, stdout=f, stderr=subprocess.STDOUT,
                              timeout=timeout_s)
    if proc.returncode:
        tail = log.read_text().strip().splitlines()[-3:]
        raise HwqError(f"yosys failed (exit {proc.returncode}, log {log}): {' | '.join(tail)}")


def synthesize(blocks: Mapping[str, Sequence[Path]], target: str, workdir: Path, *,
               nodsp: bool = False) -> dict[str, dict]:
    """Synthesise each block; return ``{top: {"cells": {...}, "resources": {...}}}``."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    script = yosys_script({t: [str(Path(f).resolve()) for f in fs] for t, fs in blocks.items()}, target,
                          nodsp=nodsp)
    run_yosys(script, workdir, log_name=f"yosys_{target}.log")
    out = {}
    for top in blocks:
        stat = json.loads((workdir / f"stat_{top}.json").read_text())
        cells = {k: int(v) for k, v in stat["design"]["num_cells_by_type"].items()}
        out[top] = {"cells": cells, "resources": classify(cells, target)}
    return out
