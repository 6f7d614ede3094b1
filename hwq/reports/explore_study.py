"""Does the ILP beat the obvious? ``reports/explore.md``.

For the digits CNN (trained checkpoint, real test data, top-1 accuracy) and MiniLM (real
all-MiniLM-L6-v2 weights, mean cosine between quantized and float sentence embeddings) at
several energy budgets on the bitmod preset, three plans under the same budget:

* the ILP plan (``hwq explore``'s optimum of total Hessian sensitivity),
* the greedy allocator (best sensitivity reduction per extra pJ),
* the best uniform precision that fits (lowest sensitivity among one-choice-for-all plans),

each measured after actually quantizing the model with :func:`hwq.quant.quantize_model`
(weights and input activations; activation scales calibrated on the calibration batches).

Run: ``.venv/bin/python -m hwq.reports.explore_study`` (about a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence


COMMAND = ".venv/bin/python -m hwq.reports.explore_study"
#: Budgets as fractions of the way from the cheapest plan's energy to the most expensive one's.
FRACTIONS: tuple[float, ...] = (0.06, 0.15, 0.3, 0.5)


def plan_dict(problem, assignment: Sequence[int], choices: Sequence[Any], group_sizes: Sequence[int | None]) -> dict:
    """The plan.json ``layers`` form of an assignment (what ``quantize_model`` reads)."""
    return {"layers": [{"name": problem.layer_names[l], "format": choices[c].fmt, "bits": int(choices[c].bits),
                        "act_bits": choices[c].act_bits, "group_size": group_sizes[l]}
                       for l, c in enumerate(assignment)]}


def _quality_digits() -> tuple[Callable[[Any], float], str, Callable[[Any], None]]:
    from hwq.quant import calibrate
    from models.digits_cnn import calibration_batches, evaluate

    def calib(q):
        calibrate(q, calibration_batches(4, 64))

    return (lambda m: evaluate(m)), "top-1 accuracy (540 test images)", calib


def _quality_minilm() -> tuple[Callable[[Any], float], str, Callable[[Any], None]]:
    from hwq.quant import calibrate
    from models.minilm import SENTENCES, embed, embedding_cosine, load_minilm
    from models.registry import get_recipe

    ref: list = []  # float embeddings, computed on first use
    batches = get_recipe("minilm").calibration(64)

    def calib(q):
        calibrate(q, batches)

    def cosine(m) -> float:
        if not ref:
            ref.append(embed(load_minilm(), SENTENCES))
        return embedding_cosine(m, ref[0], SENTENCES)

    return cosine, \
        f"mean cosine to float embeddings ({len(SENTENCES)} sentences)", calib


#: Calibration seeds (activation-scale calibration subsets) the refined plans are measured under.
SEEDS: tuple[int, ...] = (0, 1, 2)
#: ``--refine K`` per model (K best ILP plans and up to K local moves).
REFINE_K = {"digits_cnn": 4, "minilm": 3}
#: Plans sampled across the energy range for the proxy check.
PROXY_PLANS = 50
#: Sensitivity methods compared by the proxy check: label -> (--sensitivity, --hessian-estimator).
PROXY_METHODS = {"digits_cnn": {"hessian (Gauss-Newton trace)": ("hessian", "gn"),
                                "hessian (Hutchinson HVP trace)": ("hessian", "hvp"), "kl": ("kl", "auto")},
                 "minilm": {"hessian (Gauss-Newton trace)": ("hessian", "gn"), "kl": ("kl", "auto")}}
#: QAT steps of the fine-tuning rows per model (MiniLM: about 4.5 CPU-s per step on 64
#: sentences, so 20 steps are about 1.5 CPU-minutes per plan, sized for a shared 2-core
#: machine); FINETUNE_FRACTIONS: the budgets (fractions of FRACTIONS) whose refined and best
#: uniform plans are fine-tuned.
FINETUNE_STEPS = {"digits_cnn": 150, "minilm": 20}
FINETUNE_FRACTIONS = (0.06, 0.15)


def study_model(model_name: str, fractions: Sequence[float] = FRACTIONS, arch: str = "bitmod",
                seeds: Sequence[int] = SEEDS, refine_k: int | None = None, proxy_plans: int = PROXY_PLANS,
                finetune_steps: int | None = None, checkpoint: Callable[[dict], None] | None = None,
                proxy: bool = True, previous: Sequence[dict] = (), proxy_methods: Sequence[str] | None = None,
                proxy_part: tuple[int, int] | None = None, threads: int = 2) -> dict:
    """Plans and measured quality for ``model_name`` at every budget fraction.

    ``finetune_steps``: QAT steps of the fine-tuning rows (default :data:`FINETUNE_STEPS` of the
    model; 0 skips them). ``previous``: results of earlier runs of this study (``--save-json``
    or ``reports/explore.json`` entries, any model) to resume from: budget rows, the proxy check
    and the fine-tuning rows they hold for this model are kept instead of measured again (see
    :func:`previous_parts`); proxy methods they lack are added on the same sampled plans.
    ``proxy_methods``: labels of :data:`PROXY_METHODS` the proxy check scores (default all; empty:
    only measure the sampled plans, for a later ``--reuse`` run to score). ``proxy_part = (i, k)``:
    measure only every k-th sampled plan from i (several processes; ``--reuse`` joins them).
    ``threads``: torch CPU threads (1 is faster on a loaded machine).
    """
    import torch

    from hwq.quant import quantize_model
    from hwq.search.explore import ExploreRequest, explore
    from hwq.search.greedy import best_uniform, greedy
    from hwq.search.pareto import energy_range
    from hwq.search.refine import default_metric, refine, share_quantized_weights
    from hwq.search.sensitivity import layer_group_size
    from hwq.workload import capture
    from models.registry import get_recipe

    torch.set_num_threads(threads)
    quality, metric, calib = _quality_digits() if model_name == "digits_cnn" else _quality_minilm()
    recipe = get_recipe(model_name)
    t0 = time.perf_counter()
    # One explore run computes (or loads from the cache) the sensitivity and the cost table.
    lo_probe = explore(ExploreRequest(model=model_name, budget_j=1.0, budget_text="1J", arch=arch, pareto=0,
                                      write=False))
    base = lo_probe.problem
    choices = lo_probe.choices
    model = lo_probe.model
    offset = base.offsets.get("energy_pj", 0.0)
    workload = capture(model, recipe.example_input())
    k_of = {l.name: l.k for l in workload.layers}
    from hwq.spec import load_spec

    gs = load_spec(arch).arithmetic.group_size
    group_sizes = [layer_group_size(k_of[n], gs) for n in base.layer_names]
    lo, hi = energy_range(base)
    batches = recipe.calibration(64)
    k = refine_k or REFINE_K.get(model_name, 3)
    steps = FINETUNE_STEPS.get(model_name, 0) if finetune_steps is None else finetune_steps
    prev = previous_parts(previous, model_name, arch=arch, sensitivity=lo_probe.plan["inputs"]["sensitivity"],
                          layers=len(base.layer_names), seeds=seeds, refine_k=k)
    fp_quality = prev["float_quality"] if prev["float_quality"] is not None else quality(model)
    built: dict = {}

    def metrics() -> dict:  # refinement metric per seed, built when something is measured
        if not built:
            built.update({s: default_metric(model_name, model, batches, seed=s) for s in seeds})
        return built
    same_metric = model_name == "minilm"  # the reported metric is the calibration metric itself
    wcache: dict = {}  # quantized weights per (layer, format, bits, group): shared by every plan measured
    rows: list = []

    def result(proxy_out=None, ft=()) -> dict:
        return {"model": model_name, "metric": metric, "float_quality": fp_quality, "arch": arch,
                "weights": lo_probe.plan["inputs"]["weights"], "calibration": lo_probe.plan["inputs"]["calibration"],
                "sensitivity": lo_probe.plan["inputs"]["sensitivity"], "layers": len(base.layer_names),
                "refine_k": k, "refine_metric": prev["refine_metric"] or metrics()[seeds[0]].description,
                "seeds": list(seeds),
                "energy_range_pj": [lo + offset, hi + offset], "rows": sorted(rows, key=lambda r: r["fraction"]),
                "proxy": proxy_out, "finetune": list(ft), "reused": prev["reused"],
                "seconds": time.perf_counter() - t0 + prev["seconds"]}

    for f in fractions:
        old = next((row for row in prev["rows"] if abs(row["fraction"] - f) < 1e-9), None)
        if old is not None:
            rows.append(old)
            continue
        budget = lo + f * (hi - lo)
        p = copy.copy(base)
        p.energy_budget_pj = budget
        g = greedy(p).assignment
        bu = best_uniform(p)
        row = {"fraction": f, "budget_pj": budget + offset, "plans": {}, "seeds": {}}
        for s in seeds:
            test_q: dict[tuple, float] = {}

            def evaluate(a, s=s, test_q=test_q, p=p):
                q = quantize_model(model, plan_dict(p, a, choices, group_sizes))
                share_quantized_weights(q, wcache)
                metrics()[s].calibrate(q)
                with torch.no_grad():
                    score = float(metrics()[s].score(q))
                    test_q[tuple(a)] = score if same_metric else float(quality(q))
                return score

            r = refine(p, evaluate, k, extra=[("greedy", g), ("best uniform", bu[1] if bu else None)])
            named = {"ILP": r.by_origin("ilp#1"), "greedy": r.by_origin("greedy"),
                     "best uniform": r.by_origin("best uniform"),
                     "refined": next(c for c in r.candidates if c.assignment == r.assignment)}
            row["seeds"][str(s)] = {name: None if c is None else {"calib_score": c.score,
                                                               "quality": test_q[tuple(c.assignment)],
                                                               "origin": c.origin}
                               for name, c in named.items()}
            row["seeds"][str(s)]["evaluated"] = len(r.candidates)
            if s == seeds[0]:
                for name, c in named.items():
                    if c is None:
                        row["plans"][name] = None
                        continue
                    t = p.totals(c.assignment)
                    row["plans"][name] = {"energy_pj": t["energy_pj"] + offset, "sensitivity": t["sensitivity"],
                                          "quality": test_q[tuple(c.assignment)], "calib_score": c.score,
                                          "origin": c.origin, "assignment": list(c.assignment),
                                          "choice": base.choice_labels[bu[0]] if name == "best uniform" else None,
                                          "mix": _mix([base.choice_labels[x] for x in c.assignment])}
        rows.append(row)
        print(f"{model_name}: budget {budget + offset:.4g} pJ: " + ", ".join(
            f"{n} {v['quality']:.4f}" for n, v in row["plans"].items() if v), flush=True)
        if checkpoint:
            checkpoint(result())
    if prev["proxy"] and None not in prev["proxy"]["measured"]:
        proxy = _add_proxy_methods(prev["proxy"], model_name, base, arch, offset, only=proxy_methods)
    elif (proxy and proxy_plans) or prev["proxy"]:
        proxy = _proxy_check(model_name, model, base, choices, group_sizes, quality, metrics()[seeds[0]],
                             same_metric, proxy_plans, arch, offset, wcache, proxy_methods, part=proxy_part,
                             partial=prev["proxy"], on_plan=(lambda px: checkpoint(result(px))) if checkpoint
                             else None)
    else:
        proxy = None
    if checkpoint:
        checkpoint(result(proxy))
    ft = prev["finetune"] or (_finetune_rows(model_name, model, rows, base, choices, group_sizes, steps, quality,
                                             on_row=(lambda done: checkpoint(result(proxy, done))) if checkpoint
                                             else None) if steps else [])
    return result(proxy, ft)


def previous_parts(previous: Sequence[dict], model_name: str, *, arch: str, sensitivity: str, layers: int,
                   seeds: Sequence[int], refine_k: int) -> dict:
    """What earlier results hold for ``model_name``: ``rows`` (first run wins per budget fraction),
    ``proxy`` (the first with measurements; incomplete parts of one check are joined),
    ``finetune`` (the first non-empty), ``seconds`` (their study times summed, s), ``reused``
    (labels of the parts taken), ``float_quality`` and ``refine_metric`` (as they recorded them).

    Raises :class:`hwq.errors.UsageError` when an earlier run of this model used another preset,
    sensitivity, layer count, seeds or refine K (its numbers would not belong in one report).
    """
    from hwq.errors import UsageError

    out: dict = {"rows": [], "proxy": None, "finetune": [], "seconds": 0.0, "reused": [], "float_quality": None,
                 "refine_metric": None}
    for r in previous:
        if r.get("model") != model_name:
            continue
        def check(want: dict) -> None:
            bad = [f"{key} {r.get(key)!r} (this run: {v!r})" for key, v in want.items() if r.get(key) != v]
            if bad:
                raise UsageError(f"--reuse: an earlier {model_name} run differs in " + "; ".join(bad)
                                 + "; rerun without --reuse or with the same options")

        check({"arch": arch, "sensitivity": sensitivity, "layers": layers})
        if r.get("rows"):  # budget rows hold every seed's refinement
            check({"seeds": list(seeds), "refine_k": refine_k})
        if (r.get("proxy") or {}).get("measured") and r.get("seeds", [None])[0] != seeds[0]:
            raise UsageError(f"--reuse: an earlier {model_name} proxy check was measured under calibration seed "
                             f"{r['seeds'][0]}, this run's first seed is {seeds[0]}")
        used = False
        if out["float_quality"] is None and r.get("float_quality") is not None:
            out["float_quality"] = r["float_quality"]
        if r.get("rows") and out["refine_metric"] is None:
            out["refine_metric"] = r.get("refine_metric")
        for row in r.get("rows", []):
            if not any(abs(row["fraction"] - o["fraction"]) < 1e-9 for o in out["rows"]):
                out["rows"].append(row)
                out["reused"].append(f"budget fraction {row['fraction']:g}")
                used = True
        if (r.get("proxy") or {}).get("measured"):
            if out["proxy"] is None:
                out["proxy"] = copy.deepcopy(r["proxy"])
                out["reused"].append("proxy check")
                used = True
            elif None in out["proxy"]["measured"]:  # parts of one check (--proxy-part): joined
                joined = _join_proxies(out["proxy"], r["proxy"])
                used = joined["measured"] != out["proxy"]["measured"]
                out["proxy"] = joined
        if not out["finetune"] and r.get("finetune"):
            out["finetune"] = list(r["finetune"])
            out["reused"].append("fine-tuning rows")
            used = True
        if used:
            out["seconds"] += float(r.get("seconds", 0.0))
    return out


def _proxy_check(model_name, model, base, choices, group_sizes, quality, metric0, same_metric, n, arch,
                 offset, wcache, only: Sequence[str] | None = None, part: tuple[int, int] | None = None,
                 partial: dict | None = None, on_plan: Callable[[dict], None] | None = None) -> dict:
    """Spearman correlation between predicted sum of Omega (per method) and the measured quality.

    ``partial``: an earlier, incomplete check of the same plans (``measured`` holds None where a
    plan was not measured): only the missing plans are measured. ``part = (i, k)``: measure only
    plans whose index is ``i`` mod ``k`` (for several processes; ``--reuse`` joins the parts).
    An incomplete result has no ``methods``; ``on_plan`` gets the result after every plan.
    """
    import torch

    from hwq.quant import quantize_model
    from hwq.search.proxy import sample_plans, spearman
    from hwq.search.refine import share_quantized_weights

    t0 = time.perf_counter()
    methods = PROXY_METHODS.get(model_name, {})
    if only is not None:
        unknown = sorted(set(only) - set(methods))
        if unknown:
            from hwq.errors import UsageError

            raise UsageError(f"--proxy-methods: no method {unknown[0]!r} for {model_name}; choose from "
                             + ", ".join(repr(k) for k in methods))
        methods = {k: v for k, v in methods.items() if k in only}
    plans = sample_plans(base, partial["plans"] if partial else n, seed=0)
    energy = _plan_energies(base, plans, offset)
    if partial:
        _check_same_plans(partial, plans, energy)
    measured: list = list(partial["measured"]) if partial else [None] * len(plans)
    out = {"plans": len(plans), "methods": {}, "energy_pj": energy, "measured": measured,
           "seconds": (partial or {}).get("seconds", 0.0)}
    for i, a in enumerate(plans):
        if measured[i] is not None or (part and i % part[1] != part[0]):
            continue
        q = quantize_model(model, plan_dict(base, a, choices, group_sizes))
        share_quantized_weights(q, wcache)
        metric0.calibrate(q)
        with torch.no_grad():
            measured[i] = float(metric0.score(q)) if same_metric else float(quality(q))
        if on_plan:
            on_plan(dict(out, seconds=out["seconds"] + time.perf_counter() - t0))
    out["seconds"] += time.perf_counter() - t0
    if any(m is None for m in measured):
        print(f"{model_name}: proxy check: {sum(m is not None for m in measured)}/{len(plans)} plans measured "
              "(join the parts with --reuse)", flush=True)
        return out
    for label, S in _method_sensitivities(model_name, base, arch, methods).items():
        out["methods"][label] = _method_stats(S, plans, energy, measured)
    rho_e, pv_e = spearman(energy, measured)
    out["energy_baseline"] = {"spearman": rho_e, "p_value": pv_e}
    out["seconds"] = (partial or {}).get("seconds", 0.0) + time.perf_counter() - t0
    print(f"{model_name}: proxy check on {len(plans)} plans: " + ", ".join(
        f"{k} {v['spearman']:.3f}" for k, v in out["methods"].items()) + f", energy {rho_e:.3f}", flush=True)
    return out


def _check_same_plans(proxy: dict, plans: Sequence[Sequence[int]], energy: Sequence[float]) -> None:
    """Refuse a saved proxy check whose plans are not the ones ``sample_plans`` draws now."""
    from hwq.errors import UsageError

    if len(plans) != proxy["plans"] or any(abs(e - o) > 1e-6 * max(1.0, abs(o))
                                           for e, o in zip(energy, proxy["energy_pj"])):
        raise UsageError("--reuse: the saved proxy check's plans are not the ones sample_plans draws now "
                         "(cost model or choices changed); rerun the proxy check without --reuse")


def _join_proxies(a: dict, b: dict) -> dict:
    """Two checks of the same plans, measured values of ``a`` first, gaps filled from ``b``."""
    from hwq.errors import UsageError

    if a["plans"] != b["plans"] or any(abs(x - y) > 1e-6 * max(1.0, abs(y)) for x, y in zip(a["energy_pj"],
                                                                                            b["energy_pj"])):
        raise UsageError("--reuse: two saved proxy checks of this model sampled different plans")
    out = copy.deepcopy(a)
    out["measured"] = [x if x is not None else y for x, y in zip(a["measured"], b["measured"])]
    if out["measured"] != a["measured"]:  # methods of an incomplete check would be stale: scored again
        out["methods"] = {}
        out.pop("energy_baseline", None)
        out["seconds"] = a.get("seconds", 0.0) + b.get("seconds", 0.0)
    return out


def _method_sensitivities(model_name: str, base, arch: str, methods: dict) -> dict:
    """Omega tables (layers x choices) per proxy method label, from ``hwq explore``'s sensitivity."""
    from hwq.search.explore import ExploreRequest, explore

    sens = {}
    for label, (method, est) in methods.items():
        r = explore(ExploreRequest(model=model_name, budget_j=1.0, budget_text="1J", arch=arch, pareto=0, write=False,
                                   sensitivity=method, hessian_estimator=est))
        assert r.problem.layer_names == base.layer_names and r.problem.choice_labels == base.choice_labels
        sens[label] = r.problem.sensitivity
    return sens


def _plan_energies(base, plans: Sequence[Sequence[int]], offset: float) -> list[float]:
    """Energy of each plan, pJ (the problem's per-layer energies plus its fixed offset)."""
    return [float(sum(base.energy_pj[l, a[l]] for l in range(len(base.layer_names)))) + offset for a in plans]


def _method_stats(S, plans: Sequence[Sequence[int]], energy: Sequence[float], measured: Sequence[float]) -> dict:
    """Spearman of minus the predicted sum of Omega (table ``S``) against ``measured``, on all
    plans and on the cheaper half by energy."""
    from hwq.search.proxy import spearman

    total = [float(sum(S[l, a[l]] for l in range(len(a)))) for a in plans]
    rho, pv = spearman([-t for t in total], measured)
    lo_half = [i for i, e in enumerate(energy) if e <= sorted(energy)[len(energy) // 2]]
    rho_lo, _ = spearman([-total[i] for i in lo_half], [measured[i] for i in lo_half])
    return {"spearman": rho, "p_value": pv, "spearman_cheaper_half": rho_lo, "totals": total}


def _add_proxy_methods(proxy: dict, model_name: str, base, arch: str, offset: float,
                       only: Sequence[str] | None = None) -> dict:
    """An earlier proxy check plus the :data:`PROXY_METHODS` it lacks, scored on the same plans.

    The plans are drawn again (``sample_plans`` is deterministic) and must have the saved
    energies; only the new methods' sensitivities are computed, nothing is measured again.
    ``only``: add just these labels (default every missing one).
    """
    from hwq.search.proxy import sample_plans, spearman

    missing = {k: v for k, v in PROXY_METHODS.get(model_name, {}).items()
               if k not in proxy["methods"] and (only is None or k in only)}
    if not missing and "energy_baseline" in proxy:
        return proxy
    t0 = time.perf_counter()
    plans = sample_plans(base, proxy["plans"], seed=0)
    energy = _plan_energies(base, plans, offset)
    _check_same_plans(proxy, plans, energy)
    if "energy_baseline" not in proxy:
        rho_e, pv_e = spearman(energy, proxy["measured"])
        proxy["energy_baseline"] = {"spearman": rho_e, "p_value": pv_e}
    for label, S in _method_sensitivities(model_name, base, arch, missing).items():
        proxy["methods"][label] = _method_stats(S, plans, energy, proxy["measured"])
        print(f"{model_name}: proxy check, added {label}: {proxy['methods'][label]['spearman']:.3f}", flush=True)
    proxy["seconds"] = proxy.get("seconds", 0.0) + time.perf_counter() - t0
    return proxy


def _finetune_rows(model_name, model, rows, base, choices, group_sizes, steps, quality,
                   on_row: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """QAT with distillation (hwq finetune's library call) of the refined and best uniform plans
    at the :data:`FINETUNE_FRACTIONS` budgets, with ``hwq finetune``'s default learning rate and
    calibration samples for the model; before/after measured by ``quality`` (and, for MiniLM,
    on the sentences not fine-tuned on). ``on_row`` gets the rows so far after each plan."""
    import torch

    from hwq.quant import calibrate, quantize_model
    from hwq.quant.finetune import default_calib_samples, default_lr, finetune
    from models.registry import get_recipe

    n = default_calib_samples(model_name)
    lr = default_lr(model_name)
    batches = list(get_recipe(model_name).calibration(n))
    held_out = _held_out_quality(model_name, n)
    out = []
    for row in rows:
        if not any(abs(row["fraction"] - f) < 1e-9 for f in FINETUNE_FRACTIONS):
            continue
        for name in ("refined", "best uniform"):
            pl = row["plans"].get(name)
            if pl is None:
                continue
            plan = plan_dict(base, pl["assignment"], choices, group_sizes)
            ptq = quantize_model(model, plan)
            calibrate(ptq, batches)
            with torch.no_grad():
                before = float(quality(ptq))
                before_h = float(held_out[0](ptq)) if held_out else None
            res = finetune(model, plan, batches, steps=steps, lr=lr, device="auto")
            with torch.no_grad():
                after = float(quality(res.model))
                after_h = float(held_out[0](res.model)) if held_out else None
            out.append({"budget_pj": row["budget_pj"], "plan": name, "mix": pl["mix"], "before": before,
                        "after": after, "held_out": held_out[1] if held_out else None, "before_held_out": before_h,
                        "after_held_out": after_h, "steps": steps, "lr": lr, "calib_samples": n,
                        "loss_first": res.losses[0] if res.losses else None,
                        "loss_last": res.losses[-1] if res.losses else None,
                        "device": res.device, "seconds": res.seconds})
            print(f"{model_name}: finetune {name} at {row['budget_pj']:.4g} pJ: {before:.4f} -> {after:.4f} "
                  f"({res.seconds:.0f} s on {res.device})", flush=True)
            if on_row:
                on_row(list(out))
    return out


def _held_out_quality(model_name: str, n_train: int) -> tuple[Callable[[Any], float], str] | None:
    """MiniLM: mean cosine to the float embeddings on the sentences after the first ``n_train``
    (the fine-tuning batches hold the first ones), with its description; other models: None
    (digits' quality column is the held-out test split already)."""
    if model_name != "minilm":
        return None
    from models.minilm import SENTENCES, embed, embedding_cosine, load_minilm

    rest = SENTENCES[n_train:]
    if not rest:
        return None
    ref = embed(load_minilm(), rest)
    return (lambda m: embedding_cosine(m, ref, rest)), f"{len(rest)} sentences not fine-tuned on"


def _mix(labels: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _stats(v: Sequence[float]) -> str:
    import statistics

    if len(v) < 2:
        return f"{v[0]:+.4f}" if v else "-"
    return f"{statistics.mean(v):+.4f} ± {statistics.stdev(v):.4f}"


#: What the fine-tuning samples are, per model (the rows' ``calib_samples`` counts them).
_FINETUNE_DATA = {"digits_cnn": "calibration (training) images",
                  "minilm": "calibration sentences (the first ones of the evaluation sentences)"}


def _finetune_markdown(r: dict) -> list[str]:
    """The fine-tuning table of one model's results."""
    from hwq.quant.finetune import default_calib_samples, default_lr
    from hwq.search.units import format_si

    fts = r["finetune"]
    f0 = fts[0]
    lr = f0.get("lr", default_lr(r["model"]))  # rows written before lr was recorded used the default
    n = f0.get("calib_samples", default_calib_samples(r["model"]))
    held = f0.get("held_out")
    devices = sorted({f["device"] for f in fts})
    lines = [f"Quantization-aware fine-tuning (`hwq finetune`'s library call `hwq.quant.finetune.finetune`: "
             f"{f0['steps']} Adam steps, lr {lr:g}, distillation from the float model (logits: KL with T = 2; "
             f"hidden states: MSE normalised by the float output's mean square) on {n} "
             f"{_FINETUNE_DATA.get(r['model'], 'calibration samples')}, activation scales calibrated on them first; "
             "quality = the quality column's metric" + (f"; held-out = the same metric on the {held}" if held else "")
             + f"; device {', '.join(devices)}" + (" (no CUDA device was visible to the run)" if devices == ["cpu"]
                                                   else "") + "):", ""]
    head = "| budget | plan | precisions | before (PTQ) | after QAT | change |"
    rule = "| --- | --- | --- | --- | --- | --- |"
    if held:
        head += " held-out before | held-out after | held-out change |"
        rule += " --- | --- | --- |"
    lines += [head + " device | seconds |", rule + " --- | --- |"]
    for f in fts:
        line = (f"| {format_si(f['budget_pj'] * 1e-12, 'J')} | {f['plan']} | {f['mix']} | {f['before']:.4f} | "
                f"{f['after']:.4f} | {f['after'] - f['before']:+.4f} |")
        if held:
            line += (f" {f['before_held_out']:.4f} | {f['after_held_out']:.4f} | "
                     f"{f['after_held_out'] - f['before_held_out']:+.4f} |")
        lines.append(line + f" {f['device']} | {f['seconds']:.0f} |")
    done = {(round(f["budget_pj"]), f["plan"]) for f in fts}
    missing = [f"{name} at {format_si(row['budget_pj'] * 1e-12, 'J')}" for row in r.get("rows", [])
               if any(abs(row["fraction"] - x) < 1e-9 for x in FINETUNE_FRACTIONS)
               for name in ("refined", "best uniform")
               if row["plans"].get(name) and (round(row["budget_pj"]), name) not in done]
    if missing:
        lines += ["", f"**Not fine-tuned in this regeneration** (stopped for time): {', '.join(missing)}."]
    return lines + [""]


def _reused_text(labels: Sequence[str]) -> str:
    """``previous_parts``' labels, the budget fractions in one phrase."""
    fr = [lab.split()[-1] for lab in labels if lab.startswith("budget fraction ")]
    rest = [lab for lab in labels if not lab.startswith("budget fraction ")]
    return ", ".join(([f"the budgets at fractions {', '.join(fr)}"] if fr else []) + rest)


def _markdown(results: Sequence[dict]) -> str:
    from hwq.search.units import format_si

    lines = ["# Does the ILP beat the obvious? And does refinement beat the ILP?", "",
             f"Regenerate with: `{COMMAND}`", "",
             "Plans under the same energy budget on the `bitmod` preset, each measured after quantizing the model "
             "with `hwq.quant.quantize_model` (weights and input activations; activation scales calibrated on "
             "calibration data): the ILP optimum of `hwq explore` (least predicted sum of Omega), the greedy "
             "allocator (best sensitivity reduction per extra pJ, from the cheapest plan), the best uniform "
             "precision that fits, and the plan of `hwq explore --refine K` (`hwq.search.refine`): the best "
             "*measured* of the K best ILP plans (no-good cuts), greedy, best uniform and up to K local moves "
             "(one-layer changes and one-up/one-down swaps within the budget), scored on the real metric with "
             "the calibration data. Budgets are placed at fractions of the way from the cheapest plan's energy "
             "to the most expensive plan's. Every number below was measured by this generator: by the run that "
             "wrote this file, or by the earlier runs it resumed from (`--reuse`, named per model).", ""]
    for r in results:
        seeds = r["seeds"]
        lines += [f"## {r['model']}", "",
                  f"- quality metric: {r['metric']}; float model: **{r['float_quality']:.4f}**",
                  f"- weights: {r['weights']}; calibration: {r['calibration']}",
                  f"- sensitivity: {r['sensitivity']}; {r['layers']} quantized layers",
                  f"- refinement: `--refine {r['refine_k']}`; measured on: {r['refine_metric']}",
                  f"- energy range over plans: {format_si(r['energy_range_pj'][0] * 1e-12, 'J')} .. "
                  f"{format_si(r['energy_range_pj'][1] * 1e-12, 'J')}; study time {r['seconds']:.0f} s"
                  + (" (summed over the runs this one resumed from with `--reuse`; from them: "
                     f"{_reused_text(r['reused'])})" if r.get("reused") else ""), "",
                  f"Calibration seed {seeds[0]}:", "",
                  "| budget | plan | energy | total sensitivity | refine score (calibration data) | quality | precisions |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in r["rows"]:
            b = format_si(row["budget_pj"] * 1e-12, "J")
            for name in ("ILP", "greedy", "best uniform", "refined"):
                pl = row["plans"].get(name)
                if pl is None:
                    lines.append(f"| {b} | {name} | no uniform precision fits | | | | |")
                    continue
                label = f"**refined** ({pl['origin']})" if name == "refined" else name
                lines.append(f"| {b} | {label} | {format_si(pl['energy_pj'] * 1e-12, 'J')} | {pl['sensitivity']:.4g} | "
                             f"{pl['calib_score']:.4f} | {pl['quality']:.4f} | {pl['mix']} |")
        lines.append("")
        n = len(r["rows"])
        for key, what in (("calib_score", "the refinement's own metric on calibration data (by construction)"),
                          ("quality", "the quality column")):
            counts = {}
            for other in ("ILP", "greedy", "best uniform"):
                counts[other] = sum(1 for row in r["rows"] for s in seeds
                                    if row["seeds"][str(s)].get(other) is None
                                    or row["seeds"][str(s)]["refined"][key] >= row["seeds"][str(s)][other][key] - 1e-12)
            lines.append(f"- Refined >= ILP at {counts['ILP']}/{n * len(seeds)}, >= greedy at {counts['greedy']}/"
                         f"{n * len(seeds)}, >= best uniform at {counts['best uniform']}/{n * len(seeds)} "
                         f"(budget, seed) pairs on {what}.")
        ilp_u = sum(1 for row in r["rows"] if row["plans"].get("best uniform") is None
                    or row["plans"]["ILP"]["quality"] >= row["plans"]["best uniform"]["quality"])
        ilp_g = sum(1 for row in r["rows"] if row["plans"]["ILP"]["quality"] >= row["plans"]["greedy"]["quality"])
        lines += [f"- ILP alone (seed {seeds[0]}): quality >= best uniform at {ilp_u}/{n}, >= greedy at {ilp_g}/{n} budgets.",
                  "", f"Margins on the quality column over calibration seeds {', '.join(map(str, seeds))} "
                  "(mean ± sample standard deviation; the seed picks the calibration samples that set the "
                  "activation scales, for every plan alike):", "",
                  "| budget | refined - best uniform | refined - ILP | refined - greedy | per seed: refined / best uniform | plans measured per seed |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for row in r["rows"]:
            b = format_si(row["budget_pj"] * 1e-12, "J")
            d = {o: [row["seeds"][str(s)]["refined"]["quality"] - row["seeds"][str(s)][o]["quality"] for s in seeds
                     if row["seeds"][str(s)].get(o)] for o in ("best uniform", "ILP", "greedy")}
            per = "; ".join(f"{row['seeds'][str(s)]['refined']['quality']:.4f} / "
                            + (f"{row['seeds'][str(s)]['best uniform']['quality']:.4f}" if row['seeds'][str(s)].get('best uniform') else "-")
                            for s in seeds)
            lines.append(f"| {b} | {_stats(d['best uniform'])} | {_stats(d['ILP'])} | {_stats(d['greedy'])} | {per} | "
                         f"{', '.join(str(row['seeds'][str(s)]['evaluated']) for s in seeds)} |")
        px = r.get("proxy") or {}
        missing = [f for f in FRACTIONS if not any(abs(row["fraction"] - f) < 1e-9 for row in r["rows"])]
        if missing:
            lines += ["", f"**Not measured in this regeneration:** the budgets at fractions "
                      f"{', '.join(f'{f:g}' for f in missing)} of the energy range (the run was stopped for time; "
                      "the rows above are complete for the budgets they show)."]
        if not px.get("methods"):
            lines += ["", "**Proxy check: not run for this model in this regeneration** (stopped for time)."]
        if px.get("methods"):
            lines += ["", f"Proxy check: {px['plans']} plans sampled across the whole energy range "
                      "(`hwq.search.proxy.sample_plans`: a stratified target energy per plan, random-order upgrades "
                      f"from the cheapest plan under it), each measured (quality column, calibration seed {seeds[0]}). "
                      "Spearman rank correlation between minus the predicted sum of Omega and the measured quality "
                      "(1 = the proxy orders the plans exactly as measured):", "",
                      "| proxy | Spearman rho | p-value | rho on the cheaper half of the plans |",
                      "| --- | --- | --- | --- |"]
            for label, m in px["methods"].items():
                lines.append(f"| -sum Omega, {label} | {m['spearman']:.3f} | {m['p_value']:.2g} | "
                             f"{m['spearman_cheaper_half']:.3f} |")
            e = px["energy_baseline"]
            lines.append(f"| plan energy (baseline: more energy = better) | {e['spearman']:.3f} | {e['p_value']:.2g} | |")
            unscored = [k for k in PROXY_METHODS.get(r["model"], {}) if k not in px["methods"]]
            if unscored:
                lines += ["", f"**Not scored in this regeneration:** {', '.join(unscored)} (its sensitivity was "
                          "not computed in time; rerun with `--reuse reports/explore.json` to add it on the same "
                          "measured plans)."]
            lines.append("")
        if r.get("finetune"):
            lines += _finetune_markdown(r)
        elif FINETUNE_STEPS.get(r["model"]):
            lines += ["**Fine-tuning: not run for this model in this regeneration** (stopped for time).", ""]
        lines.append("")
    lines += ["## Reading it", "",
              "The ILP minimises the *predicted* loss increase (sum of Omega); the quality columns are measured "
              "after quantization, so a lower total sensitivity need not give a higher measured quality (the "
              "second-order model ignores interactions between layers, and the Hutchinson traces are estimates). "
              "Refinement spends a few measurements to correct that: it can only pick a plan that measures at "
              "least as well as the ILP, greedy and best-uniform plans *on its own metric on calibration data*. "
              "For MiniLM that metric is the quality column itself (the calibration text is the evaluation text); "
              "for digits the refinement scores on training images and the quality column is the held-out test "
              "split, so there the guarantee does not carry over by construction and the counts above say how "
              "often it held. The raw numbers (every candidate, every seed, every sampled plan) are in "
              "`reports/explore.json`.", ""]
    return "\n".join(lines)


def _read_results(path: str, flag: str) -> list[dict]:
    """The result list of a ``--save-json`` file (or ``reports/explore.json``)."""
    from hwq.errors import UsageError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"{flag} {path}: not a readable results JSON ({err})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) and "model" in r and "rows" in r for r in data):
        raise UsageError(f"{flag} {path}: not a list of study results (write one with --save-json)")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["digits_cnn", "minilm"])
    ap.add_argument("--out", default="reports/explore.md")
    ap.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    ap.add_argument("--proxy-plans", type=int, default=PROXY_PLANS)
    ap.add_argument("--proxy-methods", nargs="*", default=None,
                    help="labels of PROXY_METHODS to score (default all; none: only measure the sampled plans, "
                         "for a later --reuse run to score)")
    ap.add_argument("--finetune-steps", type=int, default=None,
                    help="QAT steps of the fine-tuning rows (default per model: FINETUNE_STEPS; 0 skips them)")
    ap.add_argument("--fractions", type=float, nargs="*", default=list(FRACTIONS))
    ap.add_argument("--proxy-part", type=int, nargs=2, metavar=("I", "K"),
                    help="measure only every K-th sampled proxy plan from I (run K processes, join with --reuse)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2; 1 on a loaded machine)")
    ap.add_argument("--save-json", help="write only this model's raw results to this JSON file (no report)")
    ap.add_argument("--merge", nargs="*", help="render the report from --save-json files instead of running")
    ap.add_argument("--reuse", nargs="*", default=[],
                    help="earlier --save-json files or reports/explore.json: keep the budget rows, proxy check and "
                         "fine-tuning rows they hold for each model instead of measuring them again")
    args = ap.parse_args(argv)
    if args.proxy_part and not (args.proxy_part[1] >= 1 and 0 <= args.proxy_part[0] < args.proxy_part[1]):
        from hwq.errors import UsageError

        raise UsageError(f"--proxy-part I K needs 0 <= I < K, got {args.proxy_part[0]} {args.proxy_part[1]}")
    if args.threads < 1:
        from hwq.errors import UsageError

        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.merge:
        results = [r for f in args.merge for r in _read_results(f, "--merge")]
    else:
        previous = [r for f in args.reuse for r in _read_results(f, "--reuse")]

        def save(partial: dict) -> None:  # partial results after every budget (long runs)
            if args.save_json:
                Path(args.save_json).write_text(json.dumps([partial], indent=2) + "\n")

        results = [study_model(m, fractions=args.fractions, seeds=args.seeds, proxy_plans=args.proxy_plans,
                               finetune_steps=args.finetune_steps, checkpoint=save, previous=previous,
                               proxy_methods=args.proxy_methods,
                               proxy_part=tuple(args.proxy_part) if args.proxy_part else None, threads=args.threads)
                   for m in args.models]
    if args.save_json:
        Path(args.save_json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.save_json}")
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(_markdown(results))
    tmp.replace(out)
    jtmp = out.with_suffix(".json.tmp")
    jtmp.write_text(json.dumps(results, indent=2) + "\n")
    jtmp.replace(out.with_suffix(".json"))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def _cli(argv: Sequence[str] | None = None) -> int:
    """``main`` with bad input as a one-line error (exit 2)."""
    import sys

    from hwq.errors import HwqError

    try:
        return main(argv)
    except HwqError as err:
        print(f"explore_study: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(_cli())
