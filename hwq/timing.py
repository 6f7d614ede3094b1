"""The cycle contract between the cost model and the generated RTL.

This module is the single definition of how many clock cycles the PE array spends on a
tile and on a whole layer. ``hwq.cost`` imports it to predict latency; the cocotb
co-simulation (``sim/``) measures the generated RTL (:class:`hwq.hw.array.PEArray`) and
sees exactly these numbers.

Dataflow (weight-stationary), for a matrix product ``Y[M, N] = X[M, K] . W[K, N]`` (a
convolution is lowered to one: M = output pixels, K = in_channels/groups * kh * kw,
N = out_channels):

* The array has ``rows x cols`` PEs, each a ``lanes``-wide dot product. One tile holds
  ``K_t = rows * lanes`` reduction elements of ``N_t = cols`` output channels; column ``c``
  computes output channel ``n0 + c``, PE row ``r`` holds weights ``k0 + r*lanes ...``.
* Per tile, with ``I = cycles_per_weight(term_slots, bits_per_cycle)`` (the bit-serial
  steps per weight, 1 bit-parallel):

  - LOAD, ``rows`` cycles: one weight-buffer row per cycle is read, decoded and written
    to one PE row;
  - COMPUTE, ``m * I`` cycles: the ``m`` activation vectors stream through back to back,
    each occupying every PE for ``I`` cycles;
  - DRAIN, ``I + pipeline_depth`` cycles: the bit-serial dequantizer needs ``I`` cycles
    per vector (it consumes ``ceil(scale_bits / I_min)`` scale bits per cycle) and the
    pipeline adds 4 register stages (buffer read latency, PE accumulator, segment-sum
    capture, output register).

  So ``tile = rows + (m + 1) * I + pipeline_depth``.
* Tiles run one after another (no overlap), so a layer costs
  ``ceil(K / K_t) * ceil(N / N_t) * tile`` cycles.
* M tiles (``m_tile``, the ``accumulate_in_array`` dataflow): one run loops n tile -> m tile ->
  k tile; every ``(n, m, k)`` step is a tile of ``min(m_tile, rows left)`` activation vectors
  (its weight-buffer rows are re-read, LOAD again, for every M tile), so a layer costs
  ``k_tiles * n_tiles * (floor(M / m_tile) * tile(m_tile) + tile(M mod m_tile))`` cycles
  (``tile(0) = 0``). ``m_tile=None`` (or ``>= M``) is one M tile: the formula above.
* Partial sums (:func:`psum_row_accesses`): the array accumulates each output row across the K
  tiles of its M tile in the accumulator memory (the RTL's ``o_mem``, one row = ``cols``
  accumulators). Read-modify-write: every K tile reads and writes each row; elided
  (``elide_first_last``): the first K tile writes without reading and the last K tile sends its
  result out without writing back, so a one-K-tile layer never touches the memory.

"Cycles" are counted in the RTL from the rising clock edge that samples ``start`` to the
rising edge that transfers the layer's last output (``out.valid & out.ready``), with the
consumer always ready; the activation/weight buffers are filled before ``start``.
"""

from __future__ import annotations

import math

from hwq.datatypes import cycles_per_weight

#: Fixed register stages of the array's drain beyond the dequantizer's ``I`` cycles
#: (buffer read latency, PE accumulator, segment-sum capture, output register).
PIPELINE_DEPTH_CYCLES = 4


def tile_compute_cycles(m: int, rows: int, term_slots: int, bits_per_cycle: int | None,
                        pipeline_depth: int = PIPELINE_DEPTH_CYCLES) -> int:
    """Cycles to run one weight tile over ``m`` activation vectors, load and drain included.

    ``term_slots`` is the datatype's power-of-two term count (``hwq.datatypes``);
    ``bits_per_cycle`` the bit-serial radix in weight bits per cycle (None: bit-parallel).
    """
    if m < 1 or rows < 1:
        raise ValueError(f"m and rows must be >= 1, got m={m}, rows={rows}")
    interval = cycles_per_weight(term_slots, bits_per_cycle)
    return rows + (m + 1) * interval + pipeline_depth


def tiles(k: int, n: int, *, rows: int, cols: int, lanes: int) -> tuple[int, int]:
    """``(k_tiles, n_tiles)`` of a ``[M, K] x [K, N]`` product on a ``rows x cols x lanes`` array."""
    return math.ceil(k / (rows * lanes)), math.ceil(n / cols)


def layer_compute_cycles(m: int, k: int, n: int, *, rows: int, cols: int, lanes: int,
                         term_slots: int, bits_per_cycle: int | None,
                         pipeline_depth: int = PIPELINE_DEPTH_CYCLES, m_tile: int | None = None) -> int:
    """On-chip compute cycles of a whole ``[M, K] x [K, N]`` product on the array (one RTL run).

    ``m_tile``: rows per M tile (loop order n tile, m tile, k tile; weight tiles re-loaded per
    M tile); None or ``>= m`` is one M tile.
    """
    if m_tile is not None and m_tile < 1:
        raise ValueError(f"m_tile must be >= 1 or None, got {m_tile}")
    k_tiles, n_tiles = tiles(k, n, rows=rows, cols=cols, lanes=lanes)
    if m_tile is None or m_tile >= m:
        per_nk = tile_compute_cycles(m, rows, term_slots, bits_per_cycle, pipeline_depth)
    else:
        full, last = divmod(m, m_tile)
        per_nk = full * tile_compute_cycles(m_tile, rows, term_slots, bits_per_cycle, pipeline_depth)
        if last:
            per_nk += tile_compute_cycles(last, rows, term_slots, bits_per_cycle, pipeline_depth)
    return k_tiles * n_tiles * per_nk


def psum_row_accesses(m: int, k_tiles: int, n_tiles: int, *, elide: bool) -> tuple[int, int]:
    """``(reads, writes)`` of accumulator-memory rows (a row = ``cols`` accumulators) in one run.

    ``elide`` (``partial_sums: elide_first_last``): ``(k_tiles - 1) * m * n_tiles`` each (the
    first K tile does not read, the last does not write back); else (read-modify-write)
    ``k_tiles * m * n_tiles`` each. Independent of the M tiling: every output row is
    accumulated across all K tiles exactly once.
    """
    if m < 0 or k_tiles < 1 or n_tiles < 1:
        raise ValueError(f"need m >= 0, k_tiles >= 1, n_tiles >= 1; got {m}, {k_tiles}, {n_tiles}")
    per = (k_tiles - 1 if elide else k_tiles) * m * n_tiles
    return per, per
