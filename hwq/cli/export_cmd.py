"""``hwq export``: a precision plan as a file another tool runs (QONNX)."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "write a plan's quantized model for other tools: --to qonnx (Quant nodes for INT weights and activations)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hwq export``."""
    from hwq.cli.validate import path_arg

    parser.add_argument("--plan", required=True, type=path_arg, help="plan.json written by hwq explore")
    parser.add_argument("--to", required=True, choices=("qonnx",), help="target format")
    parser.add_argument("output", type=path_arg, help="output file (model.onnx)")
    parser.add_argument("--model", help="model (any --model form; default: the plan's inputs.model)")
    parser.add_argument("--weights", help="checkpoint to load into the model (as hwq explore --weights)")
    parser.add_argument("--calib-samples", type=int, default=None,
                        help="calibration samples for the activation scales (default: as hwq explore)")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")


def run(args: argparse.Namespace) -> int:
    from hwq.cli import validate as v
    from hwq.errors import UsageError

    plan = v.plan_file(args.plan, "--plan")
    name = args.model or (plan.get("inputs") or {}).get("model")
    if not name:
        raise UsageError(f"--plan {args.plan} names no model (inputs.model); pass --model")
    v.int_at_least(args.calib_samples, "--calib-samples", 1)
    recipe = v.model(name)
    v.output_file(args.output, "output")
    import torch

    from hwq.export.qonnx import export_qonnx
    from hwq.search.explore import calibration_sample_count

    torch.manual_seed(0)
    model = recipe.build(args.weights).eval()
    example = recipe.example_input()
    n = calibration_sample_count(example, args.calib_samples)
    res = export_qonnx(model, plan, example, list(recipe.calibration(n)), args.output)
    if args.json:
        print(json.dumps(res.summary(), indent=1))
        return 0
    print(f"wrote {res.path}: Quant on the input of {len(res.act_quant)} layers, on the weights of "
          f"{len(res.weight_quant)} ({', '.join(res.weight_quant) or 'none'})")
    if res.lost_format:
        sys.stderr.write("hwq export: warning: QONNX has no Quant for these weight formats; written as dequantized "
                         "float weights: " + ", ".join(f"{k} ({f})" for k, f in res.lost_format.items()) + "\n")
    return 0
