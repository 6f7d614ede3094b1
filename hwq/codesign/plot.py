"""Pareto plot of a co-design sweep (matplotlib, Agg backend; written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def plot_pareto(records: Sequence[dict[str, Any]], front: Sequence[int], chosen: int | None,
                presets: Sequence[dict[str, Any]], path: Path, title: str, budget_pj: float) -> Path:
    """Two panels: sensitivity vs latency (ms) and sensitivity vs hardware cost; colour = energy (mJ).

    Circles: points whose plan meets the budget (black edge: Pareto set); star: the chosen
    design; orange squares: shipped presets solved under the same budget. Points over budget
    have no plan and are counted in the title. Sensitivity is on a log axis when it spans
    more than a factor of 20.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = records[0].get("hw_cost_unit", "") if records else ""
    feas = [r for r in records if r.get("feasible")]
    n_over = len(records) - len(feas)
    front_idx = {records[i]["index"] for i in front}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    energy = [r["energy_pj"] * 1e-9 for r in feas]
    sens = [r["sensitivity"] for r in feas] + [p["sensitivity"] for p in presets if p.get("feasible")]
    log_y = bool(sens) and min(sens) > 0 and max(sens) / min(sens) > 20
    sc = None
    for ax, xkey, xlabel, xs in ((axes[0], "latency_us", "latency per batch (ms)", 1e-3),
                                 (axes[1], "hw_cost", f"hardware cost ({unit})", 1.0)):
        if feas:
            sc = ax.scatter([r[xkey] * xs for r in feas], [r["sensitivity"] for r in feas], c=energy,
                            cmap="viridis", s=44, linewidths=1.3,
                            edgecolors=["k" if r["index"] in front_idx else "none" for r in feas],
                            label="design points (black edge: Pareto set)")
        if chosen is not None:
            c = records[chosen]
            ax.scatter([c[xkey] * xs], [c["sensitivity"]], marker="*", s=340, c="red", edgecolors="k",
                       label=f"chosen: {c['label']}", zorder=5)
        for p in presets:
            if p.get("feasible"):
                ax.scatter([p[xkey] * xs], [p["sensitivity"]], marker="s", s=80, facecolors="none",
                           edgecolors="tab:orange", linewidths=2, zorder=4)
                ax.annotate(f"preset {p['label']}", (p[xkey] * xs, p["sensitivity"]), fontsize=8,
                            xytext=(5, 5), textcoords="offset points", color="tab:orange")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("model sensitivity Σ Ω (lower is better)")
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if feas:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8)
    else:
        for ax in axes:
            ax.text(0.5, 0.5, "no design point meets the budget", ha="center", va="center", transform=ax.transAxes)
    if sc is not None:
        cbar = fig.colorbar(sc, ax=axes, label="energy per image (mJ)", shrink=0.9)
        cbar.formatter.set_useOffset(False)
        cbar.update_ticks()
    fig.suptitle(f"{title}; budget {budget_pj * 1e-9:g} mJ; {len(feas)} points within budget, {n_over} over "
                 "(not shown)", fontsize=10)
    from hwq.atomic import save_figure  # temp named .NAME.hwq-tmp-PID-XXXX.png (hwq.paths)

    try:
        save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)
    return path
