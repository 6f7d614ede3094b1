"""Cross-check hwq's cost model against ZigZag (the peer DSE tool) on the same hardware: ResNet-50, batch 1.

Issue 11 asks that ``hwq cost`` agree with a peer DSE tool within 10 % on compute + on-chip buffers + DRAM
weights. This script runs that comparison for real:

1. (hwq's venv) reads the spec (default ``int8_parallel``) and derives ZigZag's accelerator and mapping
   descriptions from it (``hwq.reports.zigzag_crosscheck.zigzag_hardware``: PE array, operand precisions,
   buffer capacities, access widths and per-access energies, DRAM energy and width; nothing retyped);
2. exports torchvision's ResNet-50 (random weights: only shapes matter) to ONNX at 1x3x224x224 and marks
   every Conv/Gemm node with ZigZag's precision attributes (``weight_size``, ``act_size``,
   ``output_size`` = the spec's accumulator width);
3. (ZigZag's venv, a subprocess of this script) runs ``zigzag.api.get_hardware_performance_zigzag`` on it,
   minimising energy, and records every layer's energy by operand and memory level, its latency and the
   wall time of the run;
4. (hwq's venv) evaluates the same workload with ``hwq.cost.evaluate`` (``hwq_side``), checks every ZigZag
   layer has hwq's GEMM shape (m = OX*OY, k = C*FX*FY, n = K), and writes ``reports/zigzag_crosscheck.json``
   (per layer and totals, versions, wall times) and its per-layer tables to ``reports/zigzag_crosscheck.md``.

ZigZag is not an hwq dependency. Set it up once in its own venv::

    python3.11 -m venv /tmp/zz/.venv && /tmp/zz/.venv/bin/pip install zigzag-dse==3.9.1 six

(zigzag-dse 3.9.1 imports ``six`` without declaring it.)

Run (about 10-20 minutes, most of it ZigZag's temporal-mapping search)::

    nice -n 10 .venv/bin/python scripts/zigzag_crosscheck.py --zigzag-python /tmp/zz/.venv/bin/python

``--zigzag-side JOB`` is the internal entry point of step 3 (it imports only ZigZag, onnx and yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COMMAND = "nice -n 10 .venv/bin/python scripts/zigzag_crosscheck.py --zigzag-python /tmp/zz/.venv/bin/python"


# ----------------------------------------------------------------------------------------------- ZigZag side
def _zigzag_side(job_path: Path) -> int:
    """Run ZigZag on the job written by the hwq side; write its per-layer results next to the job."""
    import importlib.metadata as md

    import yaml
    from zigzag.api import get_hardware_performance_zigzag

    job = json.loads(job_path.read_text())
    work = job_path.parent
    acc_yaml, map_yaml = work / "accelerator.yaml", work / "mapping.yaml"
    acc_yaml.write_text(yaml.safe_dump(job["accelerator"], sort_keys=False))
    map_yaml.write_text(yaml.safe_dump(job["mapping"], sort_keys=False))
    t0 = time.perf_counter()
    energy, latency, cmes = get_hardware_performance_zigzag(
        workload=job["onnx"], accelerator=str(acc_yaml), mapping=str(map_yaml), opt="energy",
        dump_folder=str(work / "zigzag_out"), lpf_limit=job["lpf_limit"], loma_show_progress_bar=False)
    wall = time.perf_counter() - t0
    layers = []
    for cme, _ in cmes[0][1]:
        dims = {str(k): int(v) for k, v in cme.layer.layer_dim_sizes.items()}
        mem = {str(op): [float(e) for e in levels] for op, levels in cme.mem_energy_breakdown.items()}
        names = {str(op): [lvl.name for lvl in cme.accelerator.memory_hierarchy.get_memory_levels(
            mem_op=cme.memory_operand_links.layer_to_mem_op(op))] for op in cme.mem_energy_breakdown}
        layers.append({"name": cme.layer.name, "dims": dims, "mac_energy": float(cme.mac_energy),
                       "mem_energy": mem, "mem_levels": names,
                       "latency_total2": float(cme.latency_total2), "ideal_cycle": float(cme.ideal_cycle),
                       "ideal_temporal_cycle": float(cme.ideal_temporal_cycle),
                       "mac_spatial_utilization": float(cme.mac_spatial_utilization),
                       "temporal_mapping": str(cme.temporal_mapping)})
    out = {"zigzag_version": md.version("zigzag-dse"), "python": platform.python_version(),
           "wall_s": wall, "energy_total_pj": float(energy), "latency_total_cycles": float(latency),
           "layers": layers}
    (work / "zigzag_result.json").write_text(json.dumps(out, indent=1))
    print(f"zigzag: {len(layers)} layers, {energy / 1e9:.3f} mJ, {wall:.0f} s")
    return 0


# ------------------------------------------------------------------------------------------------ hwq side
def _export_onnx(path: Path, precision: dict[str, int]) -> None:
    """torchvision ResNet-50 (random weights) at 1x3x224x224, Conv/Gemm nodes tagged with ZigZag precisions."""
    import onnx
    import torch
    import torchvision
    from onnx import helper

    model = torchvision.models.resnet50(weights=None).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False, opset_version=13,
                      input_names=["input"], output_names=["logits"])
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))   # ZigZag reads every tensor's shape
    for node in m.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            node.attribute.extend([helper.make_attribute("weight_size", precision["W"]),
                                   helper.make_attribute("act_size", precision["I"]),
                                   helper.make_attribute("output_size", precision["O"])])
    onnx.save(m, str(path))


def _onnx_layers(path: Path, hwq_layers: list[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    """(node name, C, FY, FX) of every Conv/Gemm node of the ONNX file, in graph order, checked against hwq's
    weight layers in order (same count, ``n`` = output channels, ``k`` = C * FY * FX)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    out = []
    for node in m.graph.node:
        if node.op_type == "Conv":
            kk, c, fy, fx = inits[node.input[1]]
        elif node.op_type == "Gemm":
            (kk, c), fy, fx = inits[node.input[1]], 1, 1       # torch exports Linear with transB=1: [N, K]
        else:
            continue
        out.append((node.name, int(c), int(fy), int(fx), int(kk)))
    if len(out) != len(hwq_layers):
        raise SystemExit(f"ONNX has {len(out)} Conv/Gemm nodes, hwq {len(hwq_layers)} weight layers")
    for (name, c, fy, fx, kk), h in zip(out, hwq_layers):
        if (c * fy * fx, kk) != (h["k"], h["n"]):
            raise SystemExit(f"ONNX {name} (k={c * fy * fx}, n={kk}) does not line up with hwq {h['name']} "
                             f"(k={h['k']}, n={h['n']})")
    return [t[:4] for t in out]


def _zigzag_terms(z: dict[str, Any]) -> dict[str, float]:
    """ZigZag's energies (pJ) on hwq's compared terms, from one layer's record."""
    level = lambda op, name: sum(e for e, n in zip(z["mem_energy"][op], z["mem_levels"][op]) if n == name)  # noqa: E731
    return {"compute": z["mac_energy"], "weight_buffer": level("W", "weight_buffer"),
            "activation_buffer": level("I", "activation_buffer"), "output_buffer": level("O", "output_buffer"),
            "dram_weights": level("W", "dram"),
            "weight_register": level("W", "w_reg"),
            "dram_inputs": level("I", "dram"), "dram_outputs": level("O", "dram")}


def compare(hwq: dict[str, Any], zz: dict[str, Any], onnx_names: list[str]) -> dict[str, Any]:
    """Join the two sides layer by layer (hwq's layer ``i`` is ONNX node ``onnx_names[i]``, which must have
    the same GEMM shape in ZigZag) into the recorded comparison."""
    from hwq.reports.zigzag_crosscheck import TERMS

    by_name = {z["name"]: z for z in zz["layers"]}
    if len(hwq["layers"]) != len(zz["layers"]) or set(onnx_names) != set(by_name):
        raise SystemExit(f"hwq has {len(hwq['layers'])} weight layers, ZigZag {len(zz['layers'])} "
                         f"(not the ONNX nodes paired with them)")
    rows = []
    for h, z in zip(hwq["layers"], (by_name[n] for n in onnx_names)):
        d = z["dims"]
        shape = (d.get("OX", 1) * d.get("OY", 1) * d.get("B", 1) * d.get("D", 1),
                 d.get("C", 1) * d.get("FX", 1) * d.get("FY", 1),
                 d.get("K", 1))
        if shape != (h["m"], h["k"], h["n"]):
            raise SystemExit(f"layer {h['name']}: hwq GEMM {h['m']}x{h['k']}x{h['n']}, ZigZag {z['name']} {shape}")
        zt = _zigzag_terms(z)
        hc, zc = sum(h[k] for k in TERMS), sum(zt[k] for k in TERMS)
        rows.append({"name": h["name"], "zigzag_name": z["name"], "m": h["m"], "k": h["k"], "n": h["n"],
                     "hwq_mapping": h["mapping"], "zigzag_temporal_mapping": z["temporal_mapping"],
                     "hwq": {k: h[k] for k in TERMS}, "zigzag": zt, "hwq_compared_pj": hc, "zigzag_compared_pj": zc,
                     "ratio": hc / zc,
                     "hwq_compute_cycles": h["compute_cycles"], "hwq_latency_cycles": h["latency_cycles"],
                     "zigzag_ideal_temporal_cycles": z["ideal_temporal_cycle"],
                     "zigzag_latency_cycles": z["latency_total2"],
                     "zigzag_spatial_utilization": z["mac_spatial_utilization"]})
    ratios = [r["ratio"] for r in rows]
    tot_h = {k: sum(r["hwq"][k] for r in rows) for k in TERMS}
    tot_z = {k: sum(r["zigzag"][k] for r in rows) for k in TERMS}
    th, tz = sum(tot_h.values()), sum(tot_z.values())
    lat = {"hwq_compute_cycles": sum(r["hwq_compute_cycles"] for r in rows),
           "hwq_latency_cycles": sum(r["hwq_latency_cycles"] for r in rows),
           "zigzag_ideal_temporal_cycles": sum(r["zigzag_ideal_temporal_cycles"] for r in rows),
           "zigzag_latency_cycles": sum(r["zigzag_latency_cycles"] for r in rows)}
    return {"layers": rows,
            "totals": {"hwq": tot_h, "zigzag": tot_z, "hwq_compared_pj": th, "zigzag_compared_pj": tz,
                       "ratio": th / tz, "per_term_ratio": {k: tot_h[k] / tot_z[k] if tot_z[k] else None
                                                            for k in TERMS}},
            "per_layer_ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                                "min_layer": rows[ratios.index(min(ratios))]["name"],
                                "max_layer": rows[ratios.index(max(ratios))]["name"]},
            "latency": lat}


def markdown(run: dict[str, Any]) -> str:
    """A per-layer table of one recorded run (uJ)."""
    from hwq.reports.zigzag_crosscheck import TERMS

    c = run["comparison"]
    lines = [f"ZigZag {run['zigzag_version']} vs hwq on `{run['preset']}`, ResNet-50, {run['choice']}, batch "
             f"{run['batch']}: compared terms (uJ per image)", "",
             "| layer | hwq | ZigZag | ratio | " + " | ".join(f"{t} hwq/ZZ" for t in TERMS) + " |",
             "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in TERMS) + " |"]
    for r in c["layers"]:
        lines.append(f"| {r['name']} | {r['hwq_compared_pj'] / 1e6:.1f} | {r['zigzag_compared_pj'] / 1e6:.1f} | "
                     f"{r['ratio']:.3f} | " + " | ".join(f"{r['hwq'][t] / 1e6:.1f}/{r['zigzag'][t] / 1e6:.1f}"
                                                           for t in TERMS) + " |")
    t = c["totals"]
    lines.append(f"| **total** | {t['hwq_compared_pj'] / 1e6:.1f} | {t['zigzag_compared_pj'] / 1e6:.1f} | "
                 f"{t['ratio']:.3f} | " + " | ".join(f"{t['hwq'][k] / 1e6:.1f}/{t['zigzag'][k] / 1e6:.1f}"
                                                     for k in TERMS) + " |")
    return "\n".join(lines)


def _hwq_eval_seconds(wl, spec, choice, repeat: int = 20) -> float:
    """Median wall time of one ``hwq.cost.evaluate`` of the whole workload at one choice (s)."""
    from hwq.cost import evaluate

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        evaluate(wl, spec, [choice])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Both sides of the cross-check; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zigzag-side", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--zigzag-python", default="/tmp/zz/.venv/bin/python",
                    help="python of the venv where zigzag-dse is installed")
    ap.add_argument("--preset", default="int8_parallel")
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--act-bits", type=int, default=8)
    ap.add_argument("--work", type=Path, default=Path("/tmp/zz/work"), help="scratch folder (ONNX, ZigZag output)")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "zigzag_crosscheck.json")
    ap.add_argument("--lpf-limit", type=int, default=6, help="ZigZag LOMA loop-prime-factor limit (its default)")
    ap.add_argument("--reuse", action="store_true", help="reuse work/zigzag_result.json instead of re-running ZigZag")
    args = ap.parse_args(argv)
    if args.zigzag_side:
        return _zigzag_side(args.zigzag_side)

    sys.path.insert(0, str(REPO))
    from hwq.cost import Choice
    from hwq.errors import HwqError
    from hwq.reports.zigzag_crosscheck import VARIANTS, hwq_side, variant_spec, zigzag_hardware
    from hwq.spec import load_spec
    from hwq.workload import capture
    from models.registry import get_recipe

    reuse = args.reuse and (args.work.resolve() / args.preset / "zigzag_result.json").exists()
    if not reuse and not Path(args.zigzag_python).exists():
        print(f"error: {args.zigzag_python} not found; install ZigZag in its own venv: python3.11 -m venv "
              "/tmp/zz/.venv && /tmp/zz/.venv/bin/pip install zigzag-dse==3.9.1 six", file=sys.stderr)
        return 2
    try:
        spec = load_spec(args.preset)
    except HwqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fmt = "int"
    r = get_recipe("resnet50")
    wl = capture(r.build("random"), r.example_input())
    try:
        hw = zigzag_hardware(spec, fmt, args.bits, args.act_bits)
        sides = {v: hwq_side(wl, variant_spec(spec, v), fmt, args.bits, args.act_bits) for v in VARIANTS}
    except HwqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    side = sides["as_built"]
    work = args.work.resolve() / args.preset
    work.mkdir(parents=True, exist_ok=True)
    onnx_path = work / "resnet50.onnx"
    job_path = work / "job.json"
    result = work / "zigzag_result.json"
    if not reuse:
        _export_onnx(onnx_path, hw["precision"])
    pairs = _onnx_layers(onnx_path, side["layers"])       # ONNX node of each hwq weight layer, shapes checked
    if not reuse:
        hw = zigzag_hardware(spec, fmt, args.bits, args.act_bits, pairs)
        job = {"accelerator": hw["accelerator"], "mapping": hw["mapping"], "onnx": str(onnx_path),
               "lpf_limit": args.lpf_limit}
        job_path.write_text(json.dumps(job, indent=1))
        subprocess.run([args.zigzag_python, str(Path(__file__).resolve()), "--zigzag-side", str(job_path)],
                       check=True, cwd=str(work))
    zz = json.loads(result.read_text())
    hw = json.loads(job_path.read_text()) | {k: hw[k] for k in ("precision", "unit_energy_pj", "cycles_per_weight")}
    hw.pop("onnx")
    comparisons = {v: compare(sd, zz, [p[0] for p in pairs]) for v, sd in sides.items()}
    comparison = comparisons["as_built"]
    run = {"preset": args.preset, "choice": side["choice"], "batch": side["batch"], "model": "resnet50",
           "command": COMMAND + ("" if args.preset == "int8_parallel" else f" --preset {args.preset}"),
           "zigzag_version": zz["zigzag_version"], "zigzag_python": zz["python"],
           "zigzag_wall_s": zz["wall_s"], "zigzag_opt": "energy", "zigzag_lpf_limit": args.lpf_limit,
           "zigzag_total_energy_pj": zz["energy_total_pj"], "zigzag_total_latency_cycles": zz["latency_total_cycles"],
           "hwq_eval_s": _hwq_eval_seconds(wl, spec, Choice(fmt, args.bits, args.act_bits)),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), nice 10",
           "hardware": hw,
           "hwq": {v: {"totals": sd["totals"], "excluded_pj": sd["excluded_pj"],
                       "latency_cycles": sd["latency_cycles"], "compute_cycles": sd["compute_cycles"]}
                   for v, sd in sides.items()},
           "comparison": comparison,
           "variants": {v: {"partial_sums": VARIANTS[v] or spec.dataflow.partial_sums,
                            "totals": c["totals"], "per_layer_ratio": c["per_layer_ratio"],
                            "layers": [{"name": r["name"], "hwq": r["hwq"], "ratio": r["ratio"]}
                                       for r in c["layers"]]}
                        for v, c in comparisons.items()}}
    data = {"command": COMMAND, "runs": {}}
    if args.out.exists():
        try:
            data["runs"] = json.loads(args.out.read_text()).get("runs", {})
        except json.JSONDecodeError:
            pass
    data["runs"][args.preset] = run
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    md = args.out.with_suffix(".md")
    md.write_text(f"# ZigZag cross-check, per layer\n\nWritten by `{COMMAND}` (`--preset NAME` per preset) with\n"
                  f"`{args.out.name}`; the summary is section 6 of `cost_model.md`.\n\n"
                  + "\n\n".join(markdown(r) for r in data["runs"].values()) + "\n")
    print(markdown(run))
    t = comparison["totals"]
    p = comparison["per_layer_ratio"]
    e = comparisons["psums_elided"]["totals"]["ratio"]
    print(f"\ntotal hwq/ZigZag {t['ratio']:.4f} (psums elided: {e:.4f}); per layer median {p['median']:.3f}, "
          f"min {p['min']:.3f} ({p['min_layer']}), max {p['max']:.3f} ({p['max_layer']}); ZigZag {zz['wall_s']:.0f} s, "
          f"hwq {run['hwq_eval_s'] * 1e3:.1f} ms per evaluation; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
