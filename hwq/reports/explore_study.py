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

    ref = embed(load_minilm(), SENTENCES)
    batches = get_recipe("minilm").calibration(64)

    def calib(q):
        calibrate(q, batches)

    return (lambda m: embedding_cosine(m, ref, SENTENCES)), \
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
#: QAT steps of the fine-tuning rows (digits only; fraction indices of FRACTIONS fine-tuned).
FINETUNE_STEPS = 150
FINETUNE_FRACTIONS = (0.06, 0.15)


def study_model(model_name: str, fractions: Sequence[float] = FRACTIONS, arch: str = "bitmod",
                seeds: Sequence[int] = SEEDS, refine_k: int | None = None, proxy_plans: int = PROXY_PLANS,
                finetune_steps: int = FINETUNE_STEPS, checkpoint: Callable[[dict], None] | None = None,
                proxy: bool = True) -> dict:
    """Plans and measured quality for ``model_name`` at every budget fraction."""
    import torch

    from hwq.quant import quantize_model
    from hwq.search.explore import ExploreRequest, explore
    from hwq.search.greedy import best_uniform, greedy
    from hwq.search.pareto import energy_range
    from hwq.search.refine import default_metric, refine, share_quantized_weights
    from hwq.search.sensitivity import layer_group_size
    from hwq.workload import capture
    from models.registry import get_recipe

    torch.set_num_threads(2)
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
    fp_quality = quality(model)
    batches = recipe.calibration(64)
    metrics = {s: default_metric(model_name, model, batches, seed=s) for s in seeds}
    k = refine_k or REFINE_K.get(model_name, 3)
    same_metric = model_name == "minilm"  # the reported metric is the calibration metric itself
    wcache: dict = {}  # quantized weights per (layer, format, bits, group): shared by every plan measured
    rows: list = []

    def result(proxy_out=None, ft=()) -> dict:
        return {"model": model_name, "metric": metric, "float_quality": fp_quality, "arch": arch,
                "weights": lo_probe.plan["inputs"]["weights"], "calibration": lo_probe.plan["inputs"]["calibration"],
                "sensitivity": lo_probe.plan["inputs"]["sensitivity"], "layers": len(base.layer_names),
                "refine_k": k, "refine_metric": metrics[seeds[0]].description, "seeds": list(seeds),
                "energy_range_pj": [lo + offset, hi + offset], "rows": sorted(rows, key=lambda r: r["fraction"]),
                "proxy": proxy_out, "finetune": list(ft), "seconds": time.perf_counter() - t0}

    for f in fractions:
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
                metrics[s].calibrate(q)
                with torch.no_grad():
                    score = float(metrics[s].score(q))
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
    proxy = _proxy_check(model_name, model, base, choices, group_sizes, quality, metrics[seeds[0]], same_metric,
                         proxy_plans, arch, offset, wcache) if proxy and proxy_plans else None
    if checkpoint:
        checkpoint(result(proxy))
    ft = _finetune_rows(model_name, model, rows, base, choices, group_sizes, finetune_steps) \
        if model_name == "digits_cnn" and finetune_steps else []
    return result(proxy, ft)


def _proxy_check(model_name, model, base, choices, group_sizes, quality, metric0, same_metric, n, arch,
                 offset, wcache) -> dict:
    """Spearman correlation between predicted sum of Omega (per method) and the measured quality."""
    import torch

    from hwq.quant import quantize_model
    from hwq.search.explore import ExploreRequest, explore
    from hwq.search.proxy import sample_plans, spearman
    from hwq.search.refine import share_quantized_weights

    t0 = time.perf_counter()
    sens = {}
    for label, (method, est) in PROXY_METHODS.get(model_name, {}).items():
        r = explore(ExploreRequest(model=model_name, budget_j=1.0, budget_text="1J", arch=arch, pareto=0, write=False,
                                   sensitivity=method, hessian_estimator=est))
        assert r.problem.layer_names == base.layer_names and r.problem.choice_labels == base.choice_labels
        sens[label] = r.problem.sensitivity
    plans = sample_plans(base, n, seed=0)
    measured = []
    for a in plans:
        q = quantize_model(model, plan_dict(base, a, choices, group_sizes))
        share_quantized_weights(q, wcache)
        metric0.calibrate(q)
        with torch.no_grad():
            measured.append(float(metric0.score(q)) if same_metric else float(quality(q)))
    idx = range(len(base.layer_names))
    energy = [float(sum(base.energy_pj[l, a[l]] for l in idx)) + offset for a in plans]
    out = {"plans": len(plans), "methods": {}, "energy_pj": energy, "measured": measured}
    for label, S in sens.items():
        total = [float(sum(S[l, a[l]] for l in idx)) for a in plans]
        rho, pv = spearman([-t for t in total], measured)
        lo_half = [i for i, e in enumerate(energy) if e <= sorted(energy)[len(energy) // 2]]
        rho_lo, _ = spearman([-total[i] for i in lo_half], [measured[i] for i in lo_half])
        out["methods"][label] = {"spearman": rho, "p_value": pv, "spearman_cheaper_half": rho_lo, "totals": total}
    rho_e, pv_e = spearman(energy, measured)
    out["energy_baseline"] = {"spearman": rho_e, "p_value": pv_e}
    out["seconds"] = time.perf_counter() - t0
    print(f"{model_name}: proxy check on {len(plans)} plans: " + ", ".join(
        f"{k} {v['spearman']:.3f}" for k, v in out["methods"].items()) + f", energy {rho_e:.3f}", flush=True)
    return out


def _finetune_rows(model_name, model, rows, base, choices, group_sizes, steps) -> list[dict]:
    """QAT with distillation (hwq finetune's library call) of the refined plan at the lowest budgets."""
    from hwq.quant import calibrate, quantize_model
    from hwq.quant.finetune import finetune
    from models.digits_cnn import evaluate
    from models.registry import get_recipe

    batches = list(get_recipe(model_name).calibration(512))
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
            before = evaluate(ptq)
            res = finetune(model, plan, batches, steps=steps, lr=1e-3, device="auto")
            out.append({"budget_pj": row["budget_pj"], "plan": name, "mix": pl["mix"], "before": before,
                        "after": evaluate(res.model), "steps": steps, "device": res.device,
                        "seconds": res.seconds})
            print(f"{model_name}: finetune {name} at {row['budget_pj']:.4g} pJ: {before:.4f} -> {out[-1]['after']:.4f}",
                  flush=True)
    return out


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
             "to the most expensive plan's. Every number below comes from the run that wrote this file.", ""]
    for r in results:
        seeds = r["seeds"]
        lines += [f"## {r['model']}", "",
                  f"- quality metric: {r['metric']}; float model: **{r['float_quality']:.4f}**",
                  f"- weights: {r['weights']}; calibration: {r['calibration']}",
                  f"- sensitivity: {r['sensitivity']}; {r['layers']} quantized layers",
                  f"- refinement: `--refine {r['refine_k']}`; measured on: {r['refine_metric']}",
                  f"- energy range over plans: {format_si(r['energy_range_pj'][0] * 1e-12, 'J')} .. "
                  f"{format_si(r['energy_range_pj'][1] * 1e-12, 'J')}; study time {r['seconds']:.0f} s", "",
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
            lines.append("")
        if r.get("finetune"):
            lines += [f"Quantization-aware fine-tuning (`hwq finetune`'s library call `hwq.quant.finetune.finetune`: "
                      f"{r['finetune'][0]['steps']} Adam steps, lr 1e-3, distillation from the float model with "
                      "T = 2 on 512 calibration (training) images, activation scales calibrated on them first; quality "
                      "= the quality column's metric):", "",
                      "| budget | plan | precisions | before (PTQ) | after QAT | change | device | seconds |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- |"]
            for f in r["finetune"]:
                lines.append(f"| {format_si(f['budget_pj'] * 1e-12, 'J')} | {f['plan']} | {f['mix']} | {f['before']:.4f} | "
                             f"{f['after']:.4f} | {f['after'] - f['before']:+.4f} | {f['device']} | {f['seconds']:.0f} |")
            lines.append("")
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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["digits_cnn", "minilm"])
    ap.add_argument("--out", default="reports/explore.md")
    ap.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    ap.add_argument("--proxy-plans", type=int, default=PROXY_PLANS)
    ap.add_argument("--finetune-steps", type=int, default=FINETUNE_STEPS)
    ap.add_argument("--fractions", type=float, nargs="*", default=list(FRACTIONS))
    ap.add_argument("--save-json", help="write only this model's raw results to this JSON file (no report)")
    ap.add_argument("--merge", nargs="*", help="render the report from --save-json files instead of running")
    args = ap.parse_args(argv)
    if args.merge:
        results = [r for f in args.merge for r in json.loads(Path(f).read_text())]
    else:
        def save(partial: dict) -> None:  # partial results after every budget (long runs)
            if args.save_json:
                Path(args.save_json).write_text(json.dumps([partial], indent=2) + "\n")

        results = [study_model(m, fractions=args.fractions, seeds=args.seeds, proxy_plans=args.proxy_plans,
                               finetune_steps=args.finetune_steps, checkpoint=save) for m in args.models]
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


if __name__ == "__main__":
    raise SystemExit(main())
