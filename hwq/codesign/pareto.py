"""Pareto set over design points and the rule that picks the chosen design.

Every objective is minimised. The default objectives are a point's energy (pJ), latency
(µs), hardware cost (ASIC area in mm², or the FPGA device fraction) and model sensitivity
(the precision ILP's objective, sum of Ω over layers).

Choice rule (:func:`choose`): among points whose plan meets the budget, those within 1 %
of the lowest sensitivity tie; of these, the smaller hardware cost wins, then the lower
energy, then the lower latency, then the lower sensitivity, then the lower index. The chosen
point is therefore never dominated by another feasible point (a dominating point would be in
the tie set and win the tie-break).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: Objectives (record keys) of the Pareto set, all minimised.
OBJECTIVES: tuple[str, ...] = ("energy_pj", "latency_us", "hw_cost", "sensitivity")
#: Sensitivities within this relative distance of the lowest count as a tie (Ω is a sampled
#: Hessian-trace estimate: a sub-1 % difference is not worth more hardware).
SENSITIVITY_TIE_REL = 0.01
#: The rule of :func:`choose`, as reports state it.
CHOICE_RULE = ("lowest sensitivity among points meeting the budget; ties (within 1 % of the lowest) -> "
               "smaller hardware cost, then lower energy, then lower latency")


def dominates(a: Mapping[str, Any], b: Mapping[str, Any], objectives: Sequence[str] = OBJECTIVES) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in at least one."""
    no_worse = all(a[o] <= b[o] for o in objectives)
    return no_worse and any(a[o] < b[o] for o in objectives)


def pareto_front(records: Sequence[Mapping[str, Any]], objectives: Sequence[str] = OBJECTIVES) -> list[int]:
    """Indices (into ``records``) of the non-dominated records, in input order.

    Records with ``feasible`` False are ignored. Equal records do not dominate each
    other, so duplicates are all kept. O(n²): spaces are small (tens to hundreds of points).
    """
    cand = [i for i, r in enumerate(records) if r.get("feasible", True)]
    return [i for i in cand if not any(dominates(records[j], records[i], objectives) for j in cand if j != i)]


def choose(records: Sequence[Mapping[str, Any]], rel_tol: float = SENSITIVITY_TIE_REL) -> int | None:
    """Index of the chosen record (see :data:`CHOICE_RULE`), or None when no record is feasible."""
    cand = [i for i, r in enumerate(records) if r.get("feasible", True)]
    if not cand:
        return None
    best_sens = min(records[i]["sensitivity"] for i in cand)
    tied = [i for i in cand if records[i]["sensitivity"] <= best_sens + rel_tol * abs(best_sens)]
    return min(tied, key=lambda i: (records[i]["hw_cost"], records[i]["energy_pj"], records[i]["latency_us"],
                                    records[i]["sensitivity"], i))
