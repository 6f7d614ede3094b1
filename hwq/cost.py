"""Analytic cost model: latency (cycles) and energy (pJ) of every layer at every precision choice.

``evaluate(workload, spec, choices, batch=None)`` returns a :class:`CostTable` of ``[L, C]`` arrays
(layers x choices), computed with numpy for the whole model in one call. For every (layer,
choice) a small mapper picks one of the loop nests in :data:`MAPPINGS` that the spec's
``dataflow.modes`` run (the one of least total energy, pJ; ties go to the lowest index) and
records it in ``CostTable.mapping``. **Energies are per image** (a batch's energy / ``batch``);
cycles, latency and bits are per batch.

Batch
-----
``batch`` images (default ``spec.batch``) run together: ``Workload.with_batch`` multiplies the
GEMM rows ``m`` of weight layers (so every weight loaded into the array serves all images) and the
independent products of activation x activation layers; every activation tensor grows ``batch``-fold.

GEMM and array tiles
--------------------
A layer is ``G = groups * batch_products`` independent GEMMs ``[m, k] x [k, n_g]`` (``n_g = n / groups``).
The array holds a ``(rows * lanes) x cols`` weight tile: ``k_tiles = ceil(k / (rows * lanes))``,
``n_tiles = ceil(n_g / cols)``. Symbols (bits unless stated; ``a`` = act_bits; ``s`` = stored
bits per stationary element, the weight format's bits incl. group metadata,
``hwq.datatypes.meta_bits_per_weight``, or ``a`` when the stationary operand is an activation):

* ``W = stationary_elems * s`` (whole layer), ``I = read_elems * a`` (the input elements the layer
  reads: a 1x1 stride-2 convolution reads a quarter of its input tensor), ``O = out_elems * a``;
* ``C_w``, ``C_o``: weight and output (partial-sum) buffer capacities; ``F_free``: the activation
  buffer bits not held by resident live tensors at this layer (:mod:`hwq.residency`);
* ``P = min(cols, n_g) * accumulator_bits``: partial sums of one activation row of one N tile.

Residency (liveness; :mod:`hwq.residency`)
------------------------------------------
Point-wise ops (BatchNorm, ReLU, GELU...) fuse into the producer's requantizer. A tensor stays in
the activation buffer while it is live (the skip tensor of a residual block included) if the live
set fits; where it does not, the resident tensor whose next use is furthest away spills (written
to DRAM once, read back by each consumer). The model input is read from DRAM; network outputs are
written to it. Residency is computed at the activation width of the choice being costed (for a
uniform plan exactly; for a mixed plan each layer is costed as if the network ran at its width).
``CostTable.input_resident`` / ``output_resident`` / ``spilled`` say what happened, per layer.
A layer's input not resident is staged in the free space: when ``I <= F_free`` it is fetched
once, else each N-tile pass re-fetches it (``n_outer`` and the accumulate loops).

Vector ops
----------
Every unfused element-wise op (residual add, max/avg pooling, softmax, layer norm, embedding
lookup) reads its inputs from the activation buffer (or DRAM when spilled) and writes its output;
its work is ``ops`` element operations (``hwq.residency``: window x outputs for pooling, input
size for reductions, 3-4 per element for softmax/layer norm) at ``spec.vector.op_pj(a)`` each, in
``ceil(ops / vector lanes)`` cycles added to latency. A vector op is billed to the layer behind
its first input (breakdown key ``vector``; its traffic in the buffer and DRAM keys).

Loop nests
----------
``output_buffer`` dataflow (partial sums in the output buffer):

0. ``n_outer`` -- the RTL's whole-layer loop: per GEMM, for each N tile, for each K tile: load the
   weight tile, stream all ``m`` rows. Weights come from DRAM once, tile by tile. The
   ``[m, min(cols, n_g)]`` partial-sum block (``m * P`` bits) must stay in the output buffer
   across K tiles; if ``m * P > C_o`` and ``k_tiles > 1`` it spills:
   ``2 * (k_tiles - 1) * m * n * batch_products * accumulator_bits`` DRAM bits.
1. ``m_tiled_weights_resident`` -- legal only if ``W <= C_w``: weights loaded into the weight buffer
   once; then for each M tile of ``m_t`` rows the RTL's loop over all weight tiles.
2. ``m_tiled_weights_refetched`` -- as 1 but every M tile fetches the weights from DRAM again
   (``W * M_tiles``). Always legal.

   M tile: ``m_t = min(m, floor(C_o / P) if k_tiles > 1, floor(F_free * m / I) if the input is
   not resident and I > F_free)``; ``m_t < 1`` makes the mapping illegal.

``accumulate_in_array`` dataflow (partial sums in per-column accumulator register files of
``accumulators.depth`` rows; one RTL run walks n tile, m tile, k tile with ``m_tile = min(m, depth)``):

3. ``accumulate_in_array`` -- legal if one N tile's weights (``k * min(cols, n_g) * s``) fit ``C_w``:
   weights come from DRAM once, and are re-read from the weight buffer once per M tile.
4. ``accumulate_in_array_refetched`` -- weights from DRAM once per M tile. Always legal.

Partial sums (``dataflow.partial_sums``): ``read_modify_write`` reads and writes every output's
partial sum once per K tile; ``elide_first_last`` once per K tile but the first (write only) and
the last (straight to requantization): ``hwq.timing.psum_row_accesses``. Bits:
``accumulator_bits * m * n * batch_products * (k_tiles - 1 | k_tiles)`` each way, charged to the
output buffer (mappings 0-2) or to the accumulators (3, 4).

Cycles
------
* **Compute cycles** come only from the RTL contract :func:`hwq.timing.layer_compute_cycles`:
  ``G * layer_compute_cycles(m, k, n_g, ..., m_tile=m_t)`` (one M tile for ``n_outer``);
  ``term_slots`` is ``hwq.datatypes.term_slots(fmt, bits)`` of the weight format (an ``int``
  activation of ``act_bits`` for activation x activation products).
* **Active PE-cycles**: ``pe_cycles = ceil(k / lanes) * n * m * batch_products * cycles_per_weight``.
* ``dram_cycles = ceil(dram_bits / dram_bits_per_cycle)``; ``latency_cycles = max(compute_cycles,
  dram_cycles) + vector_cycles`` (roofline for the array, element-wise work after it).

Bits moved (``F`` = weight fetches: 1, or ``M_tiles`` for the refetched mappings)
-------------------------------------------------------------------------------
* DRAM: weights ``W * F`` (a stationary activation that is resident is copied from the activation
  buffer instead); the input if not resident (above); the output if spilled or a network output;
  spilled partial sums (mapping 0); the vector ops' spilled tensors and lookups.
* Weight buffer: writes ``W * F`` (``W`` when resident); reads ``W * M_tiles``.
* Activation buffer: reads ``a * m * k * n_tiles * G`` (+ stationary copies, + vector-op inputs);
  writes = DRAM input bits + ``O`` (+ vector-op outputs).

Energy (pJ per image)
---------------------
``compute = pe_cycle_pj(weight_bits, act_bits) * pe_cycles``; ``vector = op_pj(a) * ops``; each
buffer and the accumulators: ``reads / access_bits * read_energy_pj + writes / access_bits *
write_energy_pj``; ``dram = dram_bits * energy_pj_per_bit`` (``spec.dram``, from
``hwq.dram.TECHNOLOGIES``); ``static = static_power_mw * latency_cycles / clock_mhz * 1e3``; all
divided by ``batch``. ``energy_pj`` is their sum (:data:`BREAKDOWN_KEYS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from hwq.datatypes import cycles_per_weight, meta_bits_per_weight, term_slots
from hwq.errors import UsageError
from hwq.residency import build_schedule, residency
from hwq.timing import layer_compute_cycles, tile_compute_cycles

if TYPE_CHECKING:  # pragma: no cover
    from hwq.spec import AccumulatorSpec, AcceleratorSpec, BufferSpec
    from hwq.workload import Workload

#: Energy breakdown keys of :attr:`CostTable.breakdown_pj`.
BREAKDOWN_KEYS = ("compute", "vector", "weight_buffer", "activation_buffer", "output_buffer", "accumulators",
                  "dram", "static")
#: DRAM traffic keys of :attr:`CostTable.dram_bits_by_operand`.
DRAM_OPERANDS = ("weights", "inputs", "outputs", "psums", "vector")

#: Loop nests the mapper chooses from (index = value in :attr:`CostTable.mapping`); see the module
#: docstring. The first three run the ``output_buffer`` dataflow, the last two ``accumulate_in_array``.
MAPPINGS: tuple[str, ...] = ("n_outer", "m_tiled_weights_resident", "m_tiled_weights_refetched",
                             "accumulate_in_array", "accumulate_in_array_refetched")


@dataclass(frozen=True, order=True)
class Choice:
    """One precision choice: weight format family ``fmt`` at ``bits``, activations at ``act_bits``."""

    fmt: str
    bits: int
    act_bits: int

    def __str__(self) -> str:
        return f"{self.fmt}{self.bits}/a{self.act_bits}"

    @classmethod
    def parse(cls, text: str) -> "Choice":
        """Inverse of ``str``: ``"bitmod4/a8"`` -> ``Choice("bitmod", 4, 8)``."""
        try:
            w, a = text.split("/a")
            i = len(w.rstrip("0123456789"))
            return cls(w[:i], int(w[i:]), int(a))
        except ValueError:
            raise UsageError(f"malformed choice {text!r}; write e.g. bitmod4/a8") from None


@dataclass
class CostTable:
    """Per-layer, per-choice costs (arrays ``[L, C]``); units in the names.

    ``weight_bits`` is weight storage incl. group metadata (0 for activation x activation
    layers); ``dram_bits`` the bits moved to and from DRAM (split by operand in
    ``dram_bits_by_operand``: weights, inputs, outputs, psums); ``quantizable[l]`` is False for
    layers without weights (their cost depends only on ``act_bits``). ``mapping[l, c]`` is the
    index into ``mapping_names`` (:data:`MAPPINGS`) of the loop nest the mapper chose,
    ``m_tiles[l, c]`` its number of M tiles and ``m_tile_rows[l, c]`` the rows of each full M tile.
    """

    layer_names: list[str]
    choices: list[Choice]
    clock_mhz: float
    energy_pj: np.ndarray
    latency_cycles: np.ndarray
    compute_cycles: np.ndarray
    dram_cycles: np.ndarray
    breakdown_pj: dict[str, np.ndarray]
    weight_bits: np.ndarray
    dram_bits: np.ndarray
    macs: np.ndarray
    dram_bits_by_operand: dict[str, np.ndarray] = field(default_factory=dict)
    quantizable: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    mapping: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    mapping_names: tuple[str, ...] = MAPPINGS
    m_tiles: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    m_tile_rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    batch: int = 1
    vector_cycles: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    input_resident: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    output_resident: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    spilled: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def residency_note(self, layer: int, col: int) -> str:
        """Where layer ``layer``'s input and output live at column ``col``: ``on chip``, or which spill."""
        parts = [] if self.input_resident[layer, col] else ["in: DRAM"]
        if not self.output_resident[layer, col]:
            parts.append("out: DRAM")
        return ", ".join(parts) or "on chip"

    def mapping_counts(self, assignment: Sequence[int]) -> dict[str, int]:
        """How many layers use each mapping when layer ``l`` takes column ``assignment[l]``."""
        idx = np.arange(len(self.layer_names))
        used = self.mapping[idx, np.asarray(assignment, dtype=int)]
        return {name: int((used == i).sum()) for i, name in enumerate(self.mapping_names)}

    @property
    def latency_s(self) -> np.ndarray:
        """Latency in seconds ``[L, C]``."""
        return self.latency_cycles / (self.clock_mhz * 1e6)

    def choice_index(self, choice: Choice) -> int:
        """Column of ``choice`` (UsageError if absent)."""
        try:
            return self.choices.index(choice)
        except ValueError:
            raise UsageError(f"choice {choice} was not evaluated; evaluated: "
                             f"{', '.join(map(str, self.choices))}") from None

    def totals(self, assignment: Sequence[int]) -> dict[str, float]:
        """Sums over layers when layer ``l`` takes column ``assignment[l]``: energy (pJ, and per
        breakdown key ``<key>_pj``), latency/compute/DRAM cycles, weight bits, latency seconds."""
        idx = np.arange(len(self.layer_names))
        a = np.asarray(assignment, dtype=int)
        out = {"energy_pj": float(self.energy_pj[idx, a].sum()),
               "latency_cycles": float(self.latency_cycles[idx, a].sum()),
               "compute_cycles": float(self.compute_cycles[idx, a].sum()),
               "dram_cycles": float(self.dram_cycles[idx, a].sum()),
               "weight_bits": float(self.weight_bits[idx, a].sum()),
               "dram_bits": float(self.dram_bits[idx, a].sum())}
        for k, v in self.breakdown_pj.items():
            out[f"{k}_pj"] = float(v[idx, a].sum())
        for k, v in self.dram_bits_by_operand.items():
            out[f"dram_{k}_bits"] = float(v[idx, a].sum())
        out["latency_s"] = out["latency_cycles"] / (self.clock_mhz * 1e6)
        return out

    def uniform(self, choice: Choice) -> dict[str, float]:
        """Totals with every layer at ``choice``."""
        return self.totals([self.choice_index(choice)] * len(self.layer_names))


def _check_choices(spec: "AcceleratorSpec", choices: Sequence[Choice]) -> None:
    for c in choices:
        if not spec.supports(c.fmt, c.bits, c.act_bits):
            fm = ", ".join(f"{f}{b}" for f, b in spec.arithmetic.weight_formats)
            raise UsageError(f"accelerator {spec.name!r} does not run {c}: weight formats {fm}; "
                             f"act_bits {', '.join(map(str, spec.arithmetic.act_bits))}")


def _layer_arrays(workload: "Workload") -> dict[str, np.ndarray]:
    ls = workload.layers
    f = lambda attr: np.array([float(getattr(l, attr)) for l in ls], dtype=float)  # noqa: E731
    out = {a: f(a) for a in ("m", "k", "n", "groups", "batch", "macs", "in_elems", "out_elems",
                             "stationary_elems", "weights")}
    out["act_stationary"] = np.array([l.stationary_is_activation for l in ls], dtype=bool)
    out["read_elems"] = np.array([float(l.read_elems) for l in ls], dtype=float)
    return out


def m_tiled_layer_cycles(m: int, k: int, n: int, m_tile_rows: int, *, rows: int, cols: int, lanes: int,
                         term_slots: int, bits_per_cycle: int | None) -> int:
    """Compute cycles of one ``[m, k] x [k, n]`` GEMM run as M tiles of ``m_tile_rows`` rows (last one
    ragged): one :func:`hwq.timing.layer_compute_cycles` run of the RTL per M tile, summed.

    ``CostTable.compute_cycles[l, c] == groups * batch * m_tiled_layer_cycles(m, k, n / groups,
    CostTable.m_tile_rows[l, c], ...)`` -- the per-run RTL contract a co-simulation can check.
    """
    if m_tile_rows < 1:
        raise ValueError(f"m_tile_rows must be >= 1, got {m_tile_rows}")
    return layer_compute_cycles(m, k, n, rows=rows, cols=cols, lanes=lanes, term_slots=term_slots,
                                bits_per_cycle=bits_per_cycle, m_tile=m_tile_rows)


def _tile_cycles(m_rows: np.ndarray, slots: np.ndarray, rows: int, bpc: int | None) -> np.ndarray:
    """``hwq.timing.tile_compute_cycles(m_rows, rows, slots, bpc)`` elementwise (each distinct pair once)."""
    mr, ts = m_rows.ravel().astype(np.int64), np.broadcast_to(slots, m_rows.shape).ravel().astype(np.int64)
    key = mr * 64 + ts                                   # term slots < 64: one integer per pair
    uniq, inv = np.unique(key, return_inverse=True)
    vals = np.array([tile_compute_cycles(int(k // 64), rows, int(k % 64), bpc) for k in uniq], dtype=float)
    return vals[np.asarray(inv).ravel()].reshape(m_rows.shape)


def _dataflow_of(mapping: str) -> str:
    return "accumulate_in_array" if mapping.startswith("accumulate") else "output_buffer"


@dataclass
class _Flow:
    """Per-layer residency and billed vector-op traffic at the activation widths of the choices ``[L, C]``."""

    in_resident: np.ndarray
    stat_resident: np.ndarray
    out_dram: np.ndarray
    free_bits: np.ndarray
    vec_buf_reads: np.ndarray
    vec_buf_writes: np.ndarray
    vec_dram: np.ndarray
    vec_ops: np.ndarray
    vec_cycles: np.ndarray
    spilled: dict[int, tuple[str, ...]]


def _flow(workload: "Workload", spec: "AcceleratorSpec", act_bits: Sequence[int]) -> _Flow:
    """Liveness-based residency (:mod:`hwq.residency`) per distinct activation width, per layer."""
    sched = build_schedule(workload)
    names = [l.name for l in workload.layers]
    row = {n: i for i, n in enumerate(names)}
    nl, nc = len(names), len(act_bits)
    z = lambda dtype=float: np.zeros((nl, nc), dtype)  # noqa: E731
    f = _Flow(z(bool), z(bool), z(), z(), z(), z(), z(), z(), z(), {})
    cap = spec.buffers["activation"].capacity_bits
    lanes = spec.vector.lanes
    done: dict[int, int] = {}                     # act_bits -> the column computed for it
    for c, a in enumerate(act_bits):
        if a in done:
            for arr in (f.in_resident, f.stat_resident, f.out_dram, f.free_bits, f.vec_buf_reads,
                        f.vec_buf_writes, f.vec_dram, f.vec_ops, f.vec_cycles):
                arr[:, c] = arr[:, done[a]]
            continue
        done[a] = c
        res = residency(sched, a, cap)
        f.spilled[a] = res.spilled
        for i, st in enumerate(sched.steps):
            t_out = sched.tensors[st.output]
            out_bits = t_out.elems * a
            out_dram = out_bits if (not res.resident[st.output] or t_out.network_output) else 0.0
            if st.is_layer:
                l = row[st.name]
                f.in_resident[l, c] = res.resident.get(st.inputs[0], False)
                stat = st.inputs[1] if len(st.inputs) > 1 else st.inputs[0]
                f.stat_resident[l, c] = res.resident.get(stat, False)
                f.out_dram[l, c] = out_dram
                f.free_bits[l, c] = res.free_bits[i]
                continue
            target = sched.billed_to.get(st.name)
            if target is None:
                continue
            l = row[target]
            for t in st.inputs:
                bits = sched.tensors[t].elems * a
                if res.resident.get(t, False):
                    f.vec_buf_reads[l, c] += bits
                else:
                    f.vec_dram[l, c] += bits
            f.vec_dram[l, c] += st.lookup_elems * a + out_dram
            f.vec_buf_writes[l, c] += out_bits
            f.vec_ops[l, c] += st.ops
            f.vec_cycles[l, c] += math.ceil(st.ops / lanes)
    return f


def buffer_access_pj(buffer: "BufferSpec | AccumulatorSpec", read_bits: np.ndarray | float,
                     write_bits: np.ndarray | float) -> np.ndarray | float:
    """Energy (pJ) of reading ``read_bits`` and writing ``write_bits`` through a buffer (or the
    accumulators) with ``access_bits``-wide accesses at ``read_energy_pj`` / ``write_energy_pj`` each."""
    return (read_bits / buffer.access_bits * buffer.read_energy_pj
            + write_bits / buffer.access_bits * buffer.write_energy_pj)


def evaluate(workload: "Workload", spec: "AcceleratorSpec", choices: Sequence[Choice] | None = None,
             *, mappings: Sequence[str] | None = None, batch: int | None = None) -> CostTable:
    """Cost of every layer of ``workload`` at every choice (default: ``spec.choices()``) on ``spec``.

    ``batch`` images run together (default ``spec.batch``): every weight loaded serves all of them.
    Energies are per image; cycles and bits per batch. Per (layer, choice) the least-energy legal
    loop nest of ``mappings`` (default: every mapping of the spec's ``dataflow.modes``) is used;
    where none is legal ``energy_pj`` is ``inf`` (never with the default set: ``n_outer`` and
    ``accumulate_in_array_refetched`` are always legal). Formulas and units: the module docstring.
    Raises ``UsageError`` for a choice the accelerator does not support, an unknown mapping name,
    or a mapping set that none of the spec's dataflows runs.
    """
    choices = list(spec.choices() if choices is None else choices)
    if not choices:
        raise UsageError("no precision choices to evaluate")
    _check_choices(spec, choices)
    names = tuple(MAPPINGS if mappings is None else mappings)
    bad = [x for x in names if x not in MAPPINGS]
    if bad or not names:
        raise UsageError(f"unknown mapping(s) {', '.join(bad) or '(none given)'}; known: {', '.join(MAPPINGS)}")
    names = tuple(x for x in names if _dataflow_of(x) in spec.dataflow.modes)
    if not names:
        raise UsageError(f"none of the mappings {', '.join(mappings or ())} runs on {spec.name!r}'s dataflow "
                         f"({', '.join(spec.dataflow.modes)})")
    batch = spec.batch if batch is None else batch
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"batch must be a positive integer, got {batch!r}")
    workload = workload.with_batch(batch)
    L = _layer_arrays(workload)
    nl, nc = len(workload.layers), len(choices)
    ar, arith = spec.array, spec.arithmetic
    bpc = arith.bits_per_cycle
    ones = np.ones((nl, nc))
    flow = _flow(workload, spec, [c.act_bits for c in choices])

    a = np.array([c.act_bits for c in choices], dtype=float)[None, :]                 # [1, C]
    w_nominal = np.array([c.bits for c in choices], dtype=float)[None, :]
    w_store = np.array([meta_bits_per_weight(c.fmt, c.bits, arith.group_size) for c in choices])[None, :]
    w_slots = np.array([term_slots(c.fmt, c.bits) for c in choices])[None, :]
    a_slots = np.array([term_slots("int", c.act_bits) for c in choices])[None, :]
    act = L["act_stationary"][:, None]                                                 # [L, 1]
    slots = np.where(act, a_slots, w_slots) * ones                                     # [L, C]
    s_bits = np.where(act, a, w_store)                                                 # stored bits / element
    pe_bits = np.where(act, a, w_nominal)                                              # operand width for PE energy
    interval = np.vectorize(lambda t: cycles_per_weight(int(t), bpc), otypes=[float])(slots)

    m, k, n, groups, mbatch = (L[x][:, None] for x in ("m", "k", "n", "groups", "batch"))
    n_g = n / groups
    inst = groups * mbatch                                                             # GEMMs per layer
    k_tiles = np.ceil(k / (ar.rows * ar.lanes))
    n_tiles = np.ceil(n_g / ar.cols)
    pe_cycles = np.ceil(k / ar.lanes) * n * m * mbatch * interval
    compute_pj = spec.compute.pe_cycle_pj(pe_bits, a) * pe_cycles * ones

    # --- operand sizes (bits), residency and buffer capacities ---------------------------------
    W = L["stationary_elems"][:, None] * s_bits * ones
    I = L["read_elems"][:, None] * a * ones
    O = L["out_elems"][:, None] * a * ones
    free = flow.free_bits
    cap_w = spec.buffers["weight"].capacity_bits
    cap_o = spec.buffers["output"].capacity_bits
    acc = arith.accumulator_bits
    psum_row = np.minimum(ar.cols, n_g) * acc                                          # [L, 1] bits per row
    w_on_chip = act & flow.stat_resident                                               # stationary activation resident
    i_res = flow.in_resident
    i_staged = i_res | (I <= free)                                                     # kept on chip across N passes
    o_dram = flow.out_dram
    w_ntile = L["k"][:, None] * np.minimum(ar.cols, n_g) * s_bits * ones               # one N tile's weights

    # --- M tiles ---------------------------------------------------------------------------------
    mt_psum = np.where(k_tiles > 1, np.floor(cap_o / psum_row), np.inf) * ones
    mt_in = np.where(i_staged, np.inf, np.floor(free * m / np.where(I > 0, I, 1.0)))
    depth = float(spec.accumulators.depth) if spec.accumulators is not None else np.inf

    def m_tiles_of(m_t: np.ndarray):
        m_t = np.maximum(m_t, 1.0)
        tiles = np.ceil(m / m_t)
        return m_t, tiles, m - (tiles - 1) * m_t

    elide = spec.dataflow.elide_psums
    stream_reads = a * m * k * n_tiles * inst
    psum_bits = acc * m * n * mbatch * (np.maximum(k_tiles - 1, 0) if elide else k_tiles) * ones
    tile_full = _tile_cycles(m * ones, slots, ar.rows, bpc)
    zero = 0.0 * ones
    per_mapping = []
    for name in names:
        if name == "n_outer":
            legal = np.ones((nl, nc), bool)
            m_rows, m_tiles = m * ones, ones
            cycles = inst * k_tiles * n_tiles * tile_full
            fetches, w_writes = ones, W
            i_dram = np.where(i_res, 0.0, np.where(i_staged, I, I * n_tiles))
            spills = (m * psum_row > cap_o) & (k_tiles > 1)
            psum_dram = np.where(spills, 2 * (k_tiles - 1) * m * n * mbatch * acc, 0.0) * ones
        else:
            if name.startswith("m_tiled"):
                m_t = np.minimum(np.minimum(m * ones, mt_psum), mt_in)
                legal = m_t >= 1
                i_dram = np.where(i_res, 0.0, I)
                resident = name == "m_tiled_weights_resident"
                legal = legal & ((W <= cap_w) if resident else True)
            else:
                m_t = np.minimum(m, depth) * ones
                legal = np.ones((nl, nc), bool)
                i_dram = np.where(i_res, 0.0, np.where(i_staged, I, I * n_tiles))
                resident = name == "accumulate_in_array"
                legal = legal & ((w_ntile <= cap_w) if resident else True)
            m_rows, m_tiles, m_last = m_tiles_of(m_t)
            per_pass = ((m_tiles - 1) * _tile_cycles(m_rows, slots, ar.rows, bpc)
                        + _tile_cycles(np.maximum(m_last, 1.0), slots, ar.rows, bpc))
            cycles = inst * k_tiles * n_tiles * per_pass
            fetches = ones if resident else m_tiles
            w_writes = W if resident else W * m_tiles
            psum_dram = zero
        in_array = name.startswith("accumulate")
        w_dram = np.where(w_on_chip, 0.0, W * fetches)
        dram_bits = w_dram + i_dram + o_dram + psum_dram + flow.vec_dram
        dram_cycles = np.ceil(dram_bits / spec.dram_bits_per_cycle)
        latency = np.maximum(cycles, dram_cycles) + flow.vec_cycles
        breakdown = {"compute": compute_pj,
                     "vector": spec.vector.op_pj(a) * flow.vec_ops,
                     "weight_buffer": buffer_access_pj(spec.buffers["weight"], W * m_tiles, w_writes),
                     "activation_buffer": buffer_access_pj(spec.buffers["activation"],
                                                           stream_reads + np.where(w_on_chip, W * fetches, 0.0)
                                                           + flow.vec_buf_reads, i_dram + O + flow.vec_buf_writes),
                     "output_buffer": zero if in_array else buffer_access_pj(spec.buffers["output"], psum_bits,
                                                                             psum_bits),
                     "accumulators": buffer_access_pj(spec.accumulators, psum_bits, psum_bits) if in_array else zero,
                     "dram": dram_bits * spec.dram.energy_pj_per_bit,
                     "static": spec.static_power_mw * latency / spec.clock_mhz * 1e3}
        breakdown = {key: v / batch for key, v in breakdown.items()}                 # per image
        energy = sum(breakdown.values())
        per_mapping.append(dict(energy=np.where(legal, energy, np.inf), latency=latency, cycles=cycles,
                                dram_cycles=dram_cycles, dram_bits=dram_bits, breakdown=breakdown,
                                by_operand={"weights": w_dram, "inputs": i_dram, "outputs": o_dram,
                                            "psums": psum_dram, "vector": flow.vec_dram},
                                m_tiles=m_tiles, m_rows=m_rows))

    best = np.argmin(np.stack([p["energy"] for p in per_mapping]), axis=0)             # [L, C]

    def pick(get) -> np.ndarray:
        stacked = np.stack([np.broadcast_to(get(p), (nl, nc)) for p in per_mapping])
        return np.take_along_axis(stacked, best[None], axis=0)[0].astype(float)

    breakdown = {key: pick(lambda p, key=key: p["breakdown"][key]) for key in BREAKDOWN_KEYS}
    energy = np.where(np.isfinite(pick(lambda p: p["energy"])), sum(breakdown.values()), np.inf)
    weight_bits = np.where(act, 0.0, L["weights"][:, None] * w_store) * ones
    mapping = np.array([MAPPINGS.index(x) for x in names], dtype=np.int8)[best]
    return CostTable(
        layer_names=[l.name for l in workload.layers], choices=choices, clock_mhz=spec.clock_mhz,
        energy_pj=energy, latency_cycles=pick(lambda p: p["latency"]), compute_cycles=pick(lambda p: p["cycles"]),
        dram_cycles=pick(lambda p: p["dram_cycles"]), breakdown_pj=breakdown, weight_bits=weight_bits,
        dram_bits=pick(lambda p: p["dram_bits"]), macs=L["macs"].copy(),
        dram_bits_by_operand={key: pick(lambda p, key=key: p["by_operand"][key]) for key in DRAM_OPERANDS},
        quantizable=~L["act_stationary"], mapping=mapping, mapping_names=MAPPINGS,
        m_tiles=pick(lambda p: p["m_tiles"]), m_tile_rows=pick(lambda p: p["m_rows"]), batch=batch,
        vector_cycles=flow.vec_cycles.copy(), input_resident=flow.in_resident.copy(),
        output_resident=o_dram == 0, spilled=flow.spilled)


def plan_choices(plan: Mapping, workload: "Workload", spec: "AcceleratorSpec") -> list[Choice]:
    """Per-layer choices of a plan.json dict (``{"layers": [{"name", "format", "bits", "act_bits"}]}``).

    Every weight layer must be in the plan; a weightless layer (attention product) not in the
    plan runs at the accelerator's highest ``act_bits``. Raises ``UsageError`` naming the problem.
    """
    if not isinstance(plan, Mapping) or not isinstance(plan.get("layers"), list):
        raise UsageError("malformed plan: expected a JSON object with a 'layers' list of "
                         "{name, format, bits, act_bits}")
    by_name: dict[str, Choice] = {}
    for i, e in enumerate(plan["layers"]):
        if not isinstance(e, Mapping) or not {"name", "format", "bits"} <= set(e):
            raise UsageError(f"malformed plan: layers[{i}] needs name, format and bits")
        try:
            act_bits = int(e.get("act_bits") or max(spec.arithmetic.act_bits))
            by_name[str(e["name"])] = Choice(str(e["format"]), int(e["bits"]), act_bits)
        except (TypeError, ValueError):
            raise UsageError(f"malformed plan: layers[{i}] has non-integer bits or act_bits") from None
    known = {l.name for l in workload.layers}
    unknown = [n for n in by_name if n not in known]
    if unknown:
        raise UsageError(f"plan names layers the model does not have: {', '.join(unknown[:5])}")
    missing = [l.name for l in workload.layers if l.has_weights and l.name not in by_name]
    if missing:
        raise UsageError(f"plan has no entry for {len(missing)} layer(s), e.g. {', '.join(missing[:3])}")
    top = max(spec.arithmetic.act_bits)
    default_fmt = spec.arithmetic.weight_formats[0]
    out = []
    for l in workload.layers:
        c = by_name.get(l.name) or Choice(default_fmt[0], default_fmt[1], top)
        out.append(c)
    _check_choices(spec, out)
    return out


def evaluate_plan(workload: "Workload", spec: "AcceleratorSpec", per_layer: Sequence[Choice],
                  batch: int | None = None) -> tuple[CostTable, list[int]]:
    """Evaluate the distinct choices of ``per_layer`` once; return the table and each layer's column."""
    distinct = sorted(set(per_layer))
    table = evaluate(workload, spec, distinct, batch=batch)
    return table, [distinct.index(c) for c in per_layer]


def format_energy(pj: float) -> str:
    """Human units for an energy in pJ (nJ, uJ, mJ)."""
    for unit, scale in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3f} {unit}"
    return f"{pj:.1f} pJ"
