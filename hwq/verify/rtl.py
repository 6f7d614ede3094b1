"""Run co-simulation tiles on the generated PE-array RTL (``hwq.hw.array_sim``).

The array is generated from the accelerator spec (:func:`hwq.hw.config.array_config_from_spec`)
with the layer's group size and buffers deep enough for the tiles, in the dataflow asked for
(``output_buffer``: one M tile; ``accumulate_in_array``: M tiles of ``accumulators.depth`` rows);
several tiles that need the same array run in one simulation (one build).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwq.errors import UsageError


@dataclass(frozen=True)
class TileRun:
    """One co-simulated tile: outputs ``[m, n]`` (int64), measured cycles, the array's ``o_mem`` row
    reads and writes, and the run's M tiling (``m_tile`` rows per M tile, ``m_tiles`` of them)."""

    outputs: np.ndarray
    cycles: int
    psum_reads: int
    psum_writes: int
    m_tile: int
    m_tiles: int


def tile_m_tile(spec: Any, tile: Any, dataflow: str | None = None) -> int | None:
    """Rows per M tile the ``dataflow`` runs ``tile`` in: ``accumulators.depth`` for
    ``accumulate_in_array`` (None when the tile fits one M tile), None (one M tile) for ``output_buffer``."""
    from hwq.hw.config import spec_dataflow

    if spec_dataflow(spec, dataflow) != "accumulate_in_array":
        return None
    depth = int(spec.accumulators.depth)
    return depth if tile.m > depth else None


def array_config_for(spec: Any, tiles: Sequence[Any], *, dataflow: str | None = None) -> Any:
    """The :class:`hwq.hw.config.ArrayConfig` of ``spec`` that runs every tile in ``tiles``.

    All tiles must share one group size (the array's dequantizer segments depend on it;
    per-row tiles run with any); buffer depths (words) grow to hold the largest tile: the
    activation buffer ``k_tiles * M`` words, the weight buffer every tile's rows. The accumulator
    memory (``o_mem``) holds ``M`` rows in the ``output_buffer`` dataflow and
    ``spec.accumulators.depth`` in ``accumulate_in_array`` (``dataflow``, default the spec's first mode).
    """
    from hwq.hw.config import array_config_from_spec, spec_dataflow

    sizes = {t.group_size for t in tiles if not t.per_row} or {spec.arithmetic.group_size}
    if len(sizes) != 1:
        raise ValueError(f"tiles of one simulation must share a group size, got {sorted(sizes)}")
    try:
        flow = spec_dataflow(spec, dataflow)
    except ValueError as err:
        raise UsageError(str(err)) from None
    a = spec.array
    tile_k = a.rows * a.lanes
    kt = max(math.ceil(t.k / tile_k) for t in tiles)
    nt = max(math.ceil(t.n / a.cols) for t in tiles)
    m = max(t.m for t in tiles)
    depths = dict(x_depth=max(64, kt * m), w_depth=max(64, kt * nt * a.rows))
    if flow == "output_buffer":
        depths["out_depth"] = max(32, m)
    try:
        cfg = array_config_from_spec(spec, dataflow=flow, group_size=sizes.pop(), **depths)
    except ValueError as err:
        raise UsageError(f"arch {spec.name!r} cannot run this layer on its PE array: {err}") from None
    for t in tiles:
        if (t.fmt, t.bits) not in cfg.formats:
            raise UsageError(f"weight format {t.fmt}{t.bits} does not run on the PE array of {spec.name!r} "
                             f"(array formats: {', '.join(f'{f}{b}' for f, b in cfg.formats)})")
        if t.x_int.size and int(np.abs(t.x_int).max()) > (1 << (cfg.act_bits - 1)):
            raise UsageError(f"activations exceed the array's {cfg.act_bits}-bit inputs")
    return cfg


def run_array_tiles(tiles: Sequence[Any], spec: Any, simulator: str, build_dir: Path | None = None, *,
                    dataflow: str | None = None) -> list[TileRun]:
    """Run every tile in one simulation on ``dataflow`` (default the spec's first mode); one :class:`TileRun` each."""
    from hwq.hw.array_driver import pack_layer, unpack_outputs
    from hwq.hw.array_sim import simulate_array

    cfg = array_config_for(spec, tiles, dataflow=dataflow)
    images = [pack_layer(cfg, t.x_int, t.codes, t.selectors, t.scale_int, t.group_size,
                         cfg.formats.index((t.fmt, t.bits)), m_tile=tile_m_tile(spec, t, dataflow)) for t in tiles]
    runs = simulate_array(cfg, images, simulator=simulator, build_dir=build_dir)
    return [TileRun(unpack_outputs(cfg, img, r.out_words), int(r.cycles), r.psum_reads, r.psum_writes,
                    img.m_tile_rows, img.m_tiles) for img, r in zip(images, runs)]


def run_array_tile(tile: Any, spec: Any, simulator: str, build_dir: Path | None = None, *,
                   dataflow: str | None = None) -> TileRun:
    """:func:`run_array_tiles` for one tile."""
    [result] = run_array_tiles([tile], spec, simulator, build_dir, dataflow=dataflow)
    return result
