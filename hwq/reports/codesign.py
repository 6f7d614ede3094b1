"""Regenerate ``reports/codesign.md``: co-design of the accelerator and the precisions.

Run::

    .venv/bin/python -m hwq.reports.codesign            # all cases (ResNet-50 @ 2 mJ on edge_dataflow and
                                                        # bitmod_small, @ 8 mJ, MiniLM @ 1.5 mJ)
    .venv/bin/python -m hwq.reports.codesign --jobs 2

For each case it runs the same pipeline as ``hwq codesign`` (sensitivity once, the precision
ILP at every point of the design space, Pareto set, chosen design, chosen design's spec,
plan, synthesis and co-simulation) and writes the Markdown report, one Pareto plot per case
(``reports/codesign_<model>_<budget>.png``) and the raw sweep (``reports/codesign/<case>/``:
``results.jsonl``, ``summary.json``, ``chosen/``). Every number in the report comes from here.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMMAND = ".venv/bin/python -m hwq.reports.codesign"


@dataclass(frozen=True)
class Case:
    """One report section: a model, an energy budget and a design space."""

    model: str
    budget: str
    space: str
    title: str


CASES: tuple[Case, ...] = (
    Case("resnet50", "2mJ", "edge_dataflow",
         "ResNet-50 (224x224) at 2 mJ per image: dataflow, partial sums, DRAM technology, batch"),
    Case("resnet50", "2mJ", "bitmod_small", "ResNet-50 (224x224, batch 1) at 2 mJ: array shape around bitmod"),
    Case("resnet50", "8mJ", "bitmod_small", "ResNet-50 (224x224, batch 1) at 8 mJ"),
    Case("minilm", "1.5mJ", "bitmod_small", "all-MiniLM-L6-v2 (128 tokens) at 1.5 mJ"),
)


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}"


def run_case(case: Case, out_root: Path, jobs: int, progress: bool, hw: bool = True) -> dict[str, Any]:
    """Run one case; returns the result, the chosen artefacts and the plot path."""
    from hwq.codesign.artifacts import write_chosen
    from hwq.codesign.driver import SUMMARY_FILE, run_codesign, write_json
    from hwq.codesign.plot import plot_pareto
    from hwq.codesign.space import load_space
    from hwq.search.units import parse_energy

    space = load_space(case.space)
    out = out_root / "codesign" / f"{case.model}_{case.budget}_{space.name}"
    t0 = time.perf_counter()
    result = run_codesign(case.model, space, parse_energy(case.budget) * 1e12, out, jobs=jobs, progress=progress)
    artifacts = None
    if hw and result.chosen is not None:
        artifacts = write_chosen(out, case.model, result.specs[result.chosen], result.workload,
                                 result.weight_layers, result.records[result.chosen]["plan"], rtl=False)
    summary = result.summary()
    summary["artifacts"] = artifacts
    write_json(out / SUMMARY_FILE, summary)
    plot = out_root / f"codesign_{case.model}_{case.budget}_{space.name}.png"
    plot_pareto(result.records, result.front, result.chosen, result.presets, plot,
                f"{case.title}: space {space.name} ({len(result.records)} points)", result.budget_pj)
    return {"case": case, "result": result, "artifacts": artifacts, "plot": plot, "out": out,
            "seconds": time.perf_counter() - t0}


def _axes_text(space) -> str:
    """One line per space: each axis and its values (weight-format sets by name)."""
    parts = []
    for k, v in space.axes.items():
        if k == "weight_formats":
            v = [x["name"] if isinstance(x, dict) else "+".join(x) for x in v]
        elif k == "dataflow":
            v = ["+".join(modes) for modes in v]
        elif k == "buffer_kib":
            v = {b: list(sizes) for b, sizes in v.items()}
        else:
            v = list(v)
        parts.append(f"{k} {v}")
    return "; ".join(parts)


def _preset_points(result) -> list[tuple[int, str]]:
    """(point index, preset name) for every point whose spec equals a shipped preset's (name aside)."""
    from hwq.spec import load_spec

    def body(spec) -> dict:
        d = spec.to_dict()
        d.pop("name", None)
        d.pop("description", None)
        return d

    presets = {p["label"]: body(load_spec(p["label"])) for p in result.presets}
    return [(rec["index"], name) for rec, spec in zip(result.records, result.specs)
            for name, pd in presets.items() if body(spec) == pd]


#: Axes whose effect the report tabulates (the dataflow work's axes).
DIGEST_AXES = ("dataflow", "partial_sums", "accumulator_depth", "dram_technology", "batch")


def _axis_digest(result) -> list[str]:
    """For each dataflow-work axis of the space: per value, points within budget and the lowest
    cheapest-plan energy per image (what no plan on those points can go below)."""
    axes = [a for a in DIGEST_AXES if a in result.space.axes]
    if not axes:
        return []
    out = ["", "Effect of each axis (over every point with that value: points within budget, and the lowest "
           "energy per image any plan reaches, i.e. the best point's all-cheapest plan):", "",
           "| axis | value | points | within budget | lowest cheapest plan (mJ/image) |", "| --- | --- | --- | --- | --- |"]
    for a in axes:
        groups: dict[str, list[dict[str, Any]]] = {}
        for rec in result.records:
            v = rec["params"].get(a)
            key = "-" if v is None else ("+".join(v) if isinstance(v, list) else str(v))
            groups.setdefault(key, []).append(rec)
        for key, recs in groups.items():
            low = min((x["cheapest_energy_pj"] for x in recs if "cheapest_energy_pj" in x), default=None)
            out.append(f"| {a} | `{key}` | {len(recs)} | {sum(bool(x.get('feasible')) for x in recs)} | "
                       f"{'-' if low is None else _fmt(low * 1e-9)} |")
    return out + [""]


def _flows(rec: dict[str, Any]) -> str:
    """``accumulate_in_array 50, output_buffer 4``: layers per dataflow of the record's plan."""
    flows = rec.get("plan_dataflows") or {}
    return ", ".join(f"{k} {v}" for k, v in sorted(flows.items())) or "-"


def _plan_mix(plan: list[str]) -> str:
    counts = collections.Counter(plan)
    return ", ".join(f"{lab} x{n}" for lab, n in counts.most_common())


def render(runs: list[dict[str, Any]], out_root: Path) -> str:
    """The Markdown report for the finished cases."""
    from hwq.codesign.area import SRAM_UM2_PER_KIB
    from hwq.codesign.pareto import CHOICE_RULE

    lines = [
        "# Co-design: the accelerator and the precisions together",
        "",
        f"Regenerate everything on this page (numbers, plots, `reports/codesign/*`): `{COMMAND}`",
        "",
        "Each case runs the `hwq codesign` pipeline: the model's layer sensitivity Ω (HAWQ-V3 Hessian",
        "trace x quantization error, computed once, it does not depend on the hardware), then at every",
        "point of the design space the cost model (`hwq.cost.evaluate`) and the precision ILP",
        "(`hwq.search.ilp`, minimise Σ Ω under the energy budget), then the Pareto set over energy,",
        "latency, hardware cost and sensitivity.",
        "",
        f"* **Choice rule**: {CHOICE_RULE}.",
        "* **Baseline**: every shipped preset of the same family, solved by the same ILP under the same",
        "  budget; the best one by the same rule is compared with the chosen design.",
        "* **Area (ASIC, 28 nm)**: PEs x BitMoD PE 1507.7 µm² (4 lanes, 2 bits/cycle; FP16 PE 1968.7 µm²",
        "  for bit-parallel), scaled linearly in lanes and bits per cycle (our assumption), plus SRAM at",
        f"  {SRAM_UM2_PER_KIB:.0f} µm²/KiB (TSMC 28 nm HP 6T cell 0.16 µm², Chipworks 2012, at 70 % array",
        "  efficiency, our assumption). PE energy per cycle is scaled like the area (`hwq/codesign/space.py`).",
        "  The accumulator register files of the `accumulate_in_array` dataflow count as the bits they hold",
        "  at the same density (a lower bound); the DRAM part is off chip and not in the hardware cost.",
        "* **Units**: energy is per image (the budget too), latency per batch (`batch` = images per",
        "  weight load). The chosen design's co-simulation runs its batch and the dataflow the mapper",
        "  picked for that layer.",
        "",
    ]
    for run in runs:
        case, r, art = run["case"], run["result"], run["artifacts"]
        recs = r.records
        unit = recs[0].get("hw_cost_unit", "")
        ax = _axes_text(r.space)
        lines += [f"## {case.title}", "",
                  f"Command: `hwq codesign --model {case.model} --budget {case.budget} --space {case.space}` "
                  f"(space `{r.space.name}`, base preset `{r.space.base}`: {ax}). "
                  f"{len(recs)} points, {sum(bool(x.get('feasible')) for x in recs)} within budget; "
                  f"sensitivity {r.sensitivity_seconds:.1f} s, sweep {r.sweep_seconds:.1f} s, "
                  f"case total {run['seconds']:.0f} s (wall, this machine).", "",
                  f"Model weights: {r.extra.get('weights', '?')}; sensitivity {r.extra.get('sensitivity', '?')} "
                  f"on {r.extra.get('calibration_samples', '?')} calibration samples, "
                  f"{r.extra.get('layers', '?')} weight layers in the ILP.", "",
                  f"![Pareto plot]({run['plot'].relative_to(out_root)})", ""]
        if r.front:
            lines += ["Pareto set (* = chosen):", "",
                      f"| | # | design | batch | dataflows used (layers) | energy (mJ/image) | latency (ms/batch) | "
                      f"hardware ({unit}) | sensitivity Σ Ω |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for i in r.front:
            x = recs[i]
            lines.append(f"| {'*' if i == r.chosen else ''} | {x['index']} | `{x['label']}` | {x.get('batch', 1)} | "
                         f"{_flows(x)} | {_fmt(x['energy_pj'] * 1e-9)} | {_fmt(x['latency_us'] * 1e-3)} | "
                         f"{_fmt(x['hw_cost'])} | {_fmt(x['sensitivity'])} |")
        lines += _axis_digest(r)
        same = _preset_points(r)
        lines += ["", "Shipped presets under the same budget"
                  + (" (" + "; ".join(f"point {i} of the space is preset `{n}` itself" for i, n in same) + ")"
                     if same else "") + ":", "",
                  f"| preset | batch | energy (mJ/image) | latency (ms/batch) | hardware ({unit}) | sensitivity Σ Ω |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for p in r.presets:
            if p.get("feasible"):
                lines.append(f"| `{p['label']}` | {p.get('batch', 1)} | {_fmt(p['energy_pj'] * 1e-9)} | "
                             f"{_fmt(p['latency_us'] * 1e-3)} | {_fmt(p['hw_cost'])} | {_fmt(p['sensitivity'])} |")
            else:
                lines.append(f"| `{p['label']}` | {p.get('batch', 1)} | infeasible: {p.get('reason', '')} | | "
                             f"{_fmt(p['hw_cost'])} | |")
        lines.append("")
        if r.chosen is None:
            cheap = sorted(recs, key=lambda x: x.get("cheapest_energy_pj", float("inf")))[:5]
            lines += [f"**No design point meets the {case.budget} budget**: even the lowest-energy plan of every "
                      "point is above it. The five points closest to it (energy of their cheapest plan):", "",
                      "| # | design | cheapest plan (mJ) | hardware |", "| --- | --- | --- | --- |"]
            lines += [f"| {x['index']} | `{x['label']}` | {_fmt(x['cheapest_energy_pj'] * 1e-9)} | "
                      f"{_fmt(x['hw_cost'])} {unit} |" for x in cheap if "cheapest_energy_pj" in x]
            lines.append("")
            continue
        c = recs[r.chosen]
        lines += [f"**Chosen**: point {c['index']} `{c['label']}`: energy {_fmt(c['energy_pj'] * 1e-9)} mJ per image "
                  f"(budget {case.budget}), latency {_fmt(c['latency_us'] * 1e-3)} ms per batch of {c.get('batch', 1)}, "
                  f"{_fmt(c['hw_cost'])} {unit}, Σ Ω {_fmt(c['sensitivity'])} (ILP status {c.get('solver_status')}). "
                  f"Dataflow modes {' + '.join(c.get('dataflow') or ['output_buffer'])} (layers per dataflow the "
                  f"mapper picked: {_flows(c)}), partial sums {c.get('partial_sums')}, accumulators "
                  f"{str(c['accumulator_depth']) + ' rows' if c.get('accumulator_depth') else 'none'}, DRAM {c.get('dram_technology')} "
                  f"({_fmt(c.get('dram_pj_per_bit', 0), 3)} pJ/bit). Plan: {_plan_mix(c['plan'])}.", ""]
        imp = r.improvement()
        if imp:
            bp = r.presets[r.best_preset]
            lines += [f"**Against the best fixed preset** (`{bp['label']}`) under the same budget: sensitivity "
                      f"ratio {_fmt(imp['sensitivity_ratio'], 3)}x (Σ Ω {_fmt(bp['sensitivity'])} -> "
                      f"{_fmt(c['sensitivity'])}), energy ratio {_fmt(imp['energy_ratio'], 3)}x, latency ratio "
                      f"{_fmt(imp['latency_ratio'], 3)}x, hardware ratio {_fmt(imp['hw_cost_ratio'], 3)}x "
                      "(ratios are preset / chosen: above 1 means the chosen design is better).", ""]
        elif r.best_preset is None:
            lines += ["No shipped preset of this family meets the budget; the chosen design does.", ""]
        if art:
            rel = lambda p: os.path.relpath(run["out"] / p, out_root)  # noqa: E731
            lines.append(f"Chosen design's files: spec `{rel(art['spec'])}`, plan `{rel(art['plan'])}`.")
            syn = art.get("synth")
            if syn:
                what = (f"a {syn['cols']}-column slice of its array (`{syn['arch']}`, same rows, lanes, radix, "
                        f"datatypes)" if syn["sliced"] else "its array")
                lines.append(f"Yosys synthesis (Xilinx cells) of {what}: LUT {syn['LUT']:.0f}, FF {syn['FF']:.0f}, "
                             f"CARRY {syn['CARRY']:.0f}, DSP {syn['DSP']:.0f}, BRAM36 {syn['BRAM']:g}.")
            s = art.get("sim")
            if s:
                what = f" on a {s['sim_cols']}-column slice" if s["sliced"] else ""
                psum = s.get("psum_accesses") or {}
                psum_txt = (f"; psum row accesses [reads, writes] predicted {psum['predicted']}, measured "
                            f"{psum['measured']}" if psum.get("measured") else "")
                lines.append(
                    f"Co-simulation{what} of layer `{s['layer']}` ({s['precision']}, {s.get('dataflow')} dataflow, "
                    f"batch {s.get('batch', 1)}, tile m={s['tile']['m']} k={s['tile']['k']} n={s['tile']['n']}) on "
                    f"{s['simulator']}: {s['outputs_compared'] - s['mismatches']}/{s['outputs_compared']} outputs "
                    f"bit-exact against the golden model; cycles predicted {s['predicted_cycles']}, measured "
                    f"{s['measured_cycles']} ({'match' if s['cycles_match'] else 'MISMATCH'}){psum_txt}."
                    + "".join(f" Skipped `{k['layer']}`: {k['reason']}." for k in s.get("skipped_layers") or []))
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwq.reports.codesign", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports", help="report folder (default: reports/)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", choices=sorted({c.model for c in CASES}), default=None,
                        help="run one model's cases only (the report then holds only those)")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if args.only in (None, c.model)]
    runs = [run_case(c, args.out, args.jobs, sys.stderr.isatty()) for c in cases]
    text = render(runs, args.out)
    path = args.out / "codesign.md"
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
