"""Does the proxy rank plans like the measured metric? Plan sampling and rank correlation.

:func:`sample_plans` draws feasible plans spread over the whole energy range (a random target
energy per plan,
stratified, then upgrades in random order from the cheapest plan while they fit under it), and
:func:`spearman` is the rank correlation the explore study reports between the predicted
total sensitivity of each method and the measured quality.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwq.search.problem import Problem


def sample_plans(problem: Problem, n: int, seed: int = 0) -> list[list[int]]:
    """``n`` distinct plans (as far as the problem has them) with energies spread from the cheapest
    plan to the most expensive one; the problem's own budgets are ignored, its allowed choices
    and ties kept."""
    rng = np.random.default_rng(seed)
    units = problem.units()
    energy = np.array([problem.energy_pj[g].sum(axis=0) for g in units])
    allowed = np.array([problem.allowed[g[0]] for g in units])
    cheap = [int(np.flatnonzero(allowed[u])[np.argmin(energy[u, allowed[u]])]) for u in range(len(units))]
    lo = float(sum(energy[u, c] for u, c in enumerate(cheap)))
    hi = float(sum(energy[u, allowed[u]].max() for u in range(len(units))))
    out: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for attempt in range(50 * n):
        if len(out) >= n:
            break
        target = lo + (hi - lo) * (len(out) + rng.uniform()) / n  # stratified over the range
        cur = list(cheap)
        total = lo
        moves = [(u, int(c)) for u in range(len(units)) for c in np.flatnonzero(allowed[u])]
        for _ in range(3):  # passes of random-order upgrades that still fit under the target
            for i in rng.permutation(len(moves)):
                u, c = moves[i]
                new_total = total - energy[u, cur[u]] + energy[u, c]
                if energy[u, c] > energy[u, cur[u]] and new_total <= target:
                    cur[u], total = c, new_total
        key = tuple(cur)
        if key in seen:
            continue
        seen.add(key)
        plan = [0] * len(problem.layer_names)
        for u, g in enumerate(units):
            for l in g:
                plan[l] = cur[u]
        out.append(plan)
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman rank correlation and its two-sided p-value (scipy)."""
    from scipy.stats import spearmanr

    r = spearmanr(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return float(r.statistic), float(r.pvalue)
