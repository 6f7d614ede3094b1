"""Greedy baseline allocator: the obvious heuristic the ILP has to beat.

Start every decision unit (layer or tied group) at its cheapest-energy allowed choice, then
repeatedly apply the single upgrade with the best sensitivity reduction per extra pJ that
keeps every budget met, until none fits.
"""

from __future__ import annotations

import time

import numpy as np

from hwq.errors import UnsatisfiableError
from hwq.search.ilp import Solution
from hwq.search.problem import Problem


def _fits(problem: Problem, totals: dict[str, float]) -> bool:
    for key, bound in (("energy_pj", problem.energy_budget_pj), ("latency_cycles", problem.latency_budget_cycles),
                       ("weight_bits", problem.size_budget_bits)):
        if bound is not None and key in totals and totals[key] > bound * (1 + 1e-12):
            return False
    return True


def _start(problem: Problem, units: list[list[int]]) -> list[int]:
    """Per unit, the allowed choice with the least summed budget use (each metric over its budget)."""
    use = np.zeros_like(problem.energy_pj)
    for key, bound in (("energy_pj", problem.energy_budget_pj), ("latency_cycles", problem.latency_budget_cycles),
                       ("weight_bits", problem.size_budget_bits)):
        arr = getattr(problem, key)
        if arr is not None and (bound is not None or key == "energy_pj"):
            use += arr / (bound if bound else max(float(arr.sum()), 1e-30))
    a = [0] * len(problem.layer_names)
    for g in units:
        cand = np.flatnonzero(problem.allowed[g[0]])
        c = int(cand[np.argmin(use[g][:, cand].sum(axis=0))])
        for i in g:
            a[i] = c
    return a


def greedy(problem: Problem) -> Solution:
    """Greedy plan under the problem's budgets (raises :class:`UnsatisfiableError` if even the start does not fit)."""
    t0 = time.perf_counter()
    problem.check_bounds()
    units = problem.units()
    a = _start(problem, units)
    if not _fits(problem, problem.totals(a)):
        raise UnsatisfiableError("greedy: its starting plan (least budget use) breaks a budget; use the ILP")
    metrics = [(key, getattr(problem, key), bound) for key, bound in
               (("energy_pj", problem.energy_budget_pj), ("latency_cycles", problem.latency_budget_cycles),
                ("weight_bits", problem.size_budget_bits)) if bound is not None and getattr(problem, key) is not None]
    # Per unit and choice: summed sensitivity, energy and constrained metrics (units x choices).
    sens_u = np.array([problem.sensitivity[g].sum(axis=0) for g in units])
    energy_u = np.array([problem.energy_pj[g].sum(axis=0) for g in units])
    metric_u = [np.array([arr[g].sum(axis=0) for g in units]) for _, arr, _ in metrics]
    allowed_u = np.array([problem.allowed[g[0]] for g in units])
    cur = np.array([a[g[0]] for g in units])
    rows = np.arange(len(units))
    while True:
        totals = [m[rows, cur].sum() for m in metric_u]
        d_sens = sens_u - sens_u[rows, cur][:, None]
        d_energy = energy_u - energy_u[rows, cur][:, None]
        ok = allowed_u & (d_sens < 0)
        for (_, _, bound), m, tot in zip(metrics, metric_u, totals):
            ok &= tot + (m - m[rows, cur][:, None]) <= bound * (1 + 1e-12)
        if not ok.any():
            break
        score = np.where(ok, -d_sens / np.maximum(d_energy, 1e-30), -np.inf)  # sensitivity removed per extra pJ
        u, c = np.unravel_index(int(np.argmax(score)), score.shape)
        cur[u] = c
    for u, g in enumerate(units):
        for i in g:
            a[i] = int(cur[u])
    totals = problem.totals(a)
    return Solution(a, totals["sensitivity"], totals, "heuristic", False, "greedy", time.perf_counter() - t0)


def uniform(problem: Problem, choice: int) -> list[int] | None:
    """All layers at ``choice``; layers that may not take it get their closest allowed choice by energy.

    Returns None when ``choice`` is allowed for no layer at all.
    """
    if not problem.allowed[:, choice].any():
        return None
    a = []
    for l in range(len(problem.layer_names)):
        if problem.allowed[l, choice]:
            a.append(choice)
        else:
            cand = np.flatnonzero(problem.allowed[l])
            a.append(int(cand[np.argmin(np.abs(problem.energy_pj[l, cand] - problem.energy_pj[l, choice]))]))
    return a


def best_uniform(problem: Problem) -> tuple[int, list[int]] | None:
    """The uniform-precision plan with the lowest sensitivity that meets every budget, as (choice, assignment)."""
    best = None
    for c in range(len(problem.choice_labels)):
        a = uniform(problem, c)
        if a is None or problem.violations(a):
            continue
        s = problem.totals(a)["sensitivity"]
        if best is None or s < best[0]:
            best = (s, c, a)
    return None if best is None else (best[1], best[2])
