"""Run co-simulation tiles on the generated PE-array RTL (``hwq.hw.array_sim``).

The array is generated from the accelerator spec (:func:`hwq.hw.config.array_config_from_spec`)
with the layer's group size and buffers deep enough for the tiles; several tiles that need
the same array run in one simulation (one build).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwq.errors import UsageError


def array_config_for(spec: Any, tiles: Sequence[Any]) -> Any:
    """The :class:`hwq.hw.config.ArrayConfig` of ``spec`` that runs every tile in ``tiles``.

    All tiles must share one group size (the array's dequantizer segments depend on it;
    per-row tiles run with any); buffer depths (words) grow to hold the largest tile.
    """
    from hwq.hw.config import array_config_from_spec

    sizes = {t.group_size for t in tiles if not t.per_row} or {spec.arithmetic.group_size}
    if len(sizes) != 1:
        raise ValueError(f"tiles of one simulation must share a group size, got {sorted(sizes)}")
    a = spec.array
    tile_k = a.rows * a.lanes
    kt = max(math.ceil(t.k / tile_k) for t in tiles)
    nt = max(math.ceil(t.n / a.cols) for t in tiles)
    m = max(t.m for t in tiles)
    try:
        cfg = array_config_from_spec(spec, group_size=sizes.pop(), x_depth=max(64, kt * m),
                                     w_depth=max(64, kt * nt * a.rows), out_depth=max(32, m))
    except ValueError as err:
        raise UsageError(f"arch {spec.name!r} cannot run this layer on its PE array: {err}") from None
    for t in tiles:
        if (t.fmt, t.bits) not in cfg.formats:
            raise UsageError(f"weight format {t.fmt}{t.bits} does not run on the PE array of {spec.name!r} "
                             f"(array formats: {', '.join(f'{f}{b}' for f, b in cfg.formats)})")
        if t.x_int.size and int(np.abs(t.x_int).max()) > (1 << (cfg.act_bits - 1)):
            raise UsageError(f"activations exceed the array's {cfg.act_bits}-bit inputs")
    return cfg


def run_array_tiles(tiles: Sequence[Any], spec: Any, simulator: str,
                    build_dir: Path | None = None) -> list[tuple[np.ndarray, int]]:
    """Run every tile in one simulation; return ``(outputs [m, n] int64, measured_cycles)`` per tile."""
    from hwq.hw.array_driver import pack_layer, unpack_outputs
    from hwq.hw.array_sim import run_array_images

    cfg = array_config_for(spec, tiles)
    images = [pack_layer(cfg, t.x_int, t.codes, t.selectors, t.scale_int, t.group_size,
                         cfg.formats.index((t.fmt, t.bits))) for t in tiles]
    runs = run_array_images(cfg, images, simulator=simulator, build_dir=build_dir)
    return [(unpack_outputs(cfg, img, words), int(cycles)) for img, (words, cycles) in zip(images, runs)]


def run_array_tile(tile: Any, spec: Any, simulator: str, build_dir: Path | None = None) -> tuple[np.ndarray, int]:
    """:func:`run_array_tiles` for one tile."""
    [result] = run_array_tiles([tile], spec, simulator, build_dir)
    return result
