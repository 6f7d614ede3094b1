"""Bad-input sweep of issue 12: every listed case through ``python -m hwq``, before and after.

Each case runs as a new user would run it: a fresh ``python -m hwq`` process, cwd a scratch
folder of fixtures, the sensitivity cache in that folder. "Before" is a ``git archive`` of
``--before-ref`` (the commit the issue was filed against) unpacked into a temp folder and run
with ``PYTHONPATH`` pointing there; section 8 (commands added since that commit) is run
before/after against ``--before-new-ref`` instead, where those commands exist. "After" is
this working tree. Both use the interpreter running this script (the project's venv).

A case passes "after" when it meets its expectation: for a bad input, exit 1 or 2, exactly one
non-empty line on stderr, no traceback or "internal error", and no file under the scratch
folder created, changed or removed; the few success cases (determinism, litter cleaning,
an input that is now accepted) state their own check. The report is written atomically
(``hwq.atomic``) to ``--out``; the exit status is 1 when any "after" cell fails.

usage: python scripts/bad_input_sweep.py [--before-ref 1811df6] [--before-new-ref cb024a5]
                                         [--out reports/bad_input.md] [--no-before] [ID ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
LONG = "x" * 300
DIG = ["--model", "digits_cnn", "--budget", "3uJ", "--pareto", "0"]
TMP_MARKS = (".hwq-tmp-", ".tmp")


@dataclass
class Case:
    """One sweep row: ``argv`` (``W/`` = the scratch folder), a setup kind, and what "after" must show."""

    cid: str
    desc: str
    argv: list[str]
    setup: str | None = None
    expect: str = "error"  # "error", "ok" (exit 0, nothing else checked), or a special kind
    patience: float = 1.0  # x --timeout: a whole `hwq rtl` before the fix takes minutes on a loaded machine
    section: int = field(init=False)

    def __post_init__(self) -> None:
        self.section = int(self.cid[0])


CASES: list[Case] = [
    # 1. tracebacks
    Case("1a", "binary spec: cost", ["cost", "--model", "digits_cnn", "--arch", "W/bin.yaml"]),
    Case("1b", "binary spec: explore", ["explore", *DIG, "--arch", "W/bin.yaml", "--out", "W/ex_a"]),
    Case("1c", "binary spec: rtl", ["rtl", "--arch", "W/bin.yaml", "--out", "W/ex_r"]),
    Case("1d", "binary spec: sim", ["sim", "--arch", "W/bin.yaml", "--layer", "digits_cnn:fc"]),
    Case("1e", "binary space: codesign", ["codesign", "--model", "digits_cnn", "--budget", "3uJ", "--space",
                                          "W/bin.yaml", "--out", "W/ex_c"]),
    Case("1f", "quantize 0-size tensor", ["quantize", "W/zero.safetensors", "-o", "W/ex_q.safetensors", "--format",
                                          "int", "--bits", "4"]),
    Case("1g", "quantize NaN/Inf --format int", ["quantize", "W/nan.safetensors", "-o", "W/ex_q.safetensors",
                                                 "--format", "int", "--bits", "4", "--group-size", "0"]),
    Case("1h", "quantize -o existing folder", ["quantize", "W/ok.safetensors", "-o", "W/outdir", "--format", "int",
                                               "--bits", "4"]),
    Case("1i", "quantize -o unwritable place", ["quantize", "W/ok.safetensors", "-o", "/proc/hwq.safetensors",
                                                "--format", "int", "--bits", "4"]),
    Case("1j", "rtl --out ''", ["rtl", "--out", ""], patience=4),
    Case("1k", "explore --out under a file", ["explore", *DIG, "--out", "W/afile/sub"]),
    Case("1l", "explore --out under /proc", ["explore", *DIG, "--out", "/proc/hwq_out"]),
    Case("1m", "explore --out 300-char name", ["explore", *DIG, "--out", f"W/{LONG}"]),
    Case("1n", "rtl --out under a file", ["rtl", "--out", "W/afile/sub"], patience=4),
    Case("1o", "rtl --out under /proc", ["rtl", "--out", "/proc/hwq_rtl"], patience=4),
    Case("1p", "rtl --out 300-char name", ["rtl", "--out", f"W/{LONG}"], patience=4),
    Case("1q", "sim --build-dir under a file", ["sim", "--layer", "digits_cnn:fc", "--build-dir", "W/afile/b"]),
    Case("1r", "sim --build-dir 300-char name", ["sim", "--layer", "digits_cnn:fc", "--build-dir", f"W/{LONG}"]),
    Case("1s", "codesign --out under a file", ["codesign", "--model", "digits_cnn", "--budget", "3uJ", "--out",
                                               "W/afile/c", "--jobs", "1"]),
    Case("1t", "codesign --out 300-char name", ["codesign", "--model", "digits_cnn", "--budget", "3uJ", "--out",
                                                f"W/{LONG}", "--jobs", "1"]),
    Case("1u", "synth corrupt blocks.json", ["synth", "W/rtlbad"]),
    Case("1v", "--calib pickled-object .npy", ["explore", "--model", "resnet18", "--budget", "5mJ", "--pareto", "0",
                                               "--calib", "W/pick", "--out", "W/ex_p"]),
    Case("1w", "cache entry is a folder", ["explore", *DIG, "--out", "W/ex_cf"], "cachedir"),
    Case("1x", ".hwq_cache is a file", ["explore", *DIG, "--out", "W/ex_cfile"], "cachefile"),
    # 2. user data clobbered
    Case("2a", "rtl --out existing file", ["rtl", "--out", "W/afile"], patience=4),
    Case("2b", "explore --out existing file", ["explore", *DIG, "--out", "W/afile"]),
    Case("2c", "explore --out folder with a user file", ["explore", *DIG, "--out", "W/userdir"]),
    Case("2d", "rtl --out folder with a user file", ["rtl", "--out", "W/userdir"], patience=4),
    Case("2e", "sim --build-dir folder with a user file", ["sim", "--layer", "digits_cnn:fc", "--build-dir",
                                                           "W/userdir"], patience=4),
    # 3. wrong answers instead of errors
    Case("3a", "--budget 1e308GJ", ["explore", "--model", "digits_cnn", "--budget", "1e308GJ", "--pareto", "0",
                                    "--out", "W/ex_inf"]),
    Case("3b", "NaN weights --format bitmod", ["quantize", "W/nan.safetensors", "-o", "W/ex_q.safetensors",
                                               "--format", "bitmod", "--bits", "4", "--group-size", "0"]),
    Case("3c", "NaN weights --format fixed --json", ["quantize", "W/nan.safetensors", "-o", "W/ex_q.safetensors",
                                                     "--format", "fixed", "--width", "8", "--int-bits", "3", "--json"]),
    Case("3d", "--calib-samples 0", ["explore", *DIG, "--calib-samples", "0", "--out", "W/ex_cs"]),
    Case("3e", "--width/--int-bits with --format int", ["quantize", "W/ok.safetensors", "-o", "W/ex_q.safetensors",
                                                        "--format", "int", "--bits", "4", "--width", "8",
                                                        "--int-bits", "2"]),
    Case("3f", "--group-size 64 with --format mx", ["quantize", "W/ok.safetensors", "-o", "W/ex_q.safetensors",
                                                    "--format", "mx", "--bits", "4", "--group-size", "64"]),
    Case("3g", "synth --blocks ''", ["synth", "W/rtlok", "--blocks", ""]),
    Case("3h", "NaN in cached sensitivity", ["explore", *DIG, "--out", "W/ex_nan"], "cachenan"),
    Case("3i", "wrong-shape cache entry", ["explore", *DIG, "--out", "W/ex_shape"], "cacheshape"),
    # 4. late checks
    Case("4a", "codesign --sim-layer nosuch", ["codesign", "--model", "digits_cnn", "--budget", "3uJ", "--sim-layer",
                                               "nosuch", "--out", "W/ex_sl", "--jobs", "1"]),
    Case("4b", "explore --pareto 1000000", ["explore", "--model", "digits_cnn", "--budget", "3uJ", "--pareto",
                                            "1000000", "--out", "W/ex_par"]),
    # 5. litter
    Case("5a", "stale temp folder of a killed explore (old name)", ["explore", *DIG, "--out", "W/ex_litter"],
         "litter", "litter"),
    Case("5b", "failed synth leaves .synth_xilinx", ["synth", "W/rtlsynthfail"], None, "synthfail"),
    Case("5c", "explore SIGKILLed mid-write, then rerun", ["explore", *DIG, "--out", "W/ex_kill"], None, "kill"),
    Case("5d", "stale sensitivity-cache temp of a killed run", ["explore", *DIG, "--out", "W/ex_ct"], "cachetmp",
         "cachetmp"),
    # 6. determinism
    Case("6a", "explore twice (--no-cache): plan.json, plan.csv, report.md",
         ["explore", "--model", "digits_cnn", "--budget", "3uJ", "--pareto", "2", "--no-cache", "--out", "W/ex_det"],
         None, "determinism"),
    # 7. poor messages
    Case("7a", "--budget -1mJ", ["explore", "--model", "digits_cnn", "--budget", "-1mJ"]),
    Case("7b", "cost --format nosuch", ["cost", "--model", "digits_cnn", "--format", "nosuch"]),
    Case("7c", "cost --weights-bits 4 (no --format): now accepted", ["cost", "--model", "digits_cnn",
                                                                     "--weights-bits", "4"], None, "ok"),
    Case("7d", "quantize input is a folder", ["quantize", "W/outdir", "-o", "W/ex_q.safetensors", "--format", "int",
                                              "--bits", "4"]),
    Case("7e", "--calib is a file", ["explore", "--model", "resnet18", "--budget", "5mJ", "--pareto", "0", "--calib",
                                     "W/afile", "--out", "W/ex_p"]),
    Case("7f", "empty spec file", ["cost", "--model", "digits_cnn", "--arch", "W/empty.yaml"]),
    # 8. commands added since 1811df6 (before = --before-new-ref)
    Case("8a", "export --plan binary file", ["export", "--plan", "W/bin.json", "--to", "qonnx", "W/ex_m.onnx"]),
    Case("8b", "export --plan empty file", ["export", "--plan", "W/empty.yaml", "--to", "qonnx", "W/ex_m.onnx"]),
    Case("8c", "export --plan wrong schema", ["export", "--plan", "W/wrong_schema.json", "--to", "qonnx",
                                              "W/ex_m.onnx"]),
    Case("8d", "export --plan of another model", ["export", "--plan", "W/plan.json", "--model", "resnet18",
                                                  "--to", "qonnx", "W/ex_m.onnx"]),
    Case("8e", "export --to hls4ml into a user folder", ["export", "--plan", "W/plan.json", "--to", "hls4ml",
                                                         "--arch", "fpga_zu", "W/userdir"]),
    Case("8f", "export --to qonnx output is a folder", ["export", "--plan", "W/plan.json", "--to", "qonnx",
                                                        "W/outdir"]),
    Case("8g", "export --fixed with --to hls4ml", ["export", "--plan", "W/plan.json", "--to", "hls4ml", "--fixed",
                                                   "--arch", "fpga_zu", "W/ex_h"]),
    Case("8h", "export --check with --to qonnx", ["export", "--plan", "W/plan.json", "--to", "qonnx", "--check",
                                                  "W/ex_m.onnx"]),
    Case("8i", "export --check on a model other than digits", ["export", "--plan", "W/plan_resnet18.json", "--to",
                                                               "hls4ml", "--check", "W/ex_h"]),
    Case("8j", "export --arch binary spec", ["export", "--plan", "W/plan.json", "--to", "hls4ml", "--arch",
                                             "W/bin.yaml", "W/ex_h"]),
    Case("8k", "export --arch ASIC preset for hls4ml", ["export", "--plan", "W/plan.json", "--to", "hls4ml",
                                                        "--arch", "bitmod", "W/ex_h"]),
    Case("8l", "export --weights missing", ["export", "--plan", "W/plan.json", "--to", "qonnx", "--weights",
                                            "W/nosuch.pt", "W/ex_m.onnx"]),
    Case("8m", "synth --pnr --device nosuch", ["synth", "W/rtlok", "--target", "ice40", "--pnr", "--device",
                                               "nosuch"]),
    Case("8n", "synth --pnr --package nosuch", ["synth", "W/rtlok", "--target", "ice40", "--pnr", "--device",
                                                "ice40up5k", "--package", "nosuch"]),
    Case("8o", "synth --pnr --seeds a,b", ["synth", "W/rtlok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--seeds", "a,b"]),
    Case("8p", "synth --pnr --seeds ''", ["synth", "W/rtlok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--seeds", ""]),
    Case("8q", "synth --pnr --freq -5", ["synth", "W/rtlok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--freq", "-5"]),
    Case("8r", "synth --pnr --freq nan", ["synth", "W/rtlok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--freq", "nan"]),
    Case("8s", "synth --pnr with --target xilinx", ["synth", "W/rtlok", "--pnr"]),
    Case("8t", "synth --device without --pnr", ["synth", "W/rtlok", "--target", "ice40", "--device", "ice40up5k"]),
    Case("8u", "finetune --plan binary file", ["finetune", "--plan", "W/bin.json", "--out", "W/ex_ft.pt"]),
    Case("8v", "finetune --plan of another model", ["finetune", "--plan", "W/plan.json", "--model", "resnet18",
                                                    "--out", "W/ex_ft.pt"]),
    Case("8w", "finetune --steps 0", ["finetune", "--plan", "W/plan.json", "--steps", "0", "--out", "W/ex_ft.pt"]),
    Case("8x", "finetune --steps -1", ["finetune", "--plan", "W/plan.json", "--steps", "-1", "--out", "W/ex_ft.pt"]),
    Case("8y", "finetune --lr nan", ["finetune", "--plan", "W/plan.json", "--lr", "nan", "--out", "W/ex_ft.pt"]),
    Case("8z", "finetune --lr inf", ["finetune", "--plan", "W/plan.json", "--lr", "inf", "--out", "W/ex_ft.pt"]),
    Case("8A", "finetune --out existing folder", ["finetune", "--plan", "W/plan.json", "--out", "W/outdir"]),
    Case("8B", "finetune --out under a file", ["finetune", "--plan", "W/plan.json", "--out", "W/afile/ft.pt"]),
    Case("8C", "codesign --address without --executor ray", ["codesign", *DIG[:4], "--address", "localhost:1",
                                                             "--out", "W/ex_c"]),
    Case("8D", "codesign --executor ray --address ''", ["codesign", *DIG[:4], "--executor", "ray", "--address", "",
                                                        "--out", "W/ex_c"]),
    Case("8E", "codesign --samples 0", ["codesign", *DIG[:4], "--samples", "0", "--out", "W/ex_c"]),
    Case("8F", "codesign --samples -5", ["codesign", *DIG[:4], "--samples", "-5", "--out", "W/ex_c"]),
    Case("8G", "codesign --sampler tpe without --samples", ["codesign", *DIG[:4], "--sampler", "tpe", "--out",
                                                            "W/ex_c"]),
    Case("8H", "codesign --space axis of the wrong type", ["codesign", *DIG[:4], "--space", "W/space_type.yaml",
                                                           "--out", "W/ex_c"]),
    Case("8I", "codesign --space unknown axis", ["codesign", *DIG[:4], "--space", "W/space_axis.yaml", "--out",
                                                 "W/ex_c"]),
    Case("8J", "codesign --synth-top -1", ["codesign", *DIG[:4], "--synth-top", "-1", "--out", "W/ex_c"]),
    Case("8K", "codesign --max-retries -1", ["codesign", *DIG[:4], "--max-retries", "-1", "--out", "W/ex_c"]),
    Case("8L", "bench nosuch", ["bench", "nosuch"]),
    Case("8M", "doctor (runs, exit 0 or 1 with a list)", ["doctor"], None, "doctor"),
    Case("8N", "--model torchvision:nosuch", ["cost", "--model", "torchvision:nosuch"]),
    Case("8O", "--model file.py:missing", ["cost", "--model", "W/build.py:missing"]),
    Case("8P", "--model a non-.pt2 file", ["cost", "--model", "W/afile"]),
    Case("8Q", "--model empty folder (as Hugging Face model)", ["cost", "--model", "W/outdir"]),
    Case("8R", "--model binary .pt2", ["cost", "--model", "W/bad.pt2"]),
    Case("8S", "sim --network nosuch", ["sim", "--network", "nosuch"]),
    Case("8T", "sim --network digits_cnn --images 0", ["sim", "--network", "digits_cnn", "--images", "0"]),
    Case("8U", "sim --network --report under a file", ["sim", "--network", "digits_cnn", "--images", "1", "--report",
                                                       "W/afile/r.md"]),
    Case("8V", "sim --images without --network", ["sim", "--layer", "digits_cnn:fc", "--images", "3"]),
    Case("8W", "explore --weights binary file", ["explore", *DIG, "--weights", "W/bin.json", "--out", "W/ex_w"]),
]


# ------------------------------------------------------------------------------ fixtures
def write_fixtures(w: Path, plan_src: Path | None) -> None:
    """Create the scratch folder ``w`` and every input file the cases name."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    (w / "bin.yaml").write_bytes(b"\xff\xfe\x00\x81binary\x00\xc3\x28")
    (w / "bin.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (w / "bad.pt2").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (w / "empty.yaml").write_text("")
    (w / "afile").write_text("user data\n")
    (w / "wrong_schema.json").write_text(json.dumps({"schema": "other/1", "rows": [1, 2]}) + "\n")
    (w / "build.py").write_text("import torch\n\ndef build():\n    return torch.nn.Linear(4, 4)\n")
    (w / "space_type.yaml").write_text("name: bad_types\nbase: bitmod_small\naxes:\n  rows: [eight, 16]\n")
    (w / "space_axis.yaml").write_text("name: bad_axis\nbase: bitmod_small\naxes:\n  nosuch_axis: [1, 2]\n")
    save_file({"w": torch.zeros(0, 4)}, str(w / "zero.safetensors"))
    save_file({"w": torch.tensor([[1.0, float("nan"), 2.0, float("inf")]] * 4)}, str(w / "nan.safetensors"))
    save_file({"w": torch.randn(8, 128)}, str(w / "ok.safetensors"))
    (w / "outdir").mkdir()
    (w / "userdir").mkdir()
    (w / "userdir" / "thesis.tex").write_text("mine\n")
    (w / "pick").mkdir()
    np.save(w / "pick" / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (w / "rtlbad").mkdir()
    (w / "rtlbad" / "blocks.json").write_text("{not json")
    for name, verilog in (("rtlsynthfail", "module top(input a; garbage\n"),
                          ("rtlok", "module top(input a, output b);\n  assign b = a;\nendmodule\n")):
        (w / name).mkdir()
        (w / name / "blocks.json").write_text(json.dumps({"spec": "x", "blocks": {"top": ["top.v"]}}))
        (w / name / "top.v").write_text(verilog)
    if plan_src is not None:
        shutil.copy(plan_src, w / "plan.json")
        plan = json.loads(plan_src.read_text())
        plan["inputs"]["model"] = "resnet18"
        (w / "plan_resnet18.json").write_text(json.dumps(plan, indent=1) + "\n")


def snapshot(w: Path) -> dict[str, str]:
    """Path -> content hash (or "dir") of everything under ``w`` but the caches and case outputs."""
    out: dict[str, str] = {}
    for p in sorted(w.rglob("*")):
        first = p.relative_to(w).parts[0]
        if first.startswith(("cache", "ex_", ".ex_")):
            continue
        rel = str(p.relative_to(w))
        out[rel] = "link" if p.is_symlink() else ("dir" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest())
    return out


# ------------------------------------------------------------------------------ running
@dataclass
class Tree:
    """A source tree to run ``hwq`` from."""

    label: str
    root: Path


def hwq(tree: Tree, argv: list[str], w: Path, env_extra: dict[str, str], timeout: float,
        on_start: Callable[[subprocess.Popen], None] | None = None) -> tuple[int | str, str, str]:
    """Run ``python -m hwq ARGV`` from ``tree`` in ``w``; (exit code or "timeout", stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(tree.root), "HWQ_CACHE_DIR": str(w / "cache_default"), **env_extra}
    env.pop("HWQ_DEBUG", None)
    argv = [a.replace("W/", f"{w}/", 1) if a.startswith("W/") else a for a in argv]
    proc = subprocess.Popen([sys.executable, "-m", "hwq", *argv], cwd=w, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    if on_start is not None:
        on_start(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return "timeout", out, err


def cache_for(tree: Tree, w: Path, kind: str, base: Path, timeout: float) -> str:
    """A sensitivity cache for digits_cnn in ``w/cache``, damaged as ``kind`` says; its path."""
    import numpy as np

    if not base.exists():
        hwq(tree, ["explore", *DIG, "--out", "W/ex_cachebase"], w, {"HWQ_CACHE_DIR": str(base)}, timeout * 4)
    c = w / "cache"
    if c.is_dir():
        shutil.rmtree(c)
    elif c.exists():
        c.unlink()
    if kind == "cachefile":
        c.write_text("not a folder\n")
        return str(c)
    shutil.copytree(base, c)
    entry = next((c / "sensitivity").glob("*.npz"))
    if kind == "cachedir":
        entry.unlink()
        entry.mkdir()
    elif kind in ("cachenan", "cacheshape"):
        z = dict(np.load(entry))
        if kind == "cachenan":
            z["values"] = np.full_like(z["values"], np.nan)
        else:
            z["values"], z["allowed"] = z["values"][:, :2], z["allowed"][:, :2]
        np.savez(entry, **z)
    elif kind == "cachetmp":  # what a run SIGKILLed while saving the entry leaves, under both names
        shutil.rmtree(c / "sensitivity")
        (c / "sensitivity").mkdir()
        for name in (f"{entry.stem}.tmp999999999.npz", f".{entry.name}.hwq-tmp-999999999-ab12.npz"):
            (c / "sensitivity" / name).write_bytes(b"PK\x03\x04 half-written")
    return str(c)


def _one(text: str, n: int = 200) -> str:
    text = " ".join(text.split()).replace("|", "\\|").replace("`", "'")
    return text if len(text) <= n else text[: n - 3] + "..."


def _temps(folder: Path, stem: str) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{stem}") or
                  (p.name.startswith(stem) and any(m in p.name for m in TMP_MARKS)))


def run_case(case: Case, tree: Tree, w: Path, timeout: float, cache_base: Path) -> dict:
    """Run ``case`` from ``tree``; a dict with the cell text and whether it meets the expectation."""
    env: dict[str, str] = {}
    if case.setup and case.setup.startswith("cache"):
        env["HWQ_CACHE_DIR"] = cache_for(tree, w, case.setup, cache_base, timeout)
    if case.setup == "litter":
        (w / ".ex_litter.tmpab12cd").mkdir(exist_ok=True)
        (w / ".ex_litter.tmpab12cd" / "plan.json").write_text('{"schema": "hwq.plan/1"}\n')
    before = snapshot(w)
    t0 = time.time()
    notes: list[str] = []
    if case.expect == "kill":
        return _kill_case(case, tree, w, timeout, env, t0)
    if case.expect == "determinism":
        return _determinism_case(case, tree, w, timeout, env, t0)
    rc, out, err = hwq(tree, case.argv, w, env, timeout * case.patience)
    timeout *= case.patience
    out, err = out.replace(f"{w}/", "W/"), err.replace(f"{w}/", "W/")  # short paths in the table
    lines = [ln for ln in err.splitlines() if ln.strip()]
    changed = sorted({k for k, _ in set(before.items()) ^ set(snapshot(w).items())})
    tb = "Traceback" in err or "internal error" in err
    if rc == "timeout":
        cell = f"still running at {timeout:.0f} s"
    else:
        msg = lines[-1] if lines else ""
        if case.cid == "3a" and (w / "ex_inf" / "plan.json").exists():
            msg += " / plan.json holds " + ("Infinity" if "Infinity" in (w / "ex_inf" / "plan.json").read_text()
                                            else "finite numbers")
        if case.cid in ("3b", "3c") and rc == 0:
            msg = " / ".join(ln.strip() for ln in out.strip().splitlines()[-3:])
        cell = f"exit {rc}: `{_one(msg)}`"
        if tb:
            cell += f" (traceback, {len(lines)} lines)" if "Traceback" in err else " (internal error)"
        elif len(lines) > 1:
            cell += f" ({len(lines)} lines on stderr)"
    if changed:
        notes.append("disk changed: " + ", ".join(changed[:3]) + (" ..." if len(changed) > 3 else ""))
    ok = rc in (1, 2) and len(lines) == 1 and not tb and not changed
    if case.expect == "ok":
        ok = rc == 0 and not tb and not changed
    elif case.expect == "doctor":
        ok = rc in (0, 1) and not tb and not changed
        cell = f"exit {rc}: {len(out.splitlines())} lines of checks" + (f", `{_one(lines[-1])}`" if lines else "")
    elif case.expect == "litter":
        left = (w / ".ex_litter.tmpab12cd").exists()
        notes = [f"stale .ex_litter.tmpab12cd {'kept' if left else 'removed'}"]
        ok = rc == 0 and not left and not tb
    elif case.expect == "synthfail":
        left = (w / "rtlsynthfail" / ".synth_xilinx").exists()
        notes = [".synth_xilinx " + ("left in the folder" if left else "not left")]
        changed_user = [c for c in changed if not c.startswith("rtlsynthfail/.synth_xilinx")]
        ok = rc in (1, 2) and len(lines) == 1 and not tb and not left and not changed_user
    elif case.expect == "cachetmp":
        sens = w / "cache" / "sensitivity"
        left = sorted(p.name for p in sens.iterdir() if "tmp" in p.name) if sens.is_dir() else []
        notes = [f"stale cache temps {'kept: ' + ', '.join(left) if left else 'removed'}"]
        ok = rc == 0 and not left and not tb
    if case.expect not in ("error", "synthfail"):
        cell = cell if rc != 0 or case.expect == "doctor" else f"exit {rc}"
    text = (cell + (f" ({'; '.join(notes)})" if notes else "")).replace(f"{w}/", "W/")
    return {"id": case.cid, "cell": text, "ok": ok, "s": round(time.time() - t0, 1)}


def _kill_case(case: Case, tree: Tree, w: Path, timeout: float, env: dict[str, str], t0: float) -> dict:
    """SIGKILL an explore as soon as a temp entry of its output appears, then rerun it once."""
    seen: list[str] = []

    def killer(proc: subprocess.Popen) -> None:
        end = time.time() + timeout * 4
        while time.time() < end and proc.poll() is None:
            found = _temps(w, "ex_kill")
            if found:
                seen.extend(found)
                os.killpg(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.005)

    import threading

    holder: dict = {}

    def start(proc: subprocess.Popen) -> None:
        holder["t"] = threading.Thread(target=killer, args=(proc,), daemon=True)
        holder["t"].start()

    hwq(tree, case.argv, w, env, timeout * 4, on_start=start)
    holder["t"].join()
    left_after_kill = _temps(w, "ex_kill")
    rc, _out, err = hwq(tree, case.argv, w, env, timeout * 4)
    left = _temps(w, "ex_kill")
    tb = "Traceback" in err or "internal error" in err
    if not seen:
        cell = "temp entry never seen (run finished before the kill)"
        ok = False
    else:
        cell = (f"killed with {', '.join(seen[:1])} present, {len(left_after_kill)} temp entr"
                f"{'y' if len(left_after_kill) == 1 else 'ies'} left; rerun exit {rc}, "
                + (f"left: {', '.join(left)}" if left else "no temp entries left"))
        ok = rc == 0 and not left and not tb
    return {"id": case.cid, "cell": cell, "ok": ok, "s": round(time.time() - t0, 1)}


def _determinism_case(case: Case, tree: Tree, w: Path, timeout: float, env: dict[str, str], t0: float) -> dict:
    """The same explore twice into the same --out: are plan.json, plan.csv and report.md byte-identical?"""
    names = ("plan.json", "plan.csv", "report.md")
    out_dir = w / "ex_det"
    digests = []
    rcs = []
    for _ in range(2):
        rc, _out, _err = hwq(tree, case.argv, w, env, timeout * 4)
        rcs.append(rc)
        digests.append({n: hashlib.sha1((out_dir / n).read_bytes()).hexdigest() if (out_dir / n).is_file() else None
                        for n in names})
    differ = [n for n in names if digests[0][n] != digests[1][n] or digests[0][n] is None]
    cell = f"exit {rcs[0]}, {rcs[1]}: " + (f"{', '.join(differ)} differ" if differ else
                                          "plan.json, plan.csv, report.md byte-identical")
    ok = rcs == [0, 0] and not differ
    return {"id": case.cid, "cell": cell, "ok": ok, "s": round(time.time() - t0, 1)}


# ------------------------------------------------------------------------------ main
def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def extract(ref: str, dest: Path) -> Tree:
    """``git archive REF`` unpacked into ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return Tree(f"{ref} ({_git('rev-parse', '--short', ref)})", dest)


def sweep(tree: Tree, cases: list[Case], scratch: Path, timeout: float) -> dict[str, dict]:
    """Every case of ``cases`` from ``tree`` in a fresh fixture folder; results by case id."""
    w = scratch / "w"
    cache_base = scratch / "cache_base"
    plan_src = scratch / "plan_src.json"
    write_fixtures(w, plan_src if plan_src.exists() else None)
    results: dict[str, dict] = {}
    for case in cases:
        res = run_case(case, tree, w, timeout, cache_base)
        results[case.cid] = res
        print(f"[{tree.label}] {case.cid} {'ok  ' if res['ok'] else 'FAIL'} {res['s']:5.1f} s  {res['cell']}",
              flush=True)
        write_fixtures(w, plan_src if plan_src.exists() else None)
    return results


def make_plan(tree: Tree, scratch: Path, timeout: float) -> None:
    """A real digits_cnn plan.json (``hwq explore`` of the current tree) for the export/finetune cases."""
    w = scratch / "planrun"
    w.mkdir(parents=True, exist_ok=True)
    rc, _o, err = hwq(tree, ["explore", *DIG, "--out", "W/p"], w, {"HWQ_CACHE_DIR": str(scratch / "cache_base")},
                      timeout * 6)
    if rc != 0:
        raise SystemExit(f"bad_input_sweep: could not make a plan for section 8: {err.strip()[-300:]}")
    shutil.copy(w / "p" / "plan.json", scratch / "plan_src.json")


def render(cases: list[Case], before: dict[str, dict], after: dict[str, dict], header: list[str]) -> str:
    """The Markdown report."""
    titles = {1: "Tracebacks", 2: "User data clobbered", 3: "Wrong answers instead of errors", 4: "Late checks",
              5: "Litter", 6: "Not deterministic", 7: "Poor messages", 8: "Commands added since"}
    lines = [*header, "", "| # | case | before | after |", "| --- | --- | --- | --- |"]
    section = 0
    for c in cases:
        if c.section != section:
            section = c.section
            lines.append(f"| **{section}** | **{titles[section]}** | | |")
        b = before.get(c.cid, {}).get("cell", "not run")
        a = after[c.cid]
        lines.append(f"| {c.cid} | {c.desc} | {b} | {'' if a['ok'] else '**FAIL** '}{a['cell']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before-ref", default="1811df6", help="commit the issue was filed against (sections 1-7)")
    ap.add_argument("--before-new-ref", default="cb024a5",
                    help="commit before this sweep's fixes, for section 8 (commands added since --before-ref)")
    ap.add_argument("--out", default=str(REPO / "reports" / "bad_input.md"), help="Markdown report to write")
    ap.add_argument("--timeout", type=float, default=25.0, help="seconds per case before it counts as running on")
    ap.add_argument("--no-before", action="store_true", help="run the current tree only (the before column says so)")
    ap.add_argument("--before-cache", default=None, metavar="FILE",
                    help="JSON of before cells: read the cases it has (same refs), write it after running the rest "
                         "(the before trees never change, so a rerun after a fix need not run them again)")
    ap.add_argument("ids", nargs="*", help="case ids to run (default: all)")
    args = ap.parse_args()
    cases = [c for c in CASES if not args.ids or c.cid in args.ids]
    if not cases:
        ap.error(f"no case has an id in {args.ids}")
    sys.path.insert(0, str(REPO))
    from hwq.atomic import write_text

    with tempfile.TemporaryDirectory(prefix="hwq_bad_input_sweep_") as tmp:
        scratch = Path(tmp)
        current = Tree("working tree", REPO)
        if any(c.section == 8 for c in cases):
            make_plan(current, scratch / "after", args.timeout)
            (scratch / "before").mkdir()
        else:
            (scratch / "after").mkdir()
            (scratch / "before").mkdir()
        before: dict[str, dict] = {}
        refs = f"{args.before_ref} {args.before_new_ref} {args.timeout}"
        cache = Path(args.before_cache) if args.before_cache else None
        if cache is not None and cache.is_file():
            saved = json.loads(cache.read_text())
            if saved.get("refs") == refs:
                before.update({k: v for k, v in saved["cells"].items() if any(c.cid == k for c in cases)})
        todo = [c for c in cases if c.cid not in before]
        if not args.no_before and todo:
            old = extract(args.before_ref, scratch / "tree_old")
            before.update(sweep(old, [c for c in todo if c.section < 8], scratch / "before", args.timeout))
            if any(c.section == 8 for c in todo):
                new = extract(args.before_new_ref, scratch / "tree_new")
                (scratch / "before8").mkdir()
                shutil.copy(scratch / "after" / "plan_src.json", scratch / "before8" / "plan_src.json")
                before.update(sweep(new, [c for c in todo if c.section == 8], scratch / "before8", args.timeout))
            if cache is not None:
                prev = json.loads(cache.read_text())["cells"] if cache.is_file() else {}
                write_text(cache, json.dumps({"refs": refs, "cells": {**prev, **before}}, indent=1) + "\n")
        after = sweep(current, cases, scratch / "after", args.timeout)
    head = _git("rev-parse", "--short", "HEAD")
    dirty = " plus uncommitted changes" if _git("status", "--porcelain", "--untracked-files=no") else ""
    cmd = "python scripts/bad_input_sweep.py" + "".join(f" {a}" for a in sys.argv[1:])
    header = [
        "# Bad-input sweep (issue 12): before and after",
        "",
        f"Written by `{cmd}` (scripts/bad_input_sweep.py). Each case is a fresh `python -m hwq` process in a "
        f"scratch folder of fixtures, with the sensitivity cache inside it; {args.timeout:.0f} s per case "
        f"(x4 for the kill and determinism cases and the `hwq rtl` ones, which build a whole design before the fix) "
        f"before it counts as still running.",
        "",
        f"* **before**, sections 1-7: `git archive {args.before_ref}` (the commit issue 12 was filed against); "
        f"section 8: `git archive {args.before_new_ref}` (these commands did not exist at {args.before_ref}).",
        f"* **after**: the working tree at {head}{dirty}.",
        "* An \"after\" cell passes when the bad input gives exit 1 or 2, one line on stderr, no traceback or "
        "internal error, and no file of the scratch folder created, changed or removed; the litter, kill, "
        "determinism and \"now accepted\" rows state their own check. Failing cells are marked **FAIL**.",
    ]
    write_text(args.out, render(cases, before, after, header))
    failed = [cid for cid, r in after.items() if not r["ok"]]
    print(f"wrote {args.out}: {len(after)} cases, {len(after) - len(failed)} pass after"
          + (f"; FAIL: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
