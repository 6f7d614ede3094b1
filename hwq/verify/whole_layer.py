"""Whole-layer co-simulation (``hwq sim`` default): every output of a real layer on the full preset
array through the streaming testbench (:mod:`hwq.verify.stream`).

The layer is prepared as for the tile check (:func:`hwq.verify.check.prepare_layer`: real
calibration activation, the plan's or arch's precision, ``hwq.quant`` codes) but the "tile" is
the whole lowered GEMM (every row, all of K, all of N). The run is the one the cost model
assumes for the layer: M tiles of ``CostTable.m_tile_rows`` rows (``m_tile`` of the run config).
Outputs are compared with ``hwq.golden.linear_int``; cycles with :func:`hwq.timing.layer_compute_cycles`
(via :func:`hwq.hw.array_driver.expected_cycles`); the run's accumulator-memory row accesses (the
array's ``psum_reads``/``psum_writes`` ports, when it has them) with :func:`hwq.timing.psum_row_accesses`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwq.errors import UsageError

#: Rows/reduction/outputs larger than any layer: :func:`prepare_layer` clips them to the layer.
WHOLE = 1 << 40


@dataclass
class WholeLayerResult:
    """The layer check (:class:`hwq.verify.check.LayerCheckResult`) plus the streaming run's figures."""

    check: Any
    stream: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.check.ok and self.stream.get("cost_model_equal", True))

    def to_dict(self) -> dict[str, Any]:
        d = self.check.to_dict()
        d["stream"] = dict(self.stream)
        d["ok"] = self.ok
        return d


def check_whole_layer(layer_ref: str, arch: str | Path, *, plan: Path | None = None, simulator: str = "verilator",
                      build_dir: Path | None = None, with_cost_model: bool = True, batch: int | None = None,
                      dataflow: str | None = None) -> WholeLayerResult:
    """Co-simulate every output of ``MODEL:LAYER`` (``batch`` calibration images, default the spec's)
    on ``arch``'s full array, through the streaming testbench, in ``dataflow``'s M tiling."""
    from hwq.hw.array_driver import pack_layer, unpack_outputs
    from hwq.verify.check import _result, prepare_layer
    from hwq.verify.rtl import array_config_for, tile_m_tile
    from hwq.verify.stream import run_stream, shared_build_config

    t_start = time.perf_counter()
    p = prepare_layer(layer_ref, arch, plan=plan, m_rows=WHOLE, tile_k=WHOLE, tile_n=WHOLE, batch=batch,
                      dataflow=dataflow)
    tile, spec = p.tile, p.spec
    if tile.m != p.x_rows.shape[0] or tile.k != p.x_rows.shape[1] or tile.n != np.asarray(p.qw.codes).shape[0]:
        raise UsageError(f"internal: the whole-layer tile of {layer_ref} is not the whole layer")
    cfg = shared_build_config(array_config_for(spec, [tile], dataflow=p.dataflow),
                              round_out_depth=p.dataflow == "output_buffer")
    image = pack_layer(cfg, tile.x_int, tile.codes, tile.selectors, tile.scale_int, tile.group_size,
                       cfg.formats.index((tile.fmt, tile.bits)), m_tile=tile_m_tile(spec, tile, p.dataflow))
    t_prep = time.perf_counter() - t_start

    t0 = time.perf_counter()
    res = run_stream(cfg, [image], simulator=simulator, build_dir=build_dir)
    wall = time.perf_counter() - t0
    [run] = res.runs
    got = unpack_outputs(cfg, image, run.out_words)
    psums = (run.ports["psum_reads"], run.ports["psum_writes"]) if {"psum_reads", "psum_writes"} <= set(run.ports) \
        else None
    check = _result(p, simulator, got, run.cycles, wall, with_cost_model, psums=psums)
    stream = {
        "path": "streaming", "m_tile": image.m_tile_rows, "m_tiles": image.m_tiles,
        "array_buffers": {"x_depth": cfg.x_depth, "w_depth": cfg.w_depth, "out_depth": cfg.out_depth},
        "build_s": round(res.build.build_s, 2), "build_cached": res.build.cached,
        "build_dir": str(res.build.directory), "sim_s": round(res.sim_s, 3), "image_write_s": round(res.write_s, 3),
        "sim_cycles": res.sim_cycles, "sim_cycles_per_s": round(res.cycles_per_s),
        "prepare_s": round(t_prep, 2), "wall_s": round(time.perf_counter() - t_start, 2),
    }
    c = check.cost_model
    if "compute_cycles" in c and c.get("groups", 1) == 1 and tile.m == c["m"] * c.get("batch", 1):
        # the whole layer ran: the cost model's cycles for it must be the measured ones
        stream["cost_model_equal"] = int(c["compute_cycles"]) == run.cycles
    return WholeLayerResult(check, stream)


def gemm_layers_under(layer_ref: str) -> list[str]:
    """``MODEL:LAYER`` refs of every Conv2d/Linear at or under module ``LAYER`` (e.g. a MiniLM
    encoder layer's six linear layers), in module order; UsageError when there is none."""
    from hwq.verify.capture import GEMM_MODULE_TYPES, load_model, parse_layer_ref

    ref = parse_layer_ref(layer_ref)
    _, model = load_model(ref.model)
    modules = dict(model.named_modules())
    if ref.layer not in modules:
        from hwq.verify.capture import find_gemm_module

        find_gemm_module(model, ref)  # raises the UsageError listing close names
    if type(modules[ref.layer]).__name__ in GEMM_MODULE_TYPES:
        return [str(ref)]
    prefix = ref.layer + "."
    names = [n for n, m in modules.items() if n.startswith(prefix) and type(m).__name__ in GEMM_MODULE_TYPES]
    if not names:
        from hwq.verify.capture import find_gemm_module

        find_gemm_module(model, ref)  # not a GEMM and nothing under it: the usual error
    return [f"{ref.model}:{n}" for n in names]


def check_whole_layers(layer_ref: str, arch: str | Path, **kw: Any) -> list[WholeLayerResult]:
    """:func:`check_whole_layer` for the layer, or for every GEMM under a container module (one array build)."""
    return [check_whole_layer(ref, arch, **kw) for ref in gemm_layers_under(layer_ref)]
