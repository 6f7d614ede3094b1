"""Layer-level co-simulation proof: the RTL array computes what the golden model says, in the
cycles the cost model predicts.

:func:`check_layer` takes one real layer of a real model (``MODEL:LAYER``), quantizes its
weights (``hwq.quant.quantize_weight_codes``) and the activation that really enters it on
the recipe's calibration batch (signed ``act_bits`` integers, power-of-two scale), lowers it
to a GEMM, cuts a tile that spans more than one array tile in both K and N (ragged edges
included), and compares the array RTL's outputs, cycle count and partial-sum memory accesses
with ``hwq.golden`` and ``hwq.timing``. ``batch`` images give the tile's M rows (``rows`` of
each; one weight load serves them all); the dataflow (``output_buffer`` or
``accumulate_in_array``) decides the M tiling (:func:`hwq.verify.rtl.tile_m_tile`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwq.errors import UsageError

#: Activation rows (output pixels / tokens) streamed through each tile by default (per image).
DEFAULT_M_ROWS = 4


def default_m_rows(spec: Any, dataflow: str, batch: int) -> int:
    """Rows per image of the default tile: :data:`DEFAULT_M_ROWS`, or in ``accumulate_in_array``
    enough that the tile's ``batch * rows`` exceed one and a half accumulator depths (so the run
    walks at least two M tiles, the last one ragged)."""
    if dataflow != "accumulate_in_array":
        return DEFAULT_M_ROWS
    depth = int(spec.accumulators.depth)
    return max(DEFAULT_M_ROWS, -(-(depth + depth // 2 + 1) // batch))


@dataclass
class Mismatch:
    """The first output that differs: its tile index, operands, expected and simulated values."""

    m: int
    n: int
    layer_row: int
    expected: int
    got: int
    x_int: list[int]
    weight_values: list[int]
    scale_int: list[int]

    def __str__(self) -> str:
        def head(v: list[int]) -> str:
            return "[" + ", ".join(map(str, v[:8])) + (", ..." if len(v) > 8 else "") + f"] ({len(v)})"
        return (f"output [m={self.m}, n={self.n}] (layer GEMM row {self.layer_row}): expected {self.expected}, "
                f"got {self.got}; x_int={head(self.x_int)} weights={head(self.weight_values)} "
                f"scale_int={self.scale_int}")


@dataclass
class LayerCheckResult:
    """Everything ``hwq sim`` reports (cycles in clock cycles, sizes in elements)."""

    layer: str
    arch: str
    simulator: str
    precision: str
    precision_source: str
    array: dict[str, Any]
    layer_gemm: dict[str, int]
    tile: dict[str, int]
    act_exponent: int
    outputs_compared: int
    mismatches: int
    predicted_cycles: int
    measured_cycles: int
    first_mismatch: Mismatch | None = None
    cost_model: dict[str, Any] = field(default_factory=dict)
    sim_wall_s: float = 0.0
    batch: int = 1
    dataflow: str = "output_buffer"
    psum_elide: bool = False
    #: the run's loop nest: ``m_tile`` rows per M tile, ``m_tiles``, ``k_tiles``, ``n_tiles``
    tiling: dict[str, int] = field(default_factory=dict)
    #: o_mem row accesses: ``predicted`` (hwq.timing.psum_row_accesses) and ``measured`` (the array's
    #: psum_reads/psum_writes ports), each ``[reads, writes]``; empty when not measured
    psum_accesses: dict[str, list[int]] = field(default_factory=dict)

    @property
    def cycles_match(self) -> bool:
        return self.predicted_cycles == self.measured_cycles

    @property
    def psums_match(self) -> bool:
        a = self.psum_accesses
        return not a or a.get("predicted") == a.get("measured")

    @property
    def cost_model_match(self) -> bool:
        return not self.cost_model or self.cost_model.get("compute_cycles") == self.cost_model.get("timing_cycles")

    @property
    def ok(self) -> bool:
        """Bit-exact outputs, predicted == measured cycles and psum accesses (and the cost model
        agrees when checked)."""
        return self.mismatches == 0 and self.cycles_match and self.psums_match and self.cost_model_match

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(ok=self.ok, cycles_match=self.cycles_match, psums_match=self.psums_match,
                 cost_model_match=self.cost_model_match)
        return d


def default_tile_shape(rows: int, cols: int, lanes: int, group_size: int, k: int, n: int) -> tuple[int, int]:
    """Tile ``(k, n)`` of a layer with reduction ``k`` and ``n`` outputs, clipped to the layer.

    k: past the first group boundary and half an array tile beyond a whole number of array
    tiles (``max(1.5, group/tile + 0.5)`` array tiles of ``rows*lanes``), so the RTL sees a
    ragged last k-tile and two groups' scales; n: one and a half array widths (ragged last n-tile).
    """
    k_t = rows * lanes
    half = max(1, k_t // 2)
    return min(k, max(k_t, group_size) + half), min(n, cols + max(1, cols // 2))


def compare_outputs(tile: Any, expected: np.ndarray, got: np.ndarray) -> tuple[int, Mismatch | None]:
    """``(number of differing outputs, first one in row-major order)``; shapes must agree."""
    got = np.asarray(got, dtype=np.int64)
    if got.shape != expected.shape:
        raise ValueError(f"RTL returned outputs of shape {got.shape}, expected {expected.shape}")
    bad = np.argwhere(got != expected)
    if bad.size == 0:
        return 0, None
    mi, ni = (int(v) for v in bad[0])
    first = Mismatch(mi, ni, int(tile.row_index[mi]), int(expected[mi, ni]), int(got[mi, ni]),
                     tile.x_int[mi].tolist(), tile.weight_values()[ni].tolist(), tile.scale_int[ni].tolist())
    return int(bad.shape[0]), first


def cost_model_cycles(model: Any, recipe: Any, layer: str, spec: Any, choice: Any, *, batch: int = 1,
                      dataflow: str | None = None) -> dict[str, Any]:
    """Whole-layer compute cycles from ``hwq.cost.evaluate`` next to the same GEMM summed from ``hwq.timing``.

    The cost model runs a layer (at ``batch`` images) as ``groups * batch`` GEMMs, each in M tiles of
    ``CostTable.m_tile_rows`` rows (last one ragged); ``timing_cycles`` is
    :func:`hwq.timing.layer_compute_cycles` with that ``m_tile`` (the same as one RTL run per M
    tile). ``dataflow`` (given) restricts the mapper to that dataflow's mappings.
    """
    from hwq import cost as cost_mod
    from hwq.datatypes import term_slots
    from hwq.errors import HwqError
    from hwq.timing import layer_compute_cycles
    from hwq.workload import capture

    wl = capture(model, recipe.example_input())
    names = [lay.name for lay in wl.layers]
    if layer not in names:
        return {"note": f"layer {layer} is not in the captured workload"}
    idx = names.index(layer)
    kw_eval: dict[str, Any] = {}
    if batch != 1 or getattr(spec, "batch", 1) != 1:
        kw_eval["batch"] = batch
        wl_b = wl.with_batch(batch)
    else:
        wl_b = wl
    lay = wl_b.layers[idx]
    if dataflow is not None:
        acc = dataflow == "accumulate_in_array"
        kw_eval["mappings"] = [mp for mp in cost_mod.MAPPINGS if mp.startswith("accumulate") == acc]
    try:
        table = cost_mod.evaluate(wl, spec, [choice], **kw_eval)
    except HwqError as err:
        return {"note": f"hwq.cost.evaluate cannot cost {layer} on {dataflow or 'the spec dataflow'}: {err}"}
    a = spec.array
    groups, batch = int(getattr(lay, "groups", 1)), int(getattr(lay, "batch", 1))
    m_tile = int(table.m_tile_rows[idx, 0]) if getattr(table, "m_tile_rows", None) is not None \
        and np.size(table.m_tile_rows) else int(lay.m)
    kw = dict(rows=a.rows, cols=a.cols, lanes=a.lanes, term_slots=term_slots(choice.fmt, choice.bits),
              bits_per_cycle=spec.arithmetic.bits_per_cycle)
    n_g = int(lay.n) // groups
    per_gemm = layer_compute_cycles(int(lay.m), int(lay.k), n_g, m_tile=m_tile, **kw)
    out = {"m": int(lay.m), "k": int(lay.k), "n": int(lay.n), "groups": groups, "batch": batch,
           "images": int(kw_eval.get("batch", 1)), "m_tile_rows": m_tile,
           "compute_cycles": int(table.compute_cycles[idx, 0]), "timing_cycles": int(groups * batch * per_gemm)}
    names_m = getattr(table, "mapping_names", None)
    if names_m is not None and getattr(table, "mapping", None) is not None and np.size(table.mapping):
        out["mapping"] = str(names_m[int(table.mapping[idx, 0])])
    return out


@dataclass
class PreparedLayer:
    """A layer ready for co-simulation: its quantized operands, the cut tile and the predicted cycles."""

    ref: Any  # LayerRef
    spec: Any  # AcceleratorSpec
    precision: Any  # LayerPrecisionChoice
    group_size: int
    model: Any
    recipe: Any
    module: Any
    x_float: Any  # captured input activation (torch, float)
    act_exponent: int  # x ~= x_int * 2**act_exponent
    x_rows: np.ndarray  # [M, K] int64 GEMM rows of the quantized activation
    qw: Any  # QuantizedWeight of the whole layer ([N, K])
    tile: Any  # GemmTile
    term_slots: int
    predicted_cycles: int
    batch: int = 1  # images whose rows make the tile (x_rows holds them one after another)
    dataflow: str = "output_buffer"
    m_tile: int | None = None  # rows per M tile of the run (None: one M tile)
    predicted_psums: tuple[int, int] = (0, 0)  # hwq.timing.psum_row_accesses of the tile

    @property
    def precision_text(self) -> str:
        p = self.precision
        return f"{p.fmt}{p.bits}/a{p.act_bits} g{self.group_size}"


def prepare_layer(layer_ref: str, arch: str | Path, *, plan: Path | None = None, m_rows: int | None = None,
                  tile_k: int | None = None, tile_n: int | None = None, batch: int | None = None,
                  dataflow: str | None = None) -> PreparedLayer:
    """Load ``MODEL:LAYER``, quantize its weights and real input, lower it and cut the co-simulation tile.

    The input comes from ``batch`` calibration images (default ``spec.batch``; one activation scale
    for all) and the tile takes ``m_rows`` rows of each (default :func:`default_m_rows`).
    ``tile_k``/``tile_n`` override :func:`default_tile_shape`. ``dataflow`` (default the spec's
    first mode) sets the M tiling. The predicted cycles and psum accesses are
    ``hwq.timing.layer_compute_cycles(..., m_tile=...)`` and ``psum_row_accesses`` of the tile.
    """
    from hwq.datatypes import term_slots
    from hwq.quant import quantize_weight_codes
    from hwq.spec import load_spec
    import torch

    from hwq.hw.config import spec_dataflow, spec_psum_elide
    from hwq.timing import layer_compute_cycles, psum_row_accesses, tiles
    from hwq.verify.capture import capture_input, find_gemm_module, load_model, parse_layer_ref
    from hwq.verify.lower import gemm_weight, lower_to_gemm, quantize_activation
    from hwq.verify.precision import fit_group_size, resolve_precision
    from hwq.verify.rtl import tile_m_tile
    from hwq.verify.tile import cut_tile

    ref = parse_layer_ref(layer_ref)
    spec = load_spec(arch)
    batch = int(getattr(spec, "batch", 1)) if batch is None else batch
    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    try:
        flow = spec_dataflow(spec, dataflow)
    except ValueError as err:
        raise UsageError(str(err)) from None
    m_rows = default_m_rows(spec, flow, batch) if m_rows is None else m_rows
    if m_rows < 1:
        raise UsageError(f"activation rows per tile must be >= 1, got {m_rows}")
    prec = resolve_precision(spec, ref.layer, plan)
    recipe, model = load_model(ref.model)
    module = find_gemm_module(model, ref)

    calib = recipe.calibration(batch)
    if batch == 1:
        x = capture_input(model, module, calib[0])
    else:
        x = torch.cat([capture_input(model, module, b) for b in calib])
        if x.shape[0] != batch:
            raise UsageError(f"model {ref.model!r} gave {x.shape[0]} calibration samples for --batch {batch}")
    x_int, exponent = quantize_activation(x, prec.act_bits)
    x_rows = lower_to_gemm(module, x_int).numpy()
    w = gemm_weight(module)
    k_layer, n_layer = int(w[0].numel()), int(w.shape[0])
    group_size = fit_group_size(prec.group_size, k_layer)
    try:
        qw = quantize_weight_codes(w, prec.fmt, prec.bits, group_size=group_size)
    except ValueError as err:
        raise UsageError(f"cannot quantize {ref} as {prec}: {err}") from None

    a = spec.array
    dk, dn = default_tile_shape(a.rows, a.cols, a.lanes, min(group_size, spec.arithmetic.group_size),
                                k_layer, n_layer)
    tile = cut_tile(x_rows, qw, m=m_rows, k=tile_k or dk, n=tile_n or dn, images=batch)
    slots = term_slots(prec.fmt, prec.bits)
    m_tile = tile_m_tile(spec, tile, flow)
    predicted = layer_compute_cycles(tile.m, tile.k, tile.n, rows=a.rows, cols=a.cols, lanes=a.lanes,
                                     term_slots=slots, bits_per_cycle=spec.arithmetic.bits_per_cycle, m_tile=m_tile)
    k_tiles, n_tiles = tiles(tile.k, tile.n, rows=a.rows, cols=a.cols, lanes=a.lanes)
    psums = psum_row_accesses(tile.m, k_tiles, n_tiles, elide=spec_psum_elide(spec))
    return PreparedLayer(ref, spec, prec, group_size, model, recipe, module, x, exponent, x_rows, qw, tile,
                         slots, int(predicted), batch, flow, m_tile, psums)


def _result(p: PreparedLayer, simulator: str, got: np.ndarray, measured: int, wall_s: float,
            with_cost_model: bool, *, psums: tuple[int, int] | None = None) -> LayerCheckResult:
    """Compare one run with the golden model and hwq.timing; ``psums``: the measured o_mem
    ``(reads, writes)`` (None: not measured, not compared)."""
    from hwq.hw.config import spec_psum_elide
    from hwq.timing import tiles

    tile, spec = p.tile, p.spec
    expected = tile.expected()
    n_bad, first = compare_outputs(tile, expected, got)
    cost: dict[str, Any] = {}
    if with_cost_model:
        from hwq.cost import Choice

        prec = p.precision
        cost = cost_model_cycles(p.model, p.recipe, p.ref.layer, spec, Choice(prec.fmt, prec.bits, prec.act_bits),
                                 batch=p.batch, dataflow=p.dataflow)
    a = spec.array
    k_tiles, n_tiles = tiles(tile.k, tile.n, rows=a.rows, cols=a.cols, lanes=a.lanes)
    m_tile = p.m_tile or tile.m
    tiling = {"m_tile": m_tile, "m_tiles": -(-tile.m // m_tile), "k_tiles": k_tiles, "n_tiles": n_tiles}
    accesses = {} if psums is None else {"predicted": list(p.predicted_psums), "measured": [int(v) for v in psums]}
    return LayerCheckResult(
        layer=str(p.ref), arch=spec.name, simulator=simulator,
        precision=p.precision_text, precision_source=p.precision.source,
        array={"rows": a.rows, "cols": a.cols, "lanes": a.lanes, "bits_per_cycle": spec.arithmetic.bits_per_cycle,
               "term_slots": p.term_slots},
        layer_gemm={"m": int(p.x_rows.shape[0]), "k": int(p.x_rows.shape[1]), "n": int(p.qw.codes.shape[0])},
        tile={"m": tile.m, "k": tile.k, "n": tile.n}, act_exponent=p.act_exponent,
        outputs_compared=int(expected.size), mismatches=n_bad, predicted_cycles=p.predicted_cycles,
        measured_cycles=int(measured), first_mismatch=first, cost_model=cost, sim_wall_s=round(wall_s, 3),
        batch=p.batch, dataflow=p.dataflow, psum_elide=spec_psum_elide(spec), tiling=tiling, psum_accesses=accesses)


def run_prepared(prepared: list[PreparedLayer], simulator: str, build_dir: Path | None = None, *,
                 with_cost_model: bool = True) -> list[LayerCheckResult]:
    """Run the tiles of ``prepared`` layers (one arch) in one simulation and compare each with the golden model."""
    from hwq.verify.rtl import run_array_tiles

    flows = {p.dataflow for p in prepared}
    if len(flows) != 1:
        raise ValueError(f"layers of one simulation must share a dataflow, got {sorted(flows)}")
    t0 = time.perf_counter()
    runs = run_array_tiles([p.tile for p in prepared], prepared[0].spec, simulator, build_dir,
                           dataflow=flows.pop())
    wall_s = time.perf_counter() - t0
    return [_result(p, simulator, r.outputs, r.cycles, wall_s, with_cost_model, psums=(r.psum_reads, r.psum_writes))
            for p, r in zip(prepared, runs)]


def check_layers(layer_refs: list[str], arch: str | Path, *, plan: Path | None = None, simulator: str = "icarus",
                 m_rows: int | None = None, build_dir: Path | None = None, with_cost_model: bool = True,
                 batch: int | None = None, dataflow: str | None = None) -> list[LayerCheckResult]:
    """Co-simulate one tile of each layer (``MODEL:LAYER``) on arch ``arch``'s array RTL, in one simulation.

    See :func:`prepare_layer` for the tiles (they must share a group size); ``build_dir``
    holds the simulator build (a temporary directory when None). ``with_cost_model`` also
    runs ``hwq.cost.evaluate`` on each whole layer and compares its compute cycles with
    ``hwq.timing``. ``sim_wall_s`` is the wall time of the whole simulation (build included).
    ``batch`` and ``dataflow``: see :func:`prepare_layer`.
    """
    prepared = [prepare_layer(ref, arch, plan=plan, m_rows=m_rows, batch=batch, dataflow=dataflow)
                for ref in layer_refs]
    return run_prepared(prepared, simulator, build_dir, with_cost_model=with_cost_model)


def check_layer(layer_ref: str, arch: str | Path, *, plan: Path | None = None, simulator: str = "icarus",
                m_rows: int | None = None, build_dir: Path | None = None, with_cost_model: bool = True,
                batch: int | None = None, dataflow: str | None = None) -> LayerCheckResult:
    """:func:`check_layers` for one layer."""
    [result] = check_layers([layer_ref], arch, plan=plan, simulator=simulator, m_rows=m_rows, build_dir=build_dir,
                            with_cost_model=with_cost_model, batch=batch, dataflow=dataflow)
    return result
