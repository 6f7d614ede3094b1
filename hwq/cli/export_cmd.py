"""``hwq export``: a precision plan as files another tool runs (QONNX, hls4ml)."""

from __future__ import annotations

import argparse
import json
import sys

HELP = ("write a plan's quantized model for other tools: --to qonnx (Quant nodes for INT and fixed point), "
        "--to hls4ml (an hls4ml project with per-layer ap_fixed types, from a fixed-point plan)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hwq export``."""
    from hwq.cli.validate import path_arg

    parser.add_argument("--plan", required=True, type=path_arg,
                        help="plan.json written by hwq explore, or a fixed-point plan (schema hwq.qfx/1, e.g. the "
                             "qfx_plan.json that --to hls4ml writes)")
    parser.add_argument("--to", required=True, choices=("qonnx", "hls4ml"), help="target format")
    parser.add_argument("output", type=path_arg, help="output: model.onnx (qonnx) or a folder (hls4ml)")
    parser.add_argument("--model", help="model (any --model form; default: the plan's inputs.model)")
    parser.add_argument("--arch", default=None,
                        help="FPGA preset or spec file for --to hls4ml (default: the plan's inputs.arch, else fpga_zu)")
    parser.add_argument("--fixed", action="store_true",
                        help="--to qonnx: write the fixed-point (QFX) model of the plan (an explore plan's widths, "
                             "calibrated binary points); a hwq.qfx/1 plan is always written as fixed point")
    parser.add_argument("--weights", help="checkpoint to load into the model (as hwq explore --weights)")
    parser.add_argument("--calib-samples", type=int, default=None,
                        help="calibration samples for the activation scales / binary points (default: as hwq explore)")
    parser.add_argument("--check", action="store_true",
                        help="--to hls4ml on digits_cnn: compile hls4ml's C++ emulation (g++) and compare it with "
                             "hwq's fixed-point golden model on every digits test image")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")


def _qfx_plan(plan: dict, args, recipe, model, name: str, arch: str) -> dict:
    """The plan as a QFX plan: as given (schema hwq.qfx/1) or derived (widths from the explore plan)."""
    from hwq.export.qfx_plan import is_qfx_plan, make_qfx_plan
    from hwq.search.explore import calibration_sample_count

    if is_qfx_plan(plan):
        return plan
    n = calibration_sample_count(recipe.example_input(), args.calib_samples)
    return make_qfx_plan(model, list(recipe.calibration(n)), model_name=name, arch=arch, plan=plan,
                         from_plan=str(args.plan))


def run(args: argparse.Namespace) -> int:
    from hwq.cli import validate as v
    from hwq.errors import UsageError

    plan = v.json_file(args.plan, "--plan", "a plan.json written by hwq explore or a hwq.qfx/1 fixed-point plan")
    from hwq.export.qfx_plan import is_qfx_plan, plan_tensors

    if is_qfx_plan(plan):
        plan_tensors(plan)  # every type parses (one-line error naming the tensor otherwise)
    else:
        plan = v.plan_file(args.plan, "--plan")
    name = args.model or (plan.get("inputs") or {}).get("model")
    if not name:
        raise UsageError(f"--plan {args.plan} names no model (inputs.model); pass --model")
    v.int_at_least(args.calib_samples, "--calib-samples", 1)
    # Every check before the model is built (hwq/cli/validate.py): flags of the other target,
    # the spec, the weights file, the output path.
    if args.check and args.to != "hls4ml":
        raise UsageError("--check is for --to hls4ml (the QONNX file is checked by tests/test_export_qonnx.py)")
    if args.fixed and args.to != "qonnx":
        raise UsageError("--fixed is for --to qonnx; --to hls4ml always writes the fixed-point model")
    if args.check and name not in ("digits_cnn", "digits"):
        raise UsageError("--check runs the digits test set; it needs --model digits_cnn")
    if args.arch is not None and args.to == "qonnx" and not (is_qfx_plan(plan) or args.fixed):
        raise UsageError("--arch only applies to --to hls4ml and --fixed (the binary points); drop it")
    recipe = v.model(name)
    if args.weights is not None:
        v.input_path(args.weights, "--weights", "a checkpoint (.pt) of the model")
    if args.to == "hls4ml":
        arch = args.arch or (plan.get("inputs") or {}).get("arch") or "fpga_zu"
        spec = v.spec(arch)
        if spec.family != "fpga":
            raise UsageError(f"--to hls4ml needs an FPGA preset (--arch); {spec.name} is an {spec.family} "
                             f"accelerator")
        v.work_dir(args.output, "output")
    else:
        if args.arch is not None:
            v.spec(args.arch)
        v.output_file(args.output, "output")
    import torch

    torch.manual_seed(0)
    model = recipe.build(args.weights).eval()
    v.plan_fits_model(plan, model, name)
    example = recipe.example_input()
    if args.to == "hls4ml":
        return _hls4ml(args, plan, recipe, model, name, example)
    if is_qfx_plan(plan) or args.fixed:
        from hwq.export.qonnx_fixed import export_qonnx_fixed

        arch = args.arch or (plan.get("inputs") or {}).get("arch") or "fpga_zu"
        res = export_qonnx_fixed(model, _qfx_plan(plan, args, recipe, model, name, arch), example, args.output)
        if args.json:
            print(json.dumps(res.summary(), indent=1))
        else:
            print(f"wrote {res.path}: {len(res.act_quant)} fixed-point Quant nodes on activations, "
                  f"{len(res.weight_quant)} on weights (scale 2^-F, bit width W, ROUND = AP_RND)")
        return 0
    from hwq.export.qonnx import export_qonnx
    from hwq.search.explore import calibration_sample_count

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


def _hls4ml(args, plan: dict, recipe, model, name: str, example) -> int:
    """``--to hls4ml``: the project folder, and with ``--check`` the bit-exactness count."""
    from hwq.cli import validate as v
    from hwq.export.hls4ml import check_hls4ml, export_hls4ml
    from hwq.paths import claim_work_dir

    spec = v.spec(args.arch or (plan.get("inputs") or {}).get("arch") or "fpga_zu")  # checked in run()
    qfx = _qfx_plan(plan, args, recipe, model, name, spec.name)
    out = claim_work_dir(args.output, "hwq export")
    res = export_hls4ml(model, qfx, spec, example, out)
    summary = res.summary()
    if args.check:
        from models.digits_cnn import load_digits_split

        summary["check"] = check_hls4ml(res, load_digits_split()[2]).to_dict()
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"wrote {res.out_dir}: hls4ml_config.json, qfx_plan.json and the hls4ml project {summary['project']} "
          f"({len(res.layers)} layers with ap_fixed types)")
    if "check" in summary:
        c = summary["check"]
        print(f"hls4ml C++ emulation vs hwq golden model: {c['mismatched_images']} of {c['images']} test images "
              f"differ ({c['mismatched_values']} values, max |diff| {c['max_abs_diff']:g}); compile {c['compile_s']} s, "
              f"predict {c['predict_s']} s")
    return 0
