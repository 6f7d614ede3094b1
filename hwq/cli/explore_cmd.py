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

HELP = "find a per-layer precision plan for a model under an energy/latency/size budget (sensitivity + ILP)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hwq explore``."""
    parser.add_argument("--model", required=True, help="model recipe name (see models/registry.py), e.g. resnet50")
    parser.add_argument("--budget", required=True, help="energy budget per inference, e.g. 2mJ, 2000uJ, 0.002J")
    parser.add_argument("--arch", default="bitmod", help="accelerator preset name or YAML path (default: bitmod)")
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
                        help="budgets in the Pareto sweep plotted in the report (default 8; 0 to skip)")
    parser.add_argument("--keep-first-last-8bit", action="store_true",
                        help="keep the first and last compute layers at the highest precision (8 bits when offered)")
    parser.add_argument("--tie-residual", action="store_true",
                        help="give the layers that feed the same residual add the same choice")
    parser.add_argument("--no-cache", action="store_true", help="recompute the sensitivity instead of using .hwq_cache/")
    parser.add_argument("--out", help="report directory (default reports/<model>-<arch>-<budget>/)")
    parser.add_argument("--json", action="store_true", help="print the plan summary as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    """Parse budgets first (bad text exits 2 before anything heavy loads), then explore."""
    from hwq.search.units import format_si, parse_energy, parse_size, parse_time

    budget_j = parse_energy(args.budget)
    latency_s = parse_time(args.latency) if args.latency else None
    size_bytes = parse_size(args.max_size) if args.max_size else None
    if args.pareto < 0 or (args.samples is not None and args.samples < 1):
        from hwq.errors import UsageError

        raise UsageError("--pareto must be >= 0 and --samples >= 1")
    from hwq.search.explore import ExploreRequest, explore

    req = ExploreRequest(model=args.model, arch=args.arch, budget_j=budget_j, budget_text=format_si(budget_j, "J"),
                         latency_s=latency_s, size_bytes=size_bytes, sensitivity=args.sensitivity,
                         samples=args.samples, hessian_estimator=args.hessian_estimator, calib_samples=args.calib_samples, weights=args.weights,
                         calib=args.calib, solver=args.solver, pareto=args.pareto,
                         keep_first_last_8bit=args.keep_first_last_8bit, tie_residual=args.tie_residual,
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
    for flag, value in (("--arch", args.arch if args.arch != "bitmod" else None), ("--latency", args.latency),
                        ("--max-size", args.max_size),
                        ("--sensitivity", args.sensitivity if args.sensitivity != "hessian" else None),
                        ("--samples", str(args.samples) if args.samples else None),
                        ("--hessian-estimator", args.hessian_estimator if args.hessian_estimator != "auto" else None),
                        ("--calib-samples", str(args.calib_samples) if args.calib_samples else None),
                        ("--weights", args.weights), ("--calib", args.calib),
                        ("--solver", args.solver if args.solver != "cbc" else None),
                        ("--pareto", str(args.pareto) if args.pareto != 8 else None), ("--out", args.out)):
        if value is not None:
            parts += [flag, value]
    if args.keep_first_last_8bit:
        parts.append("--keep-first-last-8bit")
    if args.tie_residual:
        parts.append("--tie-residual")
    return " ".join(shlex.quote(p) for p in parts)
