"""Analytic cost model: latency (cycles) and energy (pJ) of every layer at every precision choice.

``evaluate(workload, spec, choices)`` returns a :class:`CostTable` of ``[L, C]`` arrays
(layers x choices), computed with numpy for the whole model in one call. For every (layer,
choice) a small mapper picks one of the loop nests in :data:`MAPPINGS` (the one of least
total energy, pJ; ties go to the lowest index) and records it in ``CostTable.mapping``.

GEMM and array tiles
--------------------
A layer is ``G = groups * batch`` independent GEMMs ``[m, k] x [k, n_g]`` (``n_g = n / groups``).
The array holds a ``(rows * lanes) x cols`` weight tile: ``k_tiles = ceil(k / (rows * lanes))``,
``n_tiles = ceil(n_g / cols)``. Symbols (bits unless stated; ``a`` = act_bits; ``s`` = stored
bits per stationary element, the weight format's bits incl. group metadata,
``hwq.datatypes.meta_bits_per_weight``, or ``a`` when the stationary operand is an activation):

* ``W = stationary_elems * s`` (whole layer, all G GEMMs), ``I = in_elems * a`` (the layer's
  input tensor), ``O = out_elems * a``;
* ``H = activation capacity / 2`` (one half holds the layer's input, the other its output),
  ``C_w`` = weight buffer capacity, ``C_o`` = output (partial-sum) buffer capacity;
* ``P = min(cols, n_g) * accumulator_bits``: partial sums of one activation row of one N tile.

Loop nests (weight-stationary; the array itself always runs the RTL's N-outer/K-inner loop)
-----------------------------------------------------------------------------------------
0. ``n_outer`` -- the RTL's whole-layer loop: per GEMM, for each N tile, for each K tile: load the
   weight tile, stream all ``m`` rows. One M tile. Weights come from DRAM once, tile by tile
   (no residency needed). An input with ``I > H`` is re-fetched from DRAM for every N-tile pass
   (``I * n_tiles``). The ``[m, min(cols, n_g)]`` partial-sum block (``m * P`` bits) must stay
   in the output buffer across K tiles; if ``m * P > C_o`` and ``k_tiles > 1`` it spills:
   ``2 * (k_tiles - 1) * m * n * batch * accumulator_bits`` DRAM bits (written, read back).
1. ``m_tiled_weights_resident`` -- legal only if ``W <= C_w``. The layer's weights are loaded
   into the weight buffer once (DRAM once); then for each M tile of ``m_t`` rows: for each GEMM,
   for each N tile, for each K tile: load the weight tile from the weight buffer, stream the
   ``m_t`` rows. Inputs come from DRAM once (if ``I > H``), partial sums never spill.
2. ``m_tiled_weights_refetched`` -- as 1 but the weights are not kept: every M tile streams all
   weight tiles from their source again (DRAM ``W * M_tiles`` bits). Always legal; useful when
   ``W > C_w`` but re-fetching the input (0) or spilling partial sums (0) costs more.

M tile (mappings 1 and 2): ``m_t = min(m, floor(C_o / P) if k_tiles > 1, floor(H * m / I) if
I > H)`` rows, so the partial-sum block ``m_t * P`` fits the output buffer and the input slice
``I * m_t / m`` fits its activation half (the conv halo rows an M tile shares with the next are
not counted: at most ``kh - stride`` input rows per tile); ``M_tiles = ceil(m / m_t)``, the last
tile has ``m - (M_tiles - 1) * m_t`` rows. ``m_t < 1`` makes the mapping illegal.

Cycles
------
* **Compute cycles** come only from the RTL contract :func:`hwq.timing.tile_compute_cycles`,
  summed over every array tile the mapping runs (each M tile is one run of the RTL's loop, so
  more M tiles = more weight loads and drains, counted exactly):
  ``compute_cycles = G * k_tiles * n_tiles * ((M_tiles - 1) * tile(m_t) + tile(m_last))``,
  ``tile(x) = tile_compute_cycles(x, rows, term_slots, bits_per_cycle)``. With one M tile this is
  ``G * hwq.timing.layer_compute_cycles(m, k, n_g, ...)``. ``term_slots`` is
  ``hwq.datatypes.term_slots(fmt, bits)`` of the weight format; for activation x activation
  products (attention) the stationary operand is an ``int`` activation of ``act_bits``.
* **Active PE-cycles** (any mapping): ``pe_cycles = ceil(k / lanes) * n * m * batch *
  cycles_per_weight`` (PEs holding no weight are clock-gated: idle PEs cost only static power).
* ``dram_cycles = ceil(dram_bits / dram_bits_per_cycle)``, ``dram_bits_per_cycle =
  bandwidth_gb_per_s * 8e9 / (clock_mhz * 1e6)``; ``latency_cycles = max(compute_cycles,
  dram_cycles)`` (roofline).

Bits moved (per layer and choice; ``F`` = stationary fetches: 1 for mappings 0 and 1,
``M_tiles`` for mapping 2)
------------------------------------------------------------------------------------
* DRAM: stationary ``W * F``, except an activation used as the stationary operand with
  ``W <= H``, which is on chip (copied from the activation buffer, ``W * F`` extra activation
  reads); inputs ``0`` if ``I <= H`` (left on chip by the producer), else ``I * n_tiles``
  (mapping 0) or ``I`` (1, 2); outputs ``0`` if ``O <= H``, else ``O`` (written once); spilled
  partial sums (mapping 0 only, above).
* Weight buffer: writes ``W`` (0, 1) or ``W * M_tiles`` (2); reads ``W * M_tiles`` (every M tile
  loads every weight tile into the array; ``M_tiles = 1`` for mapping 0).
* Activation buffer: reads ``a * m * k * n_tiles * G`` (every N-tile pass streams its rows) plus
  the stationary copies above; writes = DRAM input bits + ``O``.
* Output (partial-sum) buffer: reads = writes = ``accumulator_bits * m * n * batch * k_tiles``.

Energy (pJ), per layer and choice
---------------------------------
* ``compute = pe_cycle_pj(weight_bits, act_bits) * pe_cycles`` (``hwq.spec.ComputeEnergySpec``:
  pJ per active PE-cycle, scaled by the operand widths as the spec says).
* each buffer: ``reads / access_bits * read_energy_pj + writes / access_bits * write_energy_pj``.
* ``dram = dram_bits * energy_pj_per_bit``.
* ``static = static_power_mw * latency_cycles / clock_mhz * 1e3`` (mW x us = nJ = 1e3 pJ).
* ``energy_pj`` = sum of the six; the mapper minimises it per (layer, choice) over the legal
  mappings (``evaluate(..., mappings=...)`` restricts the set, e.g. ``("n_outer",)`` for the
  RTL's single whole-layer loop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from hwq.datatypes import cycles_per_weight, meta_bits_per_weight, term_slots
from hwq.errors import UsageError
from hwq.timing import layer_compute_cycles, tile_compute_cycles

if TYPE_CHECKING:  # pragma: no cover
    from hwq.spec import AcceleratorSpec
    from hwq.workload import Workload

#: Energy breakdown keys of :attr:`CostTable.breakdown_pj`.
BREAKDOWN_KEYS = ("compute", "weight_buffer", "activation_buffer", "output_buffer", "dram", "static")

#: Loop nests the mapper chooses from (index = value in :attr:`CostTable.mapping`); see the module docstring.
MAPPINGS: tuple[str, ...] = ("n_outer", "m_tiled_weights_resident", "m_tiled_weights_refetched")


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
    full, last = divmod(m, m_tile_rows)
    kw = dict(rows=rows, cols=cols, lanes=lanes, term_slots=term_slots, bits_per_cycle=bits_per_cycle)
    cycles = full * layer_compute_cycles(m_tile_rows, k, n, **kw)
    return cycles + (layer_compute_cycles(last, k, n, **kw) if last else 0)


def _tile_cycles(m_rows: np.ndarray, slots: np.ndarray, rows: int, bpc: int | None) -> np.ndarray:
    """``hwq.timing.tile_compute_cycles(m_rows, rows, slots, bpc)`` elementwise (each distinct pair once)."""
    pairs = np.stack([m_rows.ravel(), slots.ravel()], axis=1).astype(np.int64)
    uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
    vals = np.array([tile_compute_cycles(int(mr), rows, int(ts), bpc) for mr, ts in uniq], dtype=float)
    return vals[np.asarray(inv).ravel()].reshape(m_rows.shape)


def evaluate(workload: "Workload", spec: "AcceleratorSpec", choices: Sequence[Choice] | None = None,
             *, mappings: Sequence[str] | None = None) -> CostTable:
    """Cost of every layer of ``workload`` at every choice (default: ``spec.choices()``) on ``spec``.

    Per (layer, choice) the least-energy legal loop nest of ``mappings`` (default: all of
    :data:`MAPPINGS`) is used; where none of ``mappings`` is legal, ``energy_pj`` is ``inf``
    (never with the default set: ``n_outer`` is always legal). Formulas and units: see the module docstring. Raises
    ``UsageError`` for a choice the accelerator does not support or an unknown mapping name.
    """
    choices = list(spec.choices() if choices is None else choices)
    if not choices:
        raise UsageError("no precision choices to evaluate")
    _check_choices(spec, choices)
    names = tuple(MAPPINGS if mappings is None else mappings)
    bad = [x for x in names if x not in MAPPINGS]
    if bad or not names:
        raise UsageError(f"unknown mapping(s) {', '.join(bad) or '(none given)'}; known: {', '.join(MAPPINGS)}")
    L = _layer_arrays(workload)
    nl, nc = len(workload.layers), len(choices)
    ar, arith = spec.array, spec.arithmetic
    bpc = arith.bits_per_cycle
    ones = np.ones((nl, nc))

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

    m, k, n, groups, batch = (L[x][:, None] for x in ("m", "k", "n", "groups", "batch"))
    inst = groups * batch                                                              # GEMMs per layer
    k_tiles = np.ceil(k / (ar.rows * ar.lanes))
    n_tiles = np.ceil((n / groups) / ar.cols)
    pe_cycles = np.ceil(k / ar.lanes) * n * m * batch * interval
    compute_pj = spec.compute.pe_cycle_pj(pe_bits, a) * pe_cycles * ones

    # --- operand sizes (bits) and buffer capacities -----------------------------------------
    W = L["stationary_elems"][:, None] * s_bits * ones
    I = L["in_elems"][:, None] * a * ones
    O = L["out_elems"][:, None] * a * ones
    half = spec.buffers["activation"].capacity_bits / 2
    cap_w = spec.buffers["weight"].capacity_bits
    cap_o = spec.buffers["output"].capacity_bits
    acc = arith.accumulator_bits
    psum_row = np.minimum(ar.cols, n / groups) * acc                                   # [L, 1] bits per row
    w_on_chip = act & (W <= half)                                                      # stationary activation resident
    i_fits = I <= half
    o_dram = np.where(O <= half, 0.0, O)

    # --- M tile of the tiled mappings ---------------------------------------------------------
    mt_psum = np.where(k_tiles > 1, np.floor(cap_o / psum_row), np.inf) * ones
    mt_in = np.where(i_fits, np.inf, np.floor(half * m / np.where(I > 0, I, 1.0)))
    m_t = np.minimum(np.minimum(m * ones, mt_psum), mt_in)
    tiled_legal = m_t >= 1
    m_t = np.maximum(m_t, 1.0)
    m_tiles_t = np.ceil(m / m_t)
    m_last = m - (m_tiles_t - 1) * m_t

    def buf_pj(name: str, reads: np.ndarray, writes: np.ndarray) -> np.ndarray:
        b = spec.buffers[name]
        return reads / b.access_bits * b.read_energy_pj + writes / b.access_bits * b.write_energy_pj

    stream_reads = a * m * k * n_tiles * inst
    psum_bits = acc * m * n * batch * k_tiles * ones
    out_pj = buf_pj("output", psum_bits, psum_bits)
    tile_full = _tile_cycles(m * ones, slots, ar.rows, bpc)
    per_mapping = []
    for name in names:
        if name == "n_outer":
            legal = np.ones((nl, nc), bool)
            m_tiles, m_rows = ones, m * ones
            cycles = inst * k_tiles * n_tiles * tile_full
            fetches = ones
            w_writes = W
            i_dram = np.where(i_fits, 0.0, I * n_tiles)
            spills = (m * psum_row > cap_o) & (k_tiles > 1)
            psum_dram = np.where(spills, 2 * (k_tiles - 1) * m * n * batch * acc, 0.0) * ones
        else:
            resident = name == "m_tiled_weights_resident"
            legal = tiled_legal & ((W <= cap_w) if resident else True)
            m_tiles, m_rows = m_tiles_t, m_t
            per_pass = ((m_tiles - 1) * _tile_cycles(m_t, slots, ar.rows, bpc)
                        + _tile_cycles(np.maximum(m_last, 1.0), slots, ar.rows, bpc))
            cycles = inst * k_tiles * n_tiles * per_pass
            fetches = ones if resident else m_tiles
            w_writes = W if resident else W * m_tiles
            i_dram = np.where(i_fits, 0.0, I)
            psum_dram = 0.0 * ones
        w_dram = np.where(w_on_chip, 0.0, W * fetches)
        dram_bits = w_dram + i_dram + o_dram + psum_dram
        dram_cycles = np.ceil(dram_bits / spec.dram_bits_per_cycle)
        latency = np.maximum(cycles, dram_cycles)
        breakdown = {"compute": compute_pj,
                     "weight_buffer": buf_pj("weight", W * m_tiles, w_writes),
                     "activation_buffer": buf_pj("activation", stream_reads + np.where(w_on_chip, W * fetches, 0.0),
                                                 i_dram + O),
                     "output_buffer": out_pj,
                     "dram": dram_bits * spec.dram.energy_pj_per_bit,
                     "static": spec.static_power_mw * latency / spec.clock_mhz * 1e3}
        energy = sum(breakdown.values())
        per_mapping.append(dict(energy=np.where(legal, energy, np.inf), latency=latency, cycles=cycles,
                                dram_cycles=dram_cycles, dram_bits=dram_bits, breakdown=breakdown,
                                by_operand={"weights": w_dram, "inputs": i_dram, "outputs": o_dram,
                                            "psums": psum_dram},
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
        dram_bits_by_operand={key: pick(lambda p, key=key: p["by_operand"][key])
                              for key in ("weights", "inputs", "outputs", "psums")},
        quantizable=~L["act_stationary"], mapping=mapping, mapping_names=MAPPINGS,
        m_tiles=pick(lambda p: p["m_tiles"]), m_tile_rows=pick(lambda p: p["m_rows"]))


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


def evaluate_plan(workload: "Workload", spec: "AcceleratorSpec", per_layer: Sequence[Choice]) -> tuple[CostTable, list[int]]:
    """Evaluate the distinct choices of ``per_layer`` once; return the table and each layer's column."""
    distinct = sorted(set(per_layer))
    table = evaluate(workload, spec, distinct)
    return table, [distinct.index(c) for c in per_layer]


def format_energy(pj: float) -> str:
    """Human units for an energy in pJ (nJ, uJ, mJ)."""
    for unit, scale in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3f} {unit}"
    return f"{pj:.1f} pJ"
