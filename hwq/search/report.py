"""Write an explore report directory atomically: plan.json, plan.csv, report.md and plots.

Layout (``reports/<model>-<arch>-<budget>/`` by default)::

    plan.json            the plan (hwq.search.plan schema)
    plan.csv             one row per layer
    report.md            summary, comparison with greedy and uniform precision, per-layer table
    bits_per_layer.png   weight/activation bits per layer
    energy_per_layer.png energy per layer split by component (compute, buffers, DRAM, static)
    pareto.png           ILP Pareto front (sensitivity vs energy) with the uniform-precision points
    timings.json         wall time per stage (the other files hold none: reruns are byte-identical)

The directory is built under a temporary name next to the target and renamed into place.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

FILES: tuple[str, ...] = ("plan.json", "plan.csv", "report.md", "bits_per_layer.png", "energy_per_layer.png",
                          "pareto.png")
#: Written beside FILES: wall time per stage, s (not deterministic, so kept out of FILES' contents).
TIMINGS_FILE = "timings.json"


def default_out_dir(model: str, arch: str, budget_text: str) -> Path:
    """``reports/<model>-<arch>-<budget>`` (budget normalised, e.g. ``2mJ``)."""
    from models.resolve import slug

    return Path("reports") / f"{slug(model)}-{arch}-{budget_text}"


def _write_csv(path: Path, plan: Mapping[str, Any]) -> None:
    cols = ["name", "choice", "format", "bits", "act_bits", "group_size", "energy_pj", "latency_cycles",
            "weight_bits", "sensitivity"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for layer in plan["layers"]:
            w.writerow(["" if layer.get(c) is None else layer.get(c) for c in cols])


def _plots(dirpath: Path, plan: Mapping[str, Any], pareto: Sequence[Any], uniform: Sequence[Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layers = plan["layers"]
    x = np.arange(len(layers))
    width = max(6.0, 0.16 * len(layers) + 2)

    fig, ax = plt.subplots(figsize=(width, 3.4))
    ax.bar(x - 0.2, [l["bits"] for l in layers], 0.4, label="weight bits")
    ax.bar(x + 0.2, [l["act_bits"] or 0 for l in layers], 0.4, label="activation bits")
    ax.set_xticks(x, [l["name"] for l in layers], rotation=90, fontsize=6)
    ax.set_ylabel("bits")
    ax.set_title(f"{plan['inputs']['model']} on {plan['inputs']['arch']}: precision per layer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(dirpath / "bits_per_layer.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(width, 3.4))
    keys = sorted({k for l in layers for k in (l.get("breakdown_pj") or {})})
    bottom = np.zeros(len(layers))
    if keys:
        for k in keys:
            vals = np.array([(l.get("breakdown_pj") or {}).get(k) or 0.0 for l in layers]) * 1e-6
            ax.bar(x, vals, bottom=bottom, label=k)
            bottom += vals
    else:
        ax.bar(x, np.array([l["energy_pj"] for l in layers]) * 1e-6, label="total")
    ax.set_xticks(x, [l["name"] for l in layers], rotation=90, fontsize=6)
    ax.set_ylabel("energy (uJ)")
    ax.set_title("energy per layer at the chosen precision")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(dirpath / "energy_per_layer.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if pareto:
        pts = sorted(pareto, key=lambda p: p.energy_pj)
        ax.plot([p.energy_pj * 1e-9 for p in pts], [max(p.sensitivity, 1e-30) for p in pts], "o-", label="ILP optimum")
    for u in uniform:
        ax.scatter([u.energy_pj * 1e-9], [max(u.sensitivity, 1e-30)], marker="x")
        ax.annotate(u.label, (u.energy_pj * 1e-9, max(u.sensitivity, 1e-30)), fontsize=6)
    chosen = plan["totals"]
    ax.scatter([chosen["energy_pj"] * 1e-9], [max(chosen["sensitivity"], 1e-30)], marker="*", s=160, color="red",
               label="this plan", zorder=5)
    budget_j = plan["inputs"]["budget"]["energy_j"]
    ax.axvline(budget_j * 1e3, color="grey", linestyle="--", label="energy budget")
    ax.set_xlabel("energy per inference (mJ)")
    ax.set_ylabel("total sensitivity (sum of Omega)")
    ax.set_yscale("log")
    ax.set_title("Pareto front vs uniform precision")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(dirpath / "pareto.png", dpi=110)
    plt.close(fig)


def _fmt_e(pj: float | None) -> str:
    from hwq.search.units import format_si

    return "-" if pj is None else format_si(pj * 1e-12, "J")


def _markdown(plan: Mapping[str, Any], command: str, notes: Sequence[str]) -> str:
    from hwq.search.units import format_si

    inp, tot, sol = plan["inputs"], plan["totals"], plan["solver"]
    lines = [f"# Precision plan: {inp['model']} on {inp['arch']}, budget {inp['budget']['text']}", "",
             f"Regenerate with: `{command}`", ""]
    for n in notes:
        lines += [f"> **Note:** {n}", ""]
    lines += ["## Inputs", "",
              f"- model: `{inp['model']}`, weights: {inp['weights']}",
              f"- calibration data: {inp['calibration']}",
              f"- accelerator: `{inp['arch']}` ({len(inp.get('choices', []))} precision choices: "
              f"{', '.join(inp.get('choices', []))})",
              f"- sensitivity: {inp['sensitivity']}",
              f"- energy budget: {inp['budget']['text']}"
              + (f"; latency budget: {format_si(inp['latency_budget_s'], 's')}" if inp.get("latency_budget_s") else "")
              + (f"; model-size budget: {inp['max_size_bytes'] / 1e6:.4g} MB" if inp.get("max_size_bytes") else ""),
              f"- options: {', '.join(f'{k}={v}' for k, v in inp.get('options', {}).items())}",
              f"- versions: {', '.join(f'{k} {v}' for k, v in plan['versions'].items())}", "",
              "## Result", "",
              f"Solver {sol['name']}: status **{sol['status']}**, "
              f"{'proven optimal' if sol['optimal'] else 'not proven optimal'}.", "",
              "| plan | energy | latency | weights | total sensitivity |", "| --- | --- | --- | --- | --- |"]

    def row(name: str, t: Mapping[str, Any]) -> str:
        lat = f"{format_si(t['latency_s'], 's')}" if t.get("latency_s") is not None else "-"
        size = f"{t['size_bytes'] / 1e6:.3f} MB" if t.get("size_bytes") is not None else "-"
        return f"| {name} | {_fmt_e(t.get('energy_pj'))} | {lat} | {size} | {t['sensitivity']:.4g} |"

    lines.append(row("**ILP (this plan)**", tot))
    base = plan.get("baselines", {})
    if base.get("greedy"):
        lines.append(row("greedy (sensitivity per pJ)", base["greedy"]))
    if base.get("best_uniform"):
        lines.append(row(f"best uniform that fits ({base['best_uniform']['choice']})", base["best_uniform"]))
    elif "best_uniform" in base:
        lines.append("| best uniform that fits | none fits the budget | | | |")
    counts: dict[str, int] = {}
    for layer in plan["layers"]:
        counts[layer["choice"]] = counts.get(layer["choice"], 0) + 1
    lines += ["", "Choices used: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])),
              "", "![bits per layer](bits_per_layer.png)", "", "![energy per layer](energy_per_layer.png)", "",
              "![Pareto front](pareto.png)", "", "## Per layer", "",
              "| layer | choice | group | energy | latency (cycles) | sensitivity |",
              "| --- | --- | --- | --- | --- | --- |"]
    for layer in plan["layers"]:
        lat = "-" if layer["latency_cycles"] is None else f"{layer['latency_cycles']:.0f}"
        lines.append(f"| {layer['name']} | {layer['choice']} | {layer['group_size'] or 'row'} | "
                     f"{_fmt_e(layer['energy_pj'])} | {lat} | {layer['sensitivity']:.3g} |")
    lines.append("")
    return "\n".join(lines)


def write_report(out_dir: str | Path, plan: Mapping[str, Any], *, command: str, pareto: Sequence[Any] = (),
                 uniform: Sequence[Any] = (), notes: Sequence[str] = (),
                 timings: Mapping[str, float] | None = None) -> Path:
    """Write every file of :data:`FILES` into ``out_dir``, atomically (temp dir + rename). Returns the path.

    ``plan.json``, ``plan.csv`` and ``report.md`` hold no wall times, so the same run gives the same
    bytes; ``timings`` (seconds per stage) go to ``timings.json``. The folder policy is
    :mod:`hwq.paths` (the caller checks it before the work: :func:`hwq.paths.check_output_dir`).
    """
    from hwq.atomic import atomic_dir

    out = Path(out_dir)
    with atomic_dir(out, marker="hwq explore") as tmp:
        (tmp / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
        _write_csv(tmp / "plan.csv", plan)
        (tmp / "report.md").write_text(_markdown(plan, command, notes))
        if timings is not None:
            (tmp / "timings.json").write_text(json.dumps({k: round(float(v), 3) for k, v in timings.items()},
                                                         indent=2) + "\n")
        _plots(tmp, plan, pareto, uniform)
    return out
