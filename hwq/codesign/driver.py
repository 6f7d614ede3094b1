"""``hwq codesign`` end to end, without the CLI: model -> sensitivity (once) -> sweep -> Pareto -> choice.

:func:`run_codesign` returns a :class:`CodesignResult` and writes, in the output folder,
``results.jsonl`` (one record per point; a rerun skips finished points) and ``summary.json``.
The chosen design's artefacts (spec YAML, Verilog, synthesis, co-simulation) are written by
:mod:`hwq.codesign.artifacts`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwq.codesign.pareto import CHOICE_RULE, choose, pareto_front
from hwq.codesign.runner import run_points
from hwq.codesign.space import DesignSpace, base_spec, expand
from hwq.codesign.sweep import (SweepInputs, device_overflow_reason, evaluate_point, fits_device, hardware_cost,
                                init_worker, solve_spec)
from hwq.errors import UnsatisfiableError

SUMMARY_FILE = "summary.json"
#: Wall times of the last run (the summary holds none: it is the same for the same command).
TIMINGS_FILE = "timings.json"


@dataclass
class CodesignResult:
    """What a co-design run found.

    Attributes:
        records: one dict per design point (see :func:`hwq.codesign.sweep.evaluate_point`), by index.
        front: indices of the Pareto-optimal feasible records.
        chosen: index of the chosen record (None when no point meets the budget).
        presets: one record per shipped preset of the space's family, solved under the same budget.
        best_preset: index into ``presets`` of the best one by the same rule (None if none fits).
        specs: the accelerator spec of every point, by index.
    """

    model: str
    budget_pj: float
    space: DesignSpace
    records: list[dict[str, Any]]
    front: list[int]
    chosen: int | None
    presets: list[dict[str, Any]]
    best_preset: int | None
    specs: list[Any]
    sensitivity_method: str
    sensitivity_seconds: float
    sweep_seconds: float
    out_dir: Path
    workload: Any = None
    weight_layers: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def improvement(self) -> dict[str, float] | None:
        """Chosen vs best preset: ratios preset/chosen for sensitivity, energy, latency (>1: chosen better)."""
        if self.chosen is None or self.best_preset is None:
            return None
        c, p = self.records[self.chosen], self.presets[self.best_preset]
        ratio = lambda k: (p[k] / c[k]) if c[k] else float("inf")  # noqa: E731
        return {"sensitivity_ratio": ratio("sensitivity"), "energy_ratio": ratio("energy_pj"),
                "latency_ratio": ratio("latency_us"), "hw_cost_ratio": ratio("hw_cost")}

    def summary(self) -> dict[str, Any]:
        """JSON-able digest (what ``--json`` prints and ``summary.json`` holds)."""
        slim = lambda r: {k: v for k, v in r.items() if k not in ("plan", "context")}  # noqa: E731
        return {
            "model": self.model, "budget_pj": self.budget_pj, "space": self.space.name, "base": self.space.base,
            "points": len(self.records), "feasible": sum(bool(r.get("feasible")) for r in self.records),
            "choice_rule": CHOICE_RULE, "chosen": None if self.chosen is None else slim(self.records[self.chosen]),
            "chosen_plan": None if self.chosen is None else self.records[self.chosen].get("plan"),
            "pareto": [self.records[i]["index"] for i in self.front],
            "presets": [slim(p) for p in self.presets],
            "best_preset": None if self.best_preset is None else self.presets[self.best_preset]["label"],
            "improvement_over_best_preset": self.improvement(),
            "sensitivity_method": self.sensitivity_method, "energy_per": "image", "latency_per": "batch",
            **without_timings(self.extra),
        }

    def timings(self) -> dict[str, Any]:
        """Wall times of this run in seconds (``timings.json``; ``summary.json`` holds none, so the same
        command gives the same summary.json)."""
        out: dict[str, Any] = {"sensitivity_s": round(self.sensitivity_seconds, 3),
                               "sweep_s": round(self.sweep_seconds, 3)}
        pipe = self.extra.get("pipeline") or {}
        if "seconds" in pipe:
            out["pipeline_s"] = pipe["seconds"]
            out["worker_seconds_per_stage"] = pipe.get("worker_seconds_per_stage")
        for stage in ("synth", "cosim"):
            secs = {k: v["seconds"] for k, v in (self.extra.get(stage) or {}).items()
                    if isinstance(v, dict) and "seconds" in v}
            if secs:
                out[f"{stage}_s_by_point"] = secs
        return out


#: Keys that differ between two runs of the same command (wall times, a temp build folder, a
#: build-cache hit), kept out of summary.json; the times go to timings.json.
_TIME_KEYS = ("seconds", "worker_seconds_per_stage", "compile_s", "predict_s", "build_s", "sim_s", "wall_s",
              "prepare_s", "image_write_s", "sim_cycles_per_s", "build_cached", "build_dir")


def without_timings(value: Any) -> Any:
    """``value`` with every key of :data:`_TIME_KEYS` removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in _TIME_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def _union_choices(specs: Sequence[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for spec in specs:
        for c in spec.choices():
            seen.setdefault(str(c), c)
    return list(seen.values())


def model_inputs(model_name: str, calibration_samples: int | None = None):
    """(recipe, float model, workload, calibration batches, calibration samples) of a registered model.

    As ``hwq explore``: a deterministic initialisation (seed 0) so random-init models hit the
    sensitivity cache, and its default calibration size (2 large images, 16 token sequences, else 64).
    """
    import torch

    from hwq.search.explore import calibration_sample_count
    from hwq.workload import capture
    from models.registry import get_recipe

    recipe = get_recipe(model_name)
    torch.manual_seed(0)
    model = recipe.build()
    model.eval()
    example = recipe.example_input()
    workload = capture(model, example)
    n = calibration_sample_count(example, calibration_samples)
    return recipe, model, workload, list(recipe.calibration(n)), n


def prepare_inputs(model_name: str, space: DesignSpace, specs: Sequence[Any], budget_pj: float, *,
                   method: str = "hessian", solver: str = "cbc", progress: bool = True,
                   calibration_samples: int | None = None, keep_first_last_8bit: bool = False,
                   tie_residual: bool = False, batch: int | None = None) -> tuple[SweepInputs, float]:
    """Sensitivity of the model for every choice any of ``specs`` supports (computed once; cached on disk)."""
    from hwq.errors import UsageError
    from hwq.search.problem import residual_tie_groups, weight_layer_names
    from hwq.search.sensitivity import auto_samples, compute_sensitivity

    recipe, model, workload, batches, n_samples = model_inputs(model_name, calibration_samples)
    names = weight_layer_names(model, workload)
    if not names:
        raise UsageError(f"model {model_name} has no Conv/Linear layers to quantize")
    choices = _union_choices(specs)
    t0 = time.perf_counter()
    sens = compute_sensitivity(model, names, choices, batches, method=method,
                               group_size=specs[0].arithmetic.group_size, samples=auto_samples(model),
                               max_samples=n_samples, progress=progress)
    seconds = time.perf_counter() - t0
    labels = [str(c) for c in choices]
    values = np.where(sens.allowed, np.nan_to_num(sens.values, nan=0.0), 0.0)
    ties = residual_tie_groups(workload, names) if tie_residual else []
    inputs = SweepInputs(
        space_name=space.name, base_dict=base_spec(space, batch).to_dict(), workload=workload, weight_layers=names,
        sensitivity={lab: values[:, i] for i, lab in enumerate(labels)},
        allowed={lab: sens.allowed[:, i] for i, lab in enumerate(labels)},
        budget_pj=budget_pj, tie_groups=ties, keep_first_last_8bit=keep_first_last_8bit, solver=solver,
        cache_dir=os.environ.get("HWQ_CACHE_DIR", ".hwq_cache"))
    from hwq.search.explore import describe_weights

    weights = describe_weights(recipe, None)[0]  # as hwq explore says it (random init without a local copy)
    inputs.notes = {"weights": weights, "calibration_samples": n_samples,
                    "sensitivity": f"{method}, {auto_samples(model)} Hutchinson vectors" if method == "hessian"
                    else method, "layers": len(names)}
    return inputs, seconds


def family_presets(family: str, batch: int | None = None) -> list[Any]:
    """Every shipped preset spec of ``family`` (the fixed designs a co-design result is compared with),
    at ``batch`` images when given (``--batch``), else at each preset's own batch."""
    import dataclasses

    from hwq.spec import PRESETS, load_spec

    out = []
    for name in PRESETS:
        spec = load_spec(name)
        if spec.family == family:
            out.append(spec if batch is None else dataclasses.replace(spec, batch=batch))
    return out


def evaluate_fixed(spec, inputs: SweepInputs) -> dict[str, Any]:
    """One fixed accelerator under the budget: the same record fields as a design point."""
    from hwq.codesign.sweep import design_fields

    rec: dict[str, Any] = {"label": spec.name, "spec_name": spec.name, **design_fields(spec),
                           **hardware_cost(spec, inputs.cache_dir)}
    if not fits_device(rec):
        return {**rec, "feasible": False, "reason": device_overflow_reason(rec)}
    try:
        rec.update(solve_spec(spec, inputs))
    except UnsatisfiableError as err:
        rec.update({"feasible": False, "reason": str(err)})
    return rec


def run_codesign(model_name: str, space: DesignSpace, budget_pj: float, out_dir: Path, *, jobs: int = 1,
                 method: str = "hessian", solver: str = "cbc", progress: bool = True,
                 calibration_samples: int | None = None, keep_first_last_8bit: bool = False,
                 tie_residual: bool = False, batch: int | None = None, executor: Any = None,
                 samples: int | None = None, sampler: str = "lhs", seed: int = 0,
                 stages: Any = None) -> CodesignResult:
    """Sweep ``space`` for ``model_name`` under ``budget_pj`` (pJ per image); write results.jsonl and
    summary.json. ``batch`` (``--batch``) sets the batch of every point and preset (else the base's,
    or the space's ``batch`` axis); energies are per image, latencies per batch.

    ``executor`` (:mod:`hwq.codesign.executors`): run the staged pipeline on it
    (:func:`hwq.codesign.pipeline.run_pipeline`, with ``samples``/``sampler``/``seed`` and the
    later ``stages``); None: the plain parallel map of :func:`hwq.codesign.runner.run_points`
    over every point with ``jobs`` processes."""
    if executor is not None:
        return _run_pipelined(model_name, space, budget_pj, out_dir, executor=executor, method=method,
                              solver=solver, progress=progress, calibration_samples=calibration_samples,
                              keep_first_last_8bit=keep_first_last_8bit, tie_residual=tie_residual, batch=batch,
                              samples=samples, sampler=sampler, seed=seed, stages=stages)
    expanded = expand(space, batch)
    specs = [spec for _, spec in expanded]
    presets = family_presets(specs[0].family, batch)
    inputs, sens_s = prepare_inputs(model_name, space, specs + presets, budget_pj, method=method, solver=solver,
                                    progress=progress, calibration_samples=calibration_samples,
                                    keep_first_last_8bit=keep_first_last_8bit, tie_residual=tie_residual,
                                    batch=batch)
    context = f"{model_name}|{inputs.fingerprint()}"
    t0 = time.perf_counter()
    records = run_points([p for p, _ in expanded], evaluate_point, out_dir, context=context, jobs=jobs,
                         initializer=init_worker, initargs=(inputs,), progress=progress,
                         description=f"codesign {space.name}")
    sweep_s = time.perf_counter() - t0
    preset_recs = [evaluate_fixed(s, inputs) for s in presets]
    result = CodesignResult(model_name, budget_pj, space, records, pareto_front(records), choose(records),
                            preset_recs, choose(preset_recs), specs, method, sens_s, sweep_s, out_dir,
                            workload=inputs.workload, weight_layers=list(inputs.weight_layers),
                            extra={**inputs.notes, "batch_override": batch})
    _write_result(out_dir, result)
    return result


def _run_pipelined(model_name: str, space: DesignSpace, budget_pj: float, out_dir: Path, *, executor: Any,
                   method: str, solver: str, progress: bool, calibration_samples: int | None,
                   keep_first_last_8bit: bool, tie_residual: bool, batch: int | None, samples: int | None,
                   sampler: str, seed: int, stages: Any) -> CodesignResult:
    """:func:`run_codesign` on the staged pipeline; the result's ``extra["pipeline"]`` has the
    per-stage counts, ``extra["synth"]``/``extra["cosim"]`` the later stages' results by point index."""
    from hwq.codesign.pipeline import run_pipeline

    expanded = expand(space, batch)
    specs = [spec for _, spec in expanded]
    presets = family_presets(specs[0].family, batch)
    try:
        inputs, sens_s = prepare_inputs(model_name, space, specs + presets, budget_pj, method=method, solver=solver,
                                        progress=progress, calibration_samples=calibration_samples,
                                        keep_first_last_8bit=keep_first_last_8bit, tie_residual=tie_residual,
                                        batch=batch)
    except BaseException:
        executor.close()
        raise
    context = f"{model_name}|{inputs.fingerprint()}"
    pres = run_pipeline([p for p, _ in expanded], space, inputs, out_dir, context=context, executor=executor,
                        samples=samples, sampler=sampler, seed=seed, stages=stages, progress=progress,
                        description=f"codesign {space.name}")
    records = pres.records
    spec_of = {p.index: sp for p, sp in expanded}
    preset_recs = [evaluate_fixed(s, inputs) for s in presets]
    by_index = {r["key"]: r["index"] for r in records}
    result = CodesignResult(model_name, budget_pj, space, records, pareto_front(records), choose(records),
                            preset_recs, choose(preset_recs), [spec_of[r["index"]] for r in records], method, sens_s,
                            pres.seconds, out_dir, workload=inputs.workload, weight_layers=list(inputs.weight_layers),
                            extra={**inputs.notes, "batch_override": batch, "space_points": len(expanded),
                                   "pipeline": pres.stage_summary(),
                                   "synth": {str(by_index[k]): v for k, v in pres.synth.items() if k in by_index},
                                   "cosim": {str(by_index[k]): v for k, v in pres.cosim.items() if k in by_index}})
    _write_result(out_dir, result)
    return result


def _write_result(out_dir: Path, result: CodesignResult) -> None:
    """``summary.json`` (the same for the same command) and ``timings.json`` (wall times) of a sweep."""
    write_json(out_dir / SUMMARY_FILE, result.summary())
    write_json(out_dir / TIMINGS_FILE, result.timings())


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (:mod:`hwq.atomic`: ``.NAME.hwq-tmp-PID-XXXX``, which the
    next run removes if this one is killed; also the ``.NAME.tmpPID`` files of older versions)."""
    from hwq.atomic import write_text
    from hwq.paths import clean_stale_in

    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_in(path.parent)
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")
