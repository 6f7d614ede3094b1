"""plan.json: the per-layer precision plan ``hwq explore`` writes and ``hwq.quant.quantize_model`` reads.

Schema (``"schema": "hwq.plan/1"``)::

    {
      "schema": "hwq.plan/1",
      "inputs":   {"model", "arch", "budget": {"text", "energy_j"}, "latency_budget_s", "max_size_bytes",
                   "sensitivity", "calibration", "weights", "solver", "options": {...}},
      "versions": {"hwq", "torch", "pulp", "python"},
      "solver":   {"name", "status", "optimal", "objective"},
      "totals":   {"energy_pj", "energy_j", "latency_cycles", "latency_s", "weight_bits", "size_bytes",
                   "sensitivity", "layers"},
      "layers":   [{"name", "choice", "format", "bits", "act_bits", "group_size", "energy_pj",
                    "latency_cycles", "weight_bits", "sensitivity", "breakdown_pj": {...}}],
      "baselines": {"greedy": {...totals}, "best_uniform": {"choice", ...totals} | null}
    }

No wall times: the same inputs give the same bytes (``hwq explore`` writes timings to
``timings.json`` beside the plan).

Units: energy in pJ (``energy_j`` in joules), latency in cycles (``latency_s`` in seconds at
the spec's clock), storage in bits (``size_bytes`` in bytes), sensitivity dimensionless.
"""

from __future__ import annotations

import platform
from typing import Any, Mapping, Sequence

import numpy as np

SCHEMA = "hwq.plan/1"


def versions() -> dict[str, str]:
    """Versions of hwq, torch, pulp and Python that produced a plan."""
    import hwq

    out = {"hwq": hwq.__version__, "python": platform.python_version()}
    for mod in ("torch", "pulp"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing optional module is reported as such
            out[mod] = "unavailable"
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else x


def totals_dict(totals: Mapping[str, float], clock_mhz: float | None) -> dict[str, Any]:
    """Totals with derived SI fields (J, s, bytes)."""
    out: dict[str, Any] = {k: _num(v) for k, v in totals.items()}
    if "energy_pj" in totals:
        out["energy_j"] = totals["energy_pj"] * 1e-12
    if "latency_cycles" in totals and clock_mhz:
        out["latency_s"] = totals["latency_cycles"] / (clock_mhz * 1e6)
    if "weight_bits" in totals:
        out["size_bytes"] = totals["weight_bits"] / 8
    return out


def build_plan(*, problem, solution, choices: Sequence[Any], group_sizes: Sequence[int | None],
               inputs: Mapping[str, Any], breakdown_pj: Mapping[str, np.ndarray] | None = None,
               clock_mhz: float | None = None, baselines: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The plan.json dict for ``solution.assignment`` over ``problem`` (see the module docstring)."""
    layers = []
    for l, c in enumerate(solution.assignment):
        ch = choices[c]
        entry = {
            "name": problem.layer_names[l],
            "choice": problem.choice_labels[c],
            "format": ch.fmt,
            "bits": int(ch.bits),
            "act_bits": None if ch.act_bits is None else int(ch.act_bits),
            "group_size": group_sizes[l],
            "energy_pj": _num(problem.energy_pj[l, c]),
            "latency_cycles": _num(problem.latency_cycles[l, c]) if problem.latency_cycles is not None else None,
            "weight_bits": _num(problem.weight_bits[l, c]) if problem.weight_bits is not None else None,
            "sensitivity": _num(problem.sensitivity[l, c]),
        }
        if breakdown_pj:
            entry["breakdown_pj"] = {k: _num(v[l, c]) for k, v in breakdown_pj.items()}
        layers.append(entry)
    totals = totals_dict(solution.totals, clock_mhz)
    totals["layers"] = len(layers)
    return {
        "schema": SCHEMA,
        "inputs": dict(inputs),
        "versions": versions(),
        "solver": {"name": solution.solver, "status": solution.status, "optimal": bool(solution.optimal),
                   "objective": _num(solution.objective)},
        "totals": totals,
        "layers": layers,
        "baselines": dict(baselines or {}),
    }


def validate_plan(plan: Mapping[str, Any]) -> None:
    """Raise ValueError if ``plan`` lacks a field of the schema (used by tests and readers)."""
    for key in ("schema", "inputs", "versions", "solver", "totals", "layers"):
        if key not in plan:
            raise ValueError(f"plan lacks {key!r}")
    if plan["schema"] != SCHEMA:
        raise ValueError(f"plan schema {plan['schema']!r} is not {SCHEMA!r}")
    for i, layer in enumerate(plan["layers"]):
        for key in ("name", "format", "bits", "act_bits", "group_size", "energy_pj", "latency_cycles", "sensitivity"):
            if key not in layer:
                raise ValueError(f"plan layer #{i} lacks {key!r}")
