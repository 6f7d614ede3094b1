"""Yosys synthesis of generated Verilog: scripts, cell counts, resource summaries.

For each block the script runs, on its top module, one of (:data:`TARGETS`):

* ``xilinx``: ``synth_xilinx -noiopad`` (7-series cells: DSP48E1, RAMB36E1/RAMB18E1);
* ``xcup``: ``synth_xilinx -family xcup -uram -noiopad`` (UltraScale+: DSP48E2, RAMB36E2/RAMB18E2
  and, for large memories, URAM288; Yosys 0.23 supports both, ``-uram`` being xcup-only);
* ``ice40``: ``synth_ice40 -dsp`` (SB_MAC16, SB_RAM40_4K, SB_SPRAM256KA);

keeping the hierarchy (a replicated PE is synthesised once and counted per instance), and
writes ``stat -json``; the cells of ``design.num_cells_by_type`` are grouped into
:data:`RESOURCE_KEYS`: LUT / FF / CARRY / DSP / BRAM (36 Kb equivalents on Xilinx, RAMB18 = 0.5;
4 Kb EBR blocks on iCE40) / URAM (URAM288) / SPRAM (SB_SPRAM256KA) / LUTRAM / other.

Path independence: every source is copied into the work folder under a name derived from the
block (``<top>__<i>.v``) and read from there, so the same Verilog gives the same cells whatever
file name or folder the caller keeps it under (Yosys's identifiers carry the file name).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from hwq.errors import HwqError, UsageError
from hwq.toolchain import require_yosys

TARGETS = ("xilinx", "xcup", "ice40")
RESOURCE_KEYS = ("LUT", "FF", "CARRY", "DSP", "BRAM", "URAM", "SPRAM", "LUTRAM", "other")
#: Name of the DSP cell each target maps multipliers to (for messages).
DSP_CELL = {"xilinx": "DSP48E1", "xcup": "DSP48E2", "ice40": "SB_MAC16"}

_SYNTH_CMD = {
    "xilinx": "synth_xilinx -top {top} -noiopad",
    "xcup": "synth_xilinx -family xcup -uram -top {top} -noiopad",
    "ice40": "synth_ice40 -top {top} -dsp",
}


def yosys_script(blocks: Mapping[str, Sequence[str]], target: str, stat_dir: str = ".", *,
                 nodsp: bool = False, libs: Mapping[str, Sequence[str]] | None = None) -> str:
    """Yosys script synthesising every block ``{top: [verilog files]}`` for ``target``.

    Each block writes ``{stat_dir}/stat_{top}.json``. ``nodsp`` maps multipliers to LUTs
    (``-nodsp`` on Xilinx, no ``-dsp`` on iCE40), for LUT-only comparisons. ``libs``
    ``{top: [files]}``: modules read as black boxes (``read_verilog -lib``) for that block, so a
    top is synthesised without the blocks it instantiates (they appear as cells of their name).
    """
    if target not in TARGETS:
        raise UsageError(f"unknown synthesis target {target!r}; choose one of {', '.join(TARGETS)}")
    lines = [f"# hwq: Yosys synthesis of every generated block for {target} (run: yosys -s <this file>)"]
    for top, files in blocks.items():
        lines += ["design -reset"]
        lines += [f"read_verilog -lib {f}" for f in (libs or {}).get(top, ())]
        lines += [f"read_verilog {f}" for f in files]
        cmd = _SYNTH_CMD[target].format(top=top)
        if nodsp:
            cmd = cmd + " -nodsp" if target != "ice40" else cmd.replace(" -dsp", "")
        lines += [cmd,
                  f"tee -q -o {stat_dir}/stat_{top}.json stat -json -top {top}"]
    return "\n".join(lines) + "\n"


def classify(cells: Mapping[str, int], target: str) -> dict[str, float]:
    """Group Yosys cell counts into :data:`RESOURCE_KEYS` for ``target``."""
    out = {k: 0.0 for k in RESOURCE_KEYS}
    for cell, n in cells.items():
        c = cell.lstrip("$").split("\\")[-1]
        if target in ("xilinx", "xcup"):
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
            elif c.startswith("URAM288"):
                key = "URAM"
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
            elif c.startswith("SB_SPRAM"):
                key = "SPRAM"
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


def _stage(files: Sequence[Path], top: str, kind: str, workdir: Path) -> list[str]:
    """Copy ``files`` into ``workdir`` as ``<top>__<kind><i>.v``; return the new names (path independence)."""
    names = []
    for i, f in enumerate(files):
        name = f"{top}__{kind}{i}.v"
        (workdir / name).write_bytes(Path(f).read_bytes())
        names.append(name)
    return names


def synthesize(blocks: Mapping[str, Sequence[Path]], target: str, workdir: Path, *,
               nodsp: bool = False, libs: Mapping[str, Sequence[Path]] | None = None) -> dict[str, dict]:
    """Synthesise each block; return ``{top: {"cells": {...}, "resources": {...}}}``.

    ``libs``: per block, Verilog files of modules kept as black boxes (see :func:`yosys_script`);
    their instances are listed in ``cells`` under the module name and counted as ``other``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    staged = {t: _stage(fs, t, "src", workdir) for t, fs in blocks.items()}
    staged_libs = {t: _stage(fs, t, "lib", workdir) for t, fs in (libs or {}).items()}
    # One Yosys process per block: Yosys keeps its identifier table across `design -reset`, so a
    # block synthesised after others in the same process maps differently (ABC sees another order).
    for top in staged:
        script = yosys_script({top: staged[top]}, target, nodsp=nodsp,
                              libs={top: staged_libs[top]} if top in staged_libs else None)
        run_yosys(script, workdir, log_name=f"yosys_{target}_{top}.log")
    out = {}
    for top in blocks:
        stat = json.loads((workdir / f"stat_{top}.json").read_text())
        cells = {k: int(v) for k, v in stat["design"]["num_cells_by_type"].items()}
        out[top] = {"cells": cells, "resources": classify(cells, target)}
    return out
