"""Per design point: the cost table, the precision ILP under the budget, and the hardware cost.

The model's sensitivity table does not depend on the hardware, so the caller computes it
once (:func:`hwq.codesign.sweep.SweepInputs`) for the union of every point's precision
choices; each worker then only runs the cost model (``hwq.cost.evaluate``), the ILP
(``hwq.search.ilp.solve``) and the hardware-cost estimate for its points.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwq.codesign.space import DesignPoint, point_spec_dict
from hwq.errors import UnsatisfiableError


@dataclass
class SweepInputs:
    """Everything a worker needs, shipped once per worker process.

    Attributes:
        space_name: name of the design space (spec names derive from it).
        base_dict: the base preset as a mapping (``AcceleratorSpec.to_dict()``).
        workload: the model's :class:`hwq.workload.Workload`.
        weight_layers: names of the compute layers with weights (the ILP's layers), in order.
        sensitivity: choice label (``str(Choice)``) -> Omega per weight layer, ``[L]`` (dimensionless).
        allowed: choice label -> per-layer bool mask (the quantizer can represent it); absent: all allowed.
        tie_groups: groups of weight-layer indices that must take the same choice (residual branches).
        keep_first_last_8bit: keep the first and last weight layers at the highest precision.
        budget_pj: energy budget, pJ.
        solver: ILP solver name (``hwq.search.ilp.SOLVERS``).
        cache_dir: folder of the hardware-cost cache (FPGA synthesis results).
    """

    space_name: str
    base_dict: Mapping[str, Any]
    workload: Any
    weight_layers: Sequence[str]
    sensitivity: Mapping[str, np.ndarray]
    budget_pj: float
    allowed: Mapping[str, np.ndarray] = field(default_factory=dict)
    tie_groups: Sequence[Sequence[int]] = ()
    keep_first_last_8bit: bool = False
    solver: str = "cbc"
    cache_dir: str = ".hwq_cache"
    notes: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Hash of the question (base spec, budget, sensitivities, ties, solver): the resume context."""
        h = hashlib.sha1()
        h.update(json.dumps(self.base_dict, sort_keys=True, default=str).encode())
        h.update(f"{self.space_name}|{self.budget_pj!r}|{self.solver}|{sorted(map(sorted, self.tie_groups))}|"
                 f"{self.keep_first_last_8bit}|{list(self.weight_layers)}".encode())
        for label in sorted(self.sensitivity):
            h.update(label.encode())
            h.update(np.ascontiguousarray(self.sensitivity[label], dtype=np.float64).tobytes())
            if label in self.allowed:
                h.update(np.ascontiguousarray(self.allowed[label], dtype=bool).tobytes())
        h.update(repr([(getattr(l, "name", ""), getattr(l, "macs", 0)) for l in self.workload.layers]).encode())
        h.update(code_fingerprint().encode())
        return h.hexdigest()[:16]


#: Modules whose source decides a point's numbers: a record computed by other code is not reused.
CODE_MODULES: tuple[str, ...] = ("hwq.cost", "hwq.workload", "hwq.timing", "hwq.spec", "hwq.datatypes",
                                 "hwq.search.ilp", "hwq.search.problem", "hwq.codesign.sweep",
                                 "hwq.codesign.space", "hwq.codesign.area", "hwq.codesign.fpga_cost")


def code_fingerprint() -> str:
    """Hash of the source files of :data:`CODE_MODULES` (those that exist)."""
    import importlib.util

    h = hashlib.sha1()
    for name in CODE_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            h.update(name.encode())
            h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()[:12]


_INPUTS: SweepInputs | None = None


def init_worker(inputs: SweepInputs) -> None:
    """Process-pool initializer: keep the shared inputs in this worker."""
    global _INPUTS
    _INPUTS = inputs


def point_spec(point: DesignPoint, inputs: SweepInputs | None = None):
    """The validated :class:`hwq.spec.AcceleratorSpec` of ``point``."""
    from hwq.spec import parse_spec

    inputs = inputs or _INPUTS
    assert inputs is not None, "init_worker() was not called"
    return parse_spec(point_spec_dict(inputs.base_dict, point, inputs.space_name), f"point {point.index}")


def hardware_cost(spec, cache_dir: str | Path) -> dict[str, Any]:
    """``hw_cost`` (the Pareto objective), its unit and the details, for either family.

    ASIC: area in mm² (:mod:`hwq.codesign.area`). FPGA: the largest utilisation fraction of
    the device over LUT, FF, DSP and BRAM, from Yosys synthesis (:mod:`hwq.codesign.fpga_cost`).
    """
    if spec.family == "asic":
        from hwq.codesign.area import asic_area

        a = asic_area(spec)
        return {"hw_cost": a.total_mm2, "hw_cost_unit": "mm2",
                "hw_detail": {"pe_um2": a.pe_um2, "pe_array_um2": a.pe_array_um2, "sram_um2": a.sram_um2,
                              "total_um2": a.total_um2}}
    from hwq.codesign.fpga_cost import fpga_resources

    res = fpga_resources(spec, Path(cache_dir))
    return {"hw_cost": res["utilization"], "hw_cost_unit": "device fraction", "hw_detail": res}


def fits_device(hw: Mapping[str, Any]) -> bool:
    """False for an FPGA point whose synthesised array needs more than the whole device."""
    return not (hw.get("hw_cost_unit") == "device fraction" and hw["hw_cost"] > 1.0)


def device_overflow_reason(hw: Mapping[str, Any]) -> str:
    """Which FPGA resources overflow the device, e.g. ``dsp 118% of the device``."""
    util = hw.get("hw_detail", {}).get("utilization_by_resource", {})
    over = ", ".join(f"{k} {v:.0%}" for k, v in util.items() if v > 1.0)
    return f"the synthesised array does not fit the device ({over} of the device)"


def design_fields(spec) -> dict[str, Any]:
    """The record fields that name a point's dataflow, partial sums, accumulators, DRAM and batch.

    ``energy_pj`` of a record is per image and ``latency_us``/``latency_cycles`` per batch of
    ``batch`` images (``energy_per``/``latency_per`` say so in every record).
    """
    acc = spec.accumulators if "accumulate_in_array" in spec.dataflow.modes else None
    return {"batch": int(spec.batch), "dataflow": list(spec.dataflow.modes),
            "partial_sums": spec.dataflow.partial_sums, "accumulator_depth": None if acc is None else int(acc.depth),
            "dram_technology": spec.dram.technology, "dram_pj_per_bit": float(spec.dram.energy_pj_per_bit),
            "energy_per": "image", "latency_per": "batch"}


def plan_dataflows(table, rows: Sequence[int], cols: Sequence[int]) -> dict[str, int]:
    """How many of the layers ``rows`` (at choice columns ``cols``) the mapper runs in each dataflow."""
    from hwq.cost import _dataflow_of

    out: dict[str, int] = {}
    for r, c in zip(rows, cols):
        flow = _dataflow_of(table.mapping_names[int(table.mapping[r, c])])
        out[flow] = out.get(flow, 0) + 1
    return out


def solve_spec(spec, inputs: SweepInputs) -> dict[str, Any]:
    """Cost table + ILP for one accelerator; a dict of totals and the plan.

    As in ``hwq explore``: the ILP decides the layers with weights (``inputs.weight_layers``);
    products without weights (attention) run at the spec's highest-precision choice and their
    cost is a constant part of every plan (``fixed_energy_pj``). Energy and latency totals
    include it. Over budget: ``feasible`` False, the ``reason`` and ``cheapest_energy_pj``.
    Energy is per image, latency per batch of ``spec.batch`` images (:func:`design_fields`).
    """
    from hwq.cost import evaluate
    from hwq.search.ilp import solve
    from hwq.search.problem import Problem, keep_first_last_mask, split_layers

    choices = spec.choices()
    labels = [str(c) for c in choices]
    missing = [lab for lab in labels if lab not in inputs.sensitivity]
    if missing:
        raise KeyError(f"no sensitivity for choices {missing}; compute it for the union of the space's choices")
    table = evaluate(inputs.workload, spec, choices, batch=spec.batch)
    split = split_layers(table, inputs.weight_layers, choices)
    idx, fixed_energy, fixed_latency = split.weight_rows, split.fixed_energy_pj, split.fixed_latency_cycles
    sens = np.stack([np.asarray(inputs.sensitivity[lab], dtype=float) for lab in labels], axis=1)
    n_layers = sens.shape[0]
    allowed = np.stack([np.asarray(inputs.allowed.get(lab, np.ones(n_layers, bool)), dtype=bool)
                        for lab in labels], axis=1)
    if inputs.keep_first_last_8bit:
        keep = keep_first_last_mask(choices)
        for l in (0, n_layers - 1):
            allowed[l] &= keep
    budget = inputs.budget_pj - fixed_energy
    problem = Problem(list(inputs.weight_layers), labels, sens, np.asarray(table.energy_pj)[idx],
                      latency_cycles=np.asarray(table.latency_cycles)[idx],
                      weight_bits=np.asarray(table.weight_bits)[idx], allowed=allowed,
                      tie_groups=[list(g) for g in inputs.tie_groups], energy_budget_pj=max(budget, 1e-9),
                      clock_mhz=spec.clock_mhz)
    cheapest = problem.totals(problem.extreme_assignment("energy_pj"))["energy_pj"] + fixed_energy
    design = design_fields(spec)
    if cheapest > inputs.budget_pj * (1 + 1e-9):
        return {**design, "feasible": False, "cheapest_energy_pj": cheapest, "fixed_energy_pj": fixed_energy,
                "reason": f"the cheapest plan needs {cheapest * 1e-9:.4g} mJ, above the budget "
                          f"{inputs.budget_pj * 1e-9:.4g} mJ"}
    sol = solve(problem, solver=inputs.solver)
    t = sol.totals
    latency = t["latency_cycles"] + fixed_latency
    return {**design, "plan_dataflows": plan_dataflows(table, idx, sol.assignment),
            "energy_pj": t["energy_pj"] + fixed_energy, "latency_cycles": latency,
            "latency_us": latency / spec.clock_mhz, "sensitivity": sol.objective,
            "weight_bits": t.get("weight_bits"), "cheapest_energy_pj": cheapest, "fixed_energy_pj": fixed_energy,
            "plan": [labels[c] for c in sol.assignment], "solver_status": sol.status, "optimal": sol.optimal,
            "feasible": True}


def evaluate_point(point: DesignPoint) -> dict[str, Any]:
    """Worker entry: spec of ``point``, its hardware cost, and the ILP under the budget.

    Over budget -> a record with ``feasible`` False, the ``reason`` and the hardware cost
    (so infeasible points still appear, greyed, in the plot).
    """
    inputs = _INPUTS
    assert inputs is not None, "init_worker() was not called"
    spec = point_spec(point, inputs)
    out: dict[str, Any] = {"spec_name": spec.name, **hardware_cost(spec, inputs.cache_dir)}
    if not fits_device(out):
        return {**out, "feasible": False, "reason": device_overflow_reason(out)}
    try:
        out.update(solve_spec(spec, inputs))
    except UnsatisfiableError as err:
        out.update({"feasible": False, "reason": str(err)})
    return out
