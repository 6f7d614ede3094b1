"""``hwq codesign``: explore accelerator variants and precision plans together.

For every point of a design space (array shape, lanes, bit-serial radix, supported weight
datatypes, buffer sizes) solve the precision ILP under the budget, then report the Pareto set
over energy, latency, hardware cost and model sensitivity, pick one design, and write its spec,
plan, Verilog, synthesis report and a layer-level co-simulation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hwq.cli.validate import path_arg
from hwq.errors import UsageError

HELP = "co-design: sweep accelerator variants x precision plans under a budget; Pareto set, chosen design, RTL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name (e.g. resnet50, minilm, digits_cnn)")
    parser.add_argument("--budget", required=True, help="energy budget per inference, e.g. 2mJ, 500uJ")
    parser.add_argument("--space", default="default",
                        help="design space: a YAML path, a shipped space name, or 'default' (edge_dataflow: "
                             "dataflow, partial sums, accumulator depth, DRAM technology and batch around bitmod_edge)")
    parser.add_argument("--out", type=path_arg, default=None,
                        help="output folder (default: codesign_out/MODEL_BUDGET_SPACE); a rerun resumes there")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="images per weight load for every design point and preset (default: the base "
                             "spec's batch, or the space's batch axis); energy is per image, latency per batch")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    parser.add_argument("--sensitivity", choices=("hessian", "kl"), default="hessian",
                        help="layer sensitivity method (default: hessian, HAWQ-V3)")
    parser.add_argument("--calib-samples", type=int, default=None,
                        help="calibration samples for the sensitivity (default as hwq explore: 2 large images, "
                             "16 token sequences, else 64)")
    parser.add_argument("--keep-first-last-8bit", action="store_true",
                        help="keep the first and last weight layers at the highest precision (as hwq explore)")
    parser.add_argument("--tie-residual", action="store_true",
                        help="give the layers that feed the same residual add the same choice (as hwq explore)")
    parser.add_argument("--solver", choices=("cbc", "highs"), default="cbc", help="ILP solver (default: cbc)")
    parser.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus",
                        help="simulator for the chosen design's co-simulation (default: icarus)")
    parser.add_argument("--sim-layer", default=None,
                        help="layer to co-simulate on the chosen design (default: the one with fewest weights)")
    parser.add_argument("--no-hw", action="store_true",
                        help="skip the chosen design's Verilog, synthesis and co-simulation (sweep only)")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="where the stages run: local process pool (default, --jobs processes) or Ray "
                             "(a local instance of --jobs CPUs, or the cluster of --address / RAY_ADDRESS)")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="Ray cluster to join (ray://HOST:PORT, HOST:PORT or auto; default: RAY_ADDRESS if set)")
    parser.add_argument("--samples", type=int, default=None, metavar="N",
                        help="evaluate N points of the space instead of all of them (see --sampler)")
    parser.add_argument("--sampler", choices=("random", "lhs", "tpe"), default="lhs",
                        help="how --samples picks points: random, lhs (Latin hypercube, default) or tpe "
                             "(Optuna's Bayesian TPE search: asks for points near the good ones)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    parser.add_argument("--synth-top", type=int, default=1, metavar="K",
                        help="synthesise (Yosys) at most K distinct arrays among the best Pareto candidates, "
                             "while the ILPs run (default 1; the chosen design's is always synthesised)")
    parser.add_argument("--cosim-top", type=int, default=1, metavar="K",
                        help="co-simulate the best K points of the Pareto set (default 1: the chosen design)")
    parser.add_argument("--max-retries", type=int, default=2, metavar="N",
                        help="retries of a task whose worker died (crash, lost node); then the point is "
                             "recorded infeasible with the reason and retried by the next run (default 2)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _print_text(result, artifacts) -> None:  # noqa: ANN001
    out = result.out_dir
    from rich.console import Console
    from rich.table import Table

    from hwq.codesign.pareto import CHOICE_RULE

    console = Console()
    recs = result.records
    unit = recs[0].get("hw_cost_unit", "")
    t = Table(title=f"hwq codesign {result.model} @ {result.budget_pj * 1e-9:g} mJ, space {result.space.name}: "
                    f"Pareto set ({len(result.front)} of {len(recs)} points, "
                    f"{sum(bool(r.get('feasible')) for r in recs)} within budget)")
    for col in ("", "#", "design", "batch", "energy mJ/image", "latency ms/batch", f"hw ({unit})", "sensitivity"):
        t.add_column(col, justify="right" if col not in ("", "design") else "left",
                     overflow="fold" if col == "design" else "ellipsis")
    for i in result.front:
        r = recs[i]
        t.add_row("*" if i == result.chosen else "", str(r["index"]), r["label"], str(r.get("batch", 1)),
                  f"{r['energy_pj'] * 1e-9:.4g}",
                  f"{r['latency_us'] * 1e-3:.4g}", f"{r['hw_cost']:.4g}", f"{r['sensitivity']:.4g}")
    console.print(t)
    console.print(f"choice rule: {CHOICE_RULE}")
    console.print("energy is per image, latency per batch (batch = images per weight load)")
    for p in result.presets:
        if p.get("feasible"):
            console.print(f"preset {p['label']} (batch {p.get('batch', 1)}): energy {p['energy_pj'] * 1e-9:.4g} "
                          f"mJ/image, latency {p['latency_us'] * 1e-3:.4g} ms/batch, hw {p['hw_cost']:.4g} {unit}, sensitivity "
                          f"{p['sensitivity']:.4g}")
        else:
            console.print(f"preset {p['label']}: infeasible ({p.get('reason', '')})")
    imp = result.improvement()
    if result.chosen is None:
        console.print("[bold red]no design point meets the budget[/]")
        return
    c = recs[result.chosen]
    console.print(f"[bold]chosen[/]: point {c['index']} {c['label']} ({c['spec_name']}): "
                  f"{c['energy_pj'] * 1e-9:.4g} mJ/image, {c['latency_us'] * 1e-3:.4g} ms per batch of "
                  f"{c.get('batch', 1)}; dataflow {'+'.join(c.get('dataflow') or ['output_buffer'])}, partial sums "
                  f"{c.get('partial_sums')}, DRAM {c.get('dram_technology')}")
    if imp:
        console.print(f"vs best preset {result.presets[result.best_preset]['label']}: sensitivity "
                      f"{imp['sensitivity_ratio']:.3g}x, energy {imp['energy_ratio']:.3g}x, "
                      f"latency {imp['latency_ratio']:.3g}x, hardware {imp['hw_cost_ratio']:.3g}x (preset/chosen)")
    if artifacts:
        console.print(f"spec {out / artifacts['spec']}  plan {out / artifacts['plan']}")
        if "verilog" in artifacts:
            console.print(f"verilog {out / artifacts['verilog']}")
        syn = artifacts.get("synth")
        if syn:
            what = f"{syn['cols']}-column slice" if syn["sliced"] else "array"
            console.print(f"synthesis of the {what} (Yosys, Xilinx cells): LUT {syn['LUT']:.0f}, FF {syn['FF']:.0f}, "
                          f"DSP {syn['DSP']:.0f}, BRAM36 {syn['BRAM']:g}  ({out / artifacts['synth_report']})")
        s = artifacts.get("sim")
        if s:
            what = f" ({s['sim_cols']}-column slice)" if s["sliced"] else ""
            console.print(f"co-simulation{what} {s['layer']} ({s['precision']}, {s.get('dataflow')}, batch "
                          f"{s.get('batch', 1)}) on {s['simulator']}: "
                          f"{s['outputs_compared'] - s['mismatches']}/{s['outputs_compared']} outputs bit-exact, "
                          f"cycles predicted {s['predicted_cycles']} measured {s['measured_cycles']}: "
                          f"{'OK' if s['ok'] else 'FAILED'}")
    pipe = result.extra.get("pipeline")
    if pipe:
        seen, now, bad = pipe["points_per_stage"], pipe["evaluated_this_run"], pipe["failed"]
        console.print(f"pipeline on {pipe['executor']} ({pipe['workers']} workers), sampler {pipe['sampler']}: "
                      + ", ".join(f"{s} saw {seen[s]} ({now[s]} run now, {bad[s]} failed)" for s in seen)
                      + f" of {result.extra.get('space_points')} points in the space; {pipe['seconds']:.1f} s")
    console.print(f"results {result.out_dir} (results.jsonl, stages.jsonl, summary.json, pareto.png)")


def _check_sim_layer(recipe, name: str) -> None:
    """``--sim-layer`` must be a Conv/Linear module with weights: checked before the sweep."""
    import torch

    modules = dict(recipe.build().named_modules())
    layers = [n for n, m in modules.items() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
              and getattr(m, "weight", None) is not None]
    if name not in layers:
        raise UsageError(f"--sim-layer {name!r} is not a weight layer of {recipe.name}; e.g. "
                         f"{', '.join(layers[:3])}")


def run(args: argparse.Namespace) -> int:
    from hwq.cli import validate as v
    from hwq.codesign.driver import SUMMARY_FILE, TIMINGS_FILE, run_codesign, without_timings, write_json
    from hwq.search.units import parse_energy

    budget_pj = parse_energy(args.budget) * 1e12
    if args.address is not None:
        if not args.address.strip():
            raise UsageError("--address is empty; give the Ray cluster as ray://HOST:PORT, HOST:PORT or auto")
        if args.executor != "ray":
            raise UsageError("--address joins a Ray cluster; use it with --executor ray")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    if args.calib_samples is not None and args.calib_samples < 1:
        raise UsageError(f"--calib-samples must be >= 1, got {args.calib_samples}")
    v.int_at_least(args.batch, "--batch", 1)
    recipe = v.model(args.model)
    space = v.space(args.space)
    if args.batch is not None:
        from hwq.codesign.space import base_spec

        base_spec(space, args.batch)  # a space with a batch axis and --batch: exit 2 before any work
    from models.resolve import slug

    out = args.out or Path("codesign_out") / f"{slug(args.model)}_{args.budget.replace(' ', '')}_{space.name}"
    v.output_dir(out, "--out", "codesign")
    v.cache_dir()
    if args.sim_layer is not None:
        if args.no_hw:
            raise UsageError("--sim-layer names the layer to co-simulate, but --no-hw skips the co-simulation")
        _check_sim_layer(recipe, args.sim_layer)
    v.int_at_least(args.samples, "--samples", 1)
    v.int_at_least(args.synth_top, "--synth-top", 0)
    v.int_at_least(args.cosim_top, "--cosim-top", 0)
    v.int_at_least(args.max_retries, "--max-retries", 0)
    v.int_at_least(args.seed, "--seed", 0, 2**32 - 1)
    if args.sampler == "tpe" and args.samples is None:
        raise UsageError("--sampler tpe searches a budget of points: give --samples N")
    if args.samples is not None:
        from hwq.codesign.sampling import select

        if args.samples > len(space.points()):
            select(space, space.points(), args.samples, "random")  # the one-line error, before any work
    from hwq.codesign.executors import make_executor
    from hwq.codesign.pipeline import StageConfig

    progress = not args.json and sys.stderr.isatty()
    stages = StageConfig(synth_top=0 if args.no_hw else args.synth_top, cosim_top=0 if args.no_hw else args.cosim_top,
                         model_name=args.model, simulator=args.simulator, sim_layer=args.sim_layer)
    executor = make_executor(args.executor, args.jobs, address=args.address, max_retries=args.max_retries)
    result = run_codesign(args.model, space, budget_pj, out, jobs=args.jobs, method=args.sensitivity,
                          solver=args.solver, progress=progress, calibration_samples=args.calib_samples,
                          keep_first_last_8bit=args.keep_first_last_8bit, tie_residual=args.tie_residual,
                          batch=args.batch, executor=executor, samples=args.samples, sampler=args.sampler,
                          seed=args.seed, stages=stages)
    from hwq.codesign.plot import plot_pareto

    plot_pareto(result.records, result.front, result.chosen, result.presets, out / "pareto.png",
                f"{args.model} at {args.budget}: space {space.name} ({len(result.records)} points)", budget_pj)
    artifacts = None
    if result.chosen is not None and not args.no_hw:
        from hwq.codesign.artifacts import write_chosen

        chosen = result.records[result.chosen]
        staged_sim = result.extra.get("cosim", {}).get(str(chosen["index"]))
        artifacts = write_chosen(out, args.model, result.specs[result.chosen], result.workload,
                                 result.weight_layers, chosen["plan"], simulator=args.simulator,
                                 sim_layer=args.sim_layer, synth_cache=Path(os.environ.get("HWQ_CACHE_DIR",
                                                                                         ".hwq_cache")),
                                 sim_result=staged_sim if staged_sim and "layer" in staged_sim else None)
    summary = result.summary()
    summary["artifacts"] = without_timings(artifacts)  # summary.json: the same for the same command
    write_json(out / SUMMARY_FILE, summary)
    if artifacts and isinstance(artifacts.get("sim"), dict):
        times = result.timings()
        times["chosen_sim"] = {k: v for k, v in artifacts["sim"].items() if k.endswith("_s")}
        write_json(out / TIMINGS_FILE, times)
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=float)
        sys.stdout.write("\n")
    else:
        _print_text(result, artifacts)
    if result.chosen is None:
        cheap = min(result.records, key=lambda r: r.get("cheapest_energy_pj", float("inf")))
        need = cheap.get("cheapest_energy_pj")
        sys.stderr.write(f"hwq codesign: no design point meets the budget {args.budget}"
                         + (f"; the cheapest, point {cheap['index']} ({cheap['label']}), needs {need * 1e-9:.4g} mJ"
                            if need else "") + "\n")
        return 1
    if artifacts and artifacts.get("sim") and not artifacts["sim"]["ok"]:
        return 1
    return 0
