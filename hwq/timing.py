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


def layer_compute_cycles(m: int, k: int, n: int, *, rows: int, cols: int, lanes: int,
                         term_slots: int, bits_per_cycle: int | None,
                         pipeline_depth: int = PIPELINE_DEPTH_CYCLES) -> int:
    """On-chip compute cycles of a whole ``[M, K] x [K, N]`` product on the array."""
    n_tiles = math.ceil(k / (rows * lanes)) * math.ceil(n / cols)
    return n_tiles * tile_compute_cycles(m, rows, term_slots, bits_per_cycle, pipeline_depth)
