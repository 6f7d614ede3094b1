"""``hwq explore``: per-layer precision plan under an energy (latency, size) budget.

Pipeline: model recipe -> workload capture (torch.fx) -> cost table per layer and precision
choice of the accelerator -> per-layer sensitivity (HAWQ-V3 Hessian trace or KL, cached) ->
PuLP ILP -> plan.json + report under ``reports/<model>-<arch>-<budget>/``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from hwq.spec import DEFAULT_PRESET

HELP = "find a per-layer precision plan for a model under an energy/latency/size budget (sensitivity + ILP)"

#: Upper bound of ``--pareto`` (each point is one ILP solve).
MAX_PARETO = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hwq explore``."""
    parser.add_argument("--model", required=True, help="model: a recipe name (models/registry.py, e.g. resnet50), torchvision:NAME, "
                        "path/to/file.py:build, package.module:build, a torch.export .pt2 file or a local "
                        "Hugging Face folder")
    parser.add_argument("--budget", required=True, help="energy budget per inference, e.g. 2mJ, 2000uJ, 0.002J")
    parser.add_argument("--arch", default=DEFAULT_PRESET,
                        help=f"accelerator preset name or YAML path (default: {DEFAULT_PRESET})")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="images per weight load (default: the spec's batch); the energy budget is per image, "
                             "latency per batch")
    parser.add_argument("--latency", help="latency budget per inference, e.g. 5ms")
    parser.add_argument("--max-size", help="weight-storage budget incl. metadata, e.g. 8MB")
    parser.add_argument("--sensitivity", default="hessian", choices=("hessian", "kl"),
                        help="hessian: HAWQ-V3 Hutchinson trace x weight error (default); kl: output change "
                             "with only one layer quantized")
    parser.add_argument("--samples", type=int, default=None,
                        help="Hutchinson vectors for --sensitivity hessian (default: 16 below 1M weights, else 4)")
    parser.add_argument("--hessian-estimator", default="auto", choices=("auto", "hvp", "gn"),
                        help="weight Hessian traces: hvp = Hutchinson with double-backward Hessian-vector products "
                             "(HAWQ-V3); gn = Gauss-Newton trace from output-space vectors (>= 0, no cross-layer "
                             "noise); auto (default) = gn for unlabelled calibration data, where the loss is the "
                             "MSE to the float output and its Hessian equals J^T J, else hvp")
    parser.add_argument("--calib-samples", type=int, default=None,
                        help="calibration samples used for sensitivity (default: 2 for 224x224 images, else 64)")
    parser.add_argument("--weights", help="checkpoint (.pt/.pth state dict or .safetensors) to load into the model")
    parser.add_argument("--calib", help="directory of calibration data (*.pt / *.npy tensors or image files)")
    parser.add_argument("--solver", default="cbc", choices=("cbc", "highs"), help="ILP solver (default cbc)")
    parser.add_argument("--pareto", type=int, default=8, metavar="N",
                        help=f"budgets in the Pareto sweep plotted in the report (default 8; 0 to skip; "
                             f"at most {MAX_PARETO})")
    parser.add_argument("--refine", type=int, default=0, metavar="K",
                        help="measured refinement: score the K best ILP plans (no-good cuts), greedy, the best "
                             "uniform plan and up to K local moves on the real metric with the calibration data; "
                             "keep the best measured (default 0: off)")
    parser.add_argument("--keep-first-last-8bit", action="store_true",
                        help="keep the first and last compute layers at the highest precision (8 bits when offered)")
    parser.add_argument("--tie-residual", action="store_true",
                        help="give the layers that feed the same residual add the same choice")
    parser.add_argument("--no-cache", action="store_true", help="recompute the sensitivity instead of using .hwq_cache/")
    parser.add_argument("--out", help="report directory (default reports/<model>-<arch>-<budget>/)")
    parser.add_argument("--json", action="store_true", help="print the plan summary as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    """Parse budgets first (bad text exits 2 before anything heavy loads), then explore."""
    from hwq.cli import validate as v
    from hwq.search.units import format_si

    budget_j = v.energy(args.budget)
    latency_s = v.latency(args.latency) if args.latency is not None else None
    size_bytes = v.size(args.max_size) if args.max_size is not None else None
    v.int_at_least(args.pareto, "--pareto", 0, MAX_PARETO, why="each point is one ILP solve")
    v.int_at_least(args.samples, "--samples", 1)
    v.int_at_least(args.refine or None, "--refine", 1, 1000, why="each candidate is quantized and measured")
    v.int_at_least(args.calib_samples, "--calib-samples", 1)
    v.int_at_least(args.batch, "--batch", 1)
    v.model(args.model)
    spec = v.spec(args.arch)
    v.calib_dir(args.calib)
    v.cache_dir(not args.no_cache)
    if args.out is not None:
        v.output_dir(args.out, "--out", "explore")
    else:
        from hwq.search.report import default_out_dir

        v.output_dir(default_out_dir(args.model, spec.name, format_si(budget_j, "J")), "--out", "explore")
    from hwq.search.explore import ExploreRequest, explore

    req = ExploreRequest(model=args.model, arch=args.arch, batch=args.batch, budget_j=budget_j, budget_text=format_si(budget_j, "J"),
                         latency_s=latency_s, size_bytes=size_bytes, sensitivity=args.sensitivity,
                         samples=args.samples, hessian_estimator=args.hessian_estimator, calib_samples=args.calib_samples, weights=args.weights,
                         calib=args.calib, solver=args.solver, pareto=args.pareto,
                         keep_first_last_8bit=args.keep_first_last_8bit, tie_residual=args.tie_residual,
                         refine=args.refine,
                         use_cache=not args.no_cache, out=args.out, progress=not args.json and sys.stderr.isatty(),
                         command=_command(args))
    result = explore(req, warn=lambda msg: sys.stderr.write(f"hwq explore: warning: {msg}\n"))
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        print(result.text())
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces ``args`` (for the report header)."""
    parts = ["hwq", "explore", "--model", args.model, "--budget", args.budget]
    for flag, value in (("--arch", args.arch if args.arch != DEFAULT_PRESET else None),
                        ("--batch", str(args.batch) if args.batch else None), ("--latency", args.latency),
                        ("--max-size", args.max_size),
                        ("--sensitivity", args.sensitivity if args.sensitivity != "hessian" else None),
                        ("--samples", str(args.samples) if args.samples else None),
                        ("--hessian-estimator", args.hessian_estimator if args.hessian_estimator != "auto" else None),
                        ("--calib-samples", str(args.calib_samples) if args.calib_samples else None),
                        ("--weights", args.weights), ("--calib", args.calib),
                        ("--solver", args.solver if args.solver != "cbc" else None),
                        ("--pareto", str(args.pareto) if args.pareto != 8 else None),
                        ("--refine", str(args.refine) if args.refine else None), ("--out", args.out)):
        if value is not None:
            parts += [flag, value]
    if args.keep_first_last_8bit:
        parts.append("--keep-first-last-8bit")
    if args.tie_residual:
        parts.append("--tie-residual")
    return " ".join(shlex.quote(p) for p in parts)
