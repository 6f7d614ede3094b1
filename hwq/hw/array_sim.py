"""Run layers through the generated PE-array RTL under cocotb (Icarus or Verilator).

:func:`run_array_layer` is the reusable entry point for layer-level tests and ``hwq sim``:
it takes integer activations and QuantizedWeight-like arrays, builds the array's Verilog,
runs ``sim/tb_array.py`` and returns ``(outputs [M, N] int64, measured_cycles)``, where the
cycles go from the start edge to the edge that transfers the last output
(:func:`hwq.timing.layer_compute_cycles` predicts them). :func:`simulate_array` also returns
each run's ``o_mem`` row reads and writes (:func:`hwq.timing.psum_row_accesses` predicts them).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwq.hw.array_driver import LayerImage, cfg_word, pack_layer, unpack_outputs
from hwq.hw.config import ArrayConfig


@dataclass(frozen=True)
class ArrayRun:
    """What one simulated run returns: output words in stream order, cycles (start edge to the
    last output transfer) and the ``psum_reads`` / ``psum_writes`` counters at the end of the run."""

    out_words: list[int]
    cycles: int
    psum_reads: int
    psum_writes: int


def _cfg_shifts(cfg: ArrayConfig) -> dict[str, int]:
    from hwq.hw.array import run_layout

    layout = run_layout(cfg)
    return {name: field.offset for name, field in layout}


def build_array_verilog(cfg: ArrayConfig, build_dir: Path) -> list[Path]:
    """Write the array's Verilog files (top module ``pe_array``) into ``build_dir``; return their paths."""
    from hwq.hw.generate import array_sources

    build_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in array_sources(cfg).items():
        src = build_dir / name
        if not src.exists() or src.read_text() != text:
            src.write_text(text)
        paths.append(src)
    return paths


def run_array_images(cfg: ArrayConfig, images: Sequence[LayerImage], *, simulator: str = "verilator",
                     build_dir: Path | None = None, ready_prob: Sequence[float | None] | None = None,
                     seed: int = 1) -> list[tuple[list[int], int]]:
    """Run each image in one simulation; return ``(out_words, measured_cycles)`` per image."""
    return [(r.out_words, r.cycles) for r in simulate_array(cfg, images, simulator=simulator, build_dir=build_dir,
                                                            ready_prob=ready_prob, seed=seed)]


def simulate_array(cfg: ArrayConfig, images: Sequence[LayerImage], *, simulator: str = "verilator",
                   build_dir: Path | None = None, ready_prob: Sequence[float | None] | None = None,
                   seed: int = 1) -> list[ArrayRun]:
    """Run each image in one simulation (``sim/tb_array.py``); return an :class:`ArrayRun` per image."""
    from hwq.cosim import run_cocotb

    tmp = None
    if build_dir is None:
        from hwq.paths import make_scratch_dir  # $TMPDIR/.hwq-array.hwq-tmp-PID-XXXX, cleaned by the next run

        tmp = build_dir = make_scratch_dir("array")
    build_dir = Path(build_dir)
    try:
        srcs = build_array_verilog(cfg, build_dir)
        shifts = _cfg_shifts(cfg)
        runs: list[dict[str, Any]] = []
        for i, img in enumerate(images):
            limit = 1000 + 4 * (len(img.x_words) + len(img.w_words)) + \
                img.k_tiles * img.n_tiles * img.m_tiles * (cfg.rows + (img.m_tile_rows + 1) * 16 + 16) * 4
            run = {"image": img.to_json(), "cfg_shift": shifts, "cfg": str(cfg_word(cfg, img)),
                   "cycle_limit": limit, "seed": seed + i}
            if ready_prob is not None and ready_prob[i] is not None:
                run["ready_prob"] = ready_prob[i]
            runs.append(run)
        stim, result = build_dir / "array_stim.json", build_dir / "array_result.json"
        stim.write_text(json.dumps({"runs": runs}))
        if result.exists():
            result.unlink()
        run_cocotb(simulator, srcs, "pe_array", "tb_array", build_dir / f"sim_{simulator}",
                   extra_env={"HWQ_STIM": str(stim), "HWQ_RESULT": str(result)}, seed=seed)
        out = json.loads(result.read_text())["runs"]
        return [ArrayRun([int(w) for w in r["out_words"]], r["cycles"], int(r["psum_reads"]), int(r["psum_writes"]))
                for r in out]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_array_layer(cfg: ArrayConfig, x_int: Any, codes: Any, selectors: Any, scale_int: Any,
                    group_size: int, *, fmt_index: int = 0, simulator: str = "verilator",
                    build_dir: Path | None = None, m_tile: int | None = None) -> tuple[np.ndarray, int]:
    """Run one layer ``Y = X . W^T`` on the array RTL; return ``(Y [M, N] int64, measured_cycles)``.

    ``codes [N, K]``, ``selectors [N, G]``, ``scale_int [N, G]`` are QuantizedWeight fields
    (``qw.codes``, ``qw.selectors``, ``qw.scale_int``) of format ``cfg.formats[fmt_index]``;
    ``x_int [M, K]`` signed ``cfg.act_bits``-bit activations. ``Y`` equals
    ``hwq.golden.dequant_accumulate(group_psums(...))`` (modulo ``2**acc_bits``). ``m_tile``: rows
    per M tile (:func:`hwq.hw.array_driver.pack_layer`).
    """
    image = pack_layer(cfg, np.asarray(x_int), np.asarray(codes), np.asarray(selectors),
                       np.asarray(scale_int), group_size, fmt_index, m_tile=m_tile)
    [(words, cycles)] = run_array_images(cfg, [image], simulator=simulator, build_dir=build_dir)
    return unpack_outputs(cfg, image, words), cycles


def run_array_qweight(cfg: ArrayConfig, x_int: Any, qw: Any, **kw: Any) -> tuple[np.ndarray, int]:
    """:func:`run_array_layer` for a :class:`hwq.quant.QuantizedWeight` (its fmt/bits pick the format)."""
    fmt = (qw.fmt, qw.bits)
    if fmt not in cfg.formats:
        raise ValueError(f"weight format {qw.fmt}{qw.bits} is not one of the array's {cfg.formats}")
    return run_array_layer(cfg, x_int, np.asarray(qw.codes), np.asarray(qw.selectors), np.asarray(qw.scale_int),
                           qw.group_size, fmt_index=cfg.formats.index(fmt), **kw)
