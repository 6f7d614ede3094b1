"""``hwq finetune --plan plan.json``: short QAT of a precision plan, distilled from the float model.

Reads a plan written by ``hwq explore`` (its model from ``inputs.model`` unless ``--model``),
quantizes the model by the plan, calibrates the activation scales, fine-tunes on the
calibration data with distillation from the float model (:mod:`hwq.quant.finetune`), and
reports the measured quality before and after. Writes the fine-tuned weights as a state dict
of the float model (``--out``, default ``finetuned.pt`` beside the plan: feed it back with
``hwq explore --weights`` or ``quantize_model``) and ``finetune.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

HELP = "fine-tune a precision plan (QAT with distillation from the float model on the calibration data)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hwq finetune``."""
    parser.add_argument("--plan", required=True, help="plan.json written by hwq explore")
    parser.add_argument("--model", help="model recipe name (default: the plan's inputs.model)")
    parser.add_argument("--weights", help="float checkpoint to start from (default: the recipe's weights)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200)")
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam learning rate (default per model: hwq.quant.finetune.DEFAULT_LR)")
    parser.add_argument("--temperature", type=float, default=2.0, help="distillation temperature for logits (default 2)")
    parser.add_argument("--calib-samples", type=int, default=None,
                        help="calibration samples to train on (default per model: "
                             "hwq.quant.finetune.DEFAULT_CALIB_SAMPLES)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto (default): the GPU when present, else CPU")
    parser.add_argument("--seed", type=int, default=0, help="torch seed (default 0)")
    parser.add_argument("--out", help="fine-tuned float state dict (default: finetuned.pt beside the plan)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def quality_function(model_name: str, float_model, batches) -> tuple[Callable[[Any], float], str]:
    """The measured quality of a model (higher is better) and its description.

    digits_cnn: top-1 accuracy on the 540 held-out test images (training images are the
    calibration data); minilm: mean cosine to the float embeddings of the fixed sentences;
    other models: mean cosine between the quantized and float outputs on the calibration data.
    """
    if model_name == "digits_cnn":
        from models.digits_cnn import evaluate

        return evaluate, "top-1 accuracy on the 540 held-out digits test images"
    if model_name == "minilm":
        from models.minilm import SENTENCES, embed, embedding_cosine

        ref = embed(float_model, SENTENCES)
        return (lambda m: embedding_cosine(m, ref, SENTENCES)), \
            f"mean cosine to the float embeddings of {len(SENTENCES)} sentences"
    from hwq.search.refine import _output_metric

    return _output_metric(float_model, batches).score, "mean cosine to the float outputs on the calibration data"


def run(args: argparse.Namespace) -> int:
    """Validate, fine-tune, measure, write."""
    from hwq.cli import validate as v
    from hwq.errors import UsageError

    # Every check before the model is built (hwq/cli/validate.py).
    plan_path = Path(args.plan)
    plan = v.plan_file(args.plan, "--plan")
    if not plan["layers"]:
        raise UsageError(f"--plan {args.plan}: the 'layers' list is empty; give a plan.json written by hwq explore")
    name = args.model or (plan.get("inputs") or {}).get("model")
    if not name:
        raise UsageError(f"--plan {args.plan} does not name its model; pass --model")
    v.int_at_least(args.steps, "--steps", 1, why="0 steps would only repeat the PTQ measurement")
    v.int_at_least(args.calib_samples, "--calib-samples", 1)
    v.finite_float(args.lr, "--lr")
    v.finite_float(args.temperature, "--temperature")
    v.int_at_least(args.seed, "--seed", 0, 2**32 - 1)
    recipe = v.model(name)
    if args.weights is not None:
        v.input_path(args.weights, "--weights", "a float checkpoint (.pt) of the model")
    out = v.output_file(args.out if args.out else plan_path.with_name("finetuned.pt"), "--out")
    v.output_file(out.with_name("finetune.json"), "--out (finetune.json beside it)")

    import torch

    from hwq.quant import calibrate, quantize_model
    from hwq.quant.finetune import default_calib_samples, default_lr, finetune

    model = recipe.build(args.weights).eval()
    try:
        quantize_model(model, plan)  # bad layer names or formats fail before any training
    except ValueError as err:
        raise UsageError(f"--plan {args.plan} does not fit {name}: {err}") from None
    n = args.calib_samples or default_calib_samples(name)
    batches = list(recipe.calibration(n))
    lr = args.lr if args.lr is not None else default_lr(name)
    quality, desc = quality_function(name, model, batches)
    with torch.no_grad():
        ptq = quantize_model(model, plan)
        calibrate(ptq, batches)
        before = float(quality(ptq))
        float_q = float(quality(model))
    res = finetune(model, plan, batches, steps=args.steps, lr=lr, temperature=args.temperature, device=args.device,
                   seed=args.seed)
    with torch.no_grad():
        after = float(quality(res.model))
    float_keys = set(model.state_dict())
    state = {k: v.detach().cpu().clone() for k, v in res.model.state_dict().items() if k in float_keys}
    from hwq.atomic import atomic_path, write_text

    with atomic_path(out, suffix=".pt") as tmp:  # .NAME.hwq-tmp-PID-XXXX.pt (hwq.paths)
        torch.save(state, tmp)
    summary = {"model": name, "plan": str(plan_path), "metric": desc, "float": float_q, "before": before,
               "after": after, "steps": res.steps, "lr": lr, "calib_samples": n, "device": res.device,
               "loss_first": res.losses[0] if res.losses else None, "loss_last": res.losses[-1] if res.losses else None,
               "seconds": round(res.seconds, 2), "weights_out": str(out)}
    jpath = out.with_name("finetune.json")
    write_text(jpath, json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{name}: {desc}\nfloat {float_q:.4f}; plan after calibration (PTQ) {before:.4f}; "
              f"after {res.steps} QAT steps on {res.device} {after:.4f} ({after - before:+.4f})\n"
              f"wrote {out} and {jpath}")
    sys.stdout.flush()
    return 0
