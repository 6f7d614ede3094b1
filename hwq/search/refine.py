"""Measured refinement of a precision plan (``hwq explore --refine K``).

The ILP minimises the *predicted* loss increase (sum of Omega). Refinement measures plans on the
real metric instead and keeps the best measured one:

1. the K best ILP plans under the budgets (:func:`ilp_top_k`: after each solve a no-good cut
   ``sum_{u} x[u, a_u] <= U - 1`` forbids exactly the plan just found, so the next solve returns
   the next-best plan by predicted sensitivity);
2. the greedy plan and the best uniform plan (so the result measures at least as well as
   both, and as the ILP plan, by construction);
3. local improvements of the best measured plan (:func:`neighbours`): single-layer changes and
   one-up/one-down swaps that keep every budget, tried best predicted first; the first that
   measures better becomes the new best (hill climbing within ``local_evals`` measurements).

Every candidate is quantized with :func:`hwq.quant.quantize_model`, its activation scales are
calibrated on the calibration batches and it is scored by a :class:`Metric` on calibration data
(higher is better; ties keep the earlier candidate, i.e. the ILP's order).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from hwq.search.problem import Problem


# ------------------------------------------------------------------------------ top-K ILP
def ilp_top_k(problem: Problem, k: int, solver: str = "cbc", time_limit_s: float | None = 60.0) -> list[list[int]]:
    """Up to ``k`` distinct feasible plans, best predicted sensitivity first (no-good cuts).

    Same model as :func:`hwq.search.ilp.solve` (one binary per decision unit and allowed choice,
    budgets normalised by their bounds); stops early when no further plan fits.
    """
    import pulp

    from hwq.search.ilp import _make_solver, _quiet_stdout

    problem.check_bounds()
    units = problem.units()
    values = problem.sensitivity
    allowed_vals = values[problem.allowed]
    scale = float(np.max(np.abs(allowed_vals))) if allowed_vals.size else 1.0
    scale = scale if scale > 0 else 1.0
    lp = pulp.LpProblem("hwq_precision_topk", pulp.LpMinimize)
    x: dict[tuple[int, int], Any] = {}
    for u, g in enumerate(units):
        for c in np.flatnonzero(problem.allowed[g[0]]):
            x[u, int(c)] = lp.add_variable(f"x_{u}_{int(c)}", cat="Binary")
        lp += pulp.lpSum(v for (uu, _), v in x.items() if uu == u) == 1, f"one_choice_{u}"
    lp += pulp.lpSum((float(values[units[u], c].sum()) / scale) * v for (u, c), v in x.items())
    for key, bound in (("energy_pj", problem.energy_budget_pj), ("latency_cycles", problem.latency_budget_cycles),
                       ("weight_bits", problem.size_budget_bits)):
        arr = getattr(problem, key)
        if bound is None or arr is None:
            continue
        lp += pulp.lpSum((float(arr[units[u], c].sum()) / bound) * v for (u, c), v in x.items()) <= 1.0, \
            f"budget_{key}"
    plans: list[list[int]] = []
    for i in range(k):
        with _quiet_stdout(solver == "highs"):
            lp.solve(_make_solver(solver, time_limit_s))
        if lp.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            break
        picked = [max((c for (uu, c) in x if uu == u), key=lambda c, u=u: x[u, c].varValue or 0.0)
                  for u in range(len(units))]
        a = [0] * len(problem.layer_names)
        for u, g in enumerate(units):
            for l in g:
                a[l] = picked[u]
        if problem.violations(a, rel_tol=1e-6) or a in plans:
            break
        plans.append(a)
        lp += pulp.lpSum(x[u, picked[u]] for u in range(len(units))) <= len(units) - 1, f"no_good_{i}"
    return plans


# ------------------------------------------------------------------------------ local moves
def neighbours(problem: Problem, a: Sequence[int], limit: int) -> list[list[int]]:
    """Feasible plans one step from ``a``, best predicted sensitivity first (at most ``limit``).

    A step changes one decision unit's choice, or raises one unit and lowers another (a swap
    that keeps the budgets). Plans with the same predicted total keep the cheaper one first.
    """
    units = problem.units()
    cur = [a[g[0]] for g in units]
    sens = np.array([problem.sensitivity[g].sum(axis=0) for g in units])
    energy = np.array([problem.energy_pj[g].sum(axis=0) for g in units])
    allowed = np.array([problem.allowed[g[0]] for g in units])
    moves: list[tuple[float, float, tuple[tuple[int, int], ...]]] = []
    n = len(units)
    rows = np.arange(n)
    d_s = sens - sens[rows, cur][:, None]
    d_e = energy - energy[rows, cur][:, None]
    singles = [(u, c) for u in range(n) for c in np.flatnonzero(allowed[u]) if c != cur[u]]
    for u, c in singles:
        moves.append((float(d_s[u, c]), float(d_e[u, c]), ((u, int(c)),)))
    ups = [(u, c) for u, c in singles if d_s[u, c] < 0]
    downs = [(u, c) for u, c in singles if d_e[u, c] < 0]
    for u, c in ups:
        for v, c2 in downs:
            if v != u:
                moves.append((float(d_s[u, c] + d_s[v, c2]), float(d_e[u, c] + d_e[v, c2]), ((u, int(c)), (v, int(c2)))))
    moves.sort(key=lambda m: (m[0], m[1]))
    out: list[list[int]] = []
    seen = set()
    for _, _, change in moves:
        new = list(cur)
        for u, c in change:
            new[u] = c
        t = tuple(new)
        if t in seen:
            continue
        plan = [0] * len(problem.layer_names)
        for u, g in enumerate(units):
            for l in g:
                plan[l] = new[u]
        if problem.violations(plan):
            continue
        seen.add(t)
        out.append(plan)
        if len(out) >= limit:
            break
    return out


# ------------------------------------------------------------------------------ measuring
@dataclass
class Metric:
    """The real quality metric of a model on calibration data (higher is better).

    ``score(qmodel) -> float`` on a quantized, calibrated model; ``calibrate(qmodel)`` sets its
    activation scales; ``description`` names metric and data for reports.
    """

    score: Callable[[Any], float]
    calibrate: Callable[[Any], None]
    description: str


def _digits_metric(seed: int) -> Metric:
    import torch

    from hwq.quant import calibrate
    from models.digits_cnn import load_digits_split

    x_tr, y_tr, _, _ = load_digits_split()
    order = torch.arange(len(x_tr)) if seed == 0 else torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(seed))
    calib = [x_tr[order[i * 64:(i + 1) * 64]] for i in range(4)]

    @torch.no_grad()
    def score(m) -> float:
        m.eval()
        return float((m(x_tr).argmax(1) == y_tr).float().mean())

    return Metric(score, lambda q: calibrate(q, calib),
                  f"top-1 accuracy on the {len(x_tr)} labelled digits training (calibration) images (ties keep "
                  f"the earlier candidate, the ILP's first); activation scales from 256 of them (calibration seed {seed})")


def _minilm_metric(seed: int, model) -> Metric:
    import torch

    from hwq.quant import calibrate
    from models.minilm import MAX_TOKENS, SENTENCES, embed, embedding_cosine
    from models.registry import _tokenizer

    ref = embed(model, SENTENCES)
    idx = list(range(64)) if seed == 0 else \
        torch.randperm(len(SENTENCES), generator=torch.Generator().manual_seed(seed))[:64].tolist()
    enc = _tokenizer()([SENTENCES[i] for i in idx], padding=True, truncation=True, max_length=MAX_TOKENS,
                       return_tensors="pt")
    calib = [enc["input_ids"]]
    return Metric(lambda q: embedding_cosine(q, ref, SENTENCES), lambda q: calibrate(q, calib),
                  f"mean cosine to the float embeddings of the {len(SENTENCES)} calibration sentences; activation "
                  f"scales from 64 of them (calibration seed {seed})")


def _output_metric(model, batches: Sequence[Any]) -> Metric:
    """Any model: mean cosine between quantized and float main outputs on the calibration batches."""
    import torch

    from hwq.quant import calibrate
    from hwq.search.sensitivity import _call, _main_output

    with torch.no_grad():
        refs = [_main_output(_call(model, b)).detach().flatten(1).to(torch.float64) for b in batches]

    @torch.no_grad()
    def score(q) -> float:
        q.eval()
        sims = [torch.nn.functional.cosine_similarity(_main_output(_call(q, b)).flatten(1).to(torch.float64), r, dim=1)
                for b, r in zip(batches, refs)]
        return float(torch.cat(sims).mean())

    return Metric(score, lambda q: calibrate(q, batches),
                  f"mean cosine between quantized and float outputs on {len(batches)} calibration batches")


def default_metric(model_name: str, model, batches: Sequence[Any], seed: int = 0, calib_dir: str | None = None) -> Metric:
    """The metric refinement uses for ``model_name``: the real one where hwq has labelled or
    fixed calibration data (digits: accuracy; MiniLM: embedding cosine), else output cosine."""
    if calib_dir is None and model_name == "digits_cnn":
        return _digits_metric(seed)
    if calib_dir is None and model_name == "minilm":
        return _minilm_metric(seed, model)
    return _output_metric(model, batches)


def plan_layers(problem: Problem, assignment: Sequence[int], choices: Sequence[Any],
                group_sizes: Sequence[int | None]) -> dict:
    """The plan.json ``layers`` form of an assignment (what ``quantize_model`` reads)."""
    return {"layers": [{"name": problem.layer_names[l], "format": choices[c].fmt, "bits": int(choices[c].bits),
                        "act_bits": choices[c].act_bits, "group_size": group_sizes[l]}
                       for l, c in enumerate(assignment)]}


def share_quantized_weights(qmodel, cache: dict) -> None:
    """Reuse fake-quantized weights across plans of one float model (they depend only on the layer,
    format, bits and group size): ``cache`` maps ``(layer, fmt, bits, group_size)`` to the tensor.
    Valid while the float weights do not change (refinement, the proxy check)."""
    import torch

    from hwq.quant.modules import _WeightQuantMixin

    for name, m in qmodel.named_modules():
        if isinstance(m, _WeightQuantMixin):
            key = (name, m.fmt, m.wbits, m.group_size)
            if key not in cache:
                with torch.no_grad():
                    cache[key] = m.quantized_weight()
            m._cache = (m.weight.data_ptr(), m.weight._version, cache[key])


def measure(model, metric: Metric, problem: Problem, assignment: Sequence[int], choices: Sequence[Any],
            group_sizes: Sequence[int | None], weight_cache: dict | None = None) -> float:
    """Quantize ``model`` by ``assignment``, calibrate its activations, and score it
    (``weight_cache``: see :func:`share_quantized_weights`)."""
    import torch

    from hwq.quant import quantize_model

    q = quantize_model(model, plan_layers(problem, assignment, choices, group_sizes))
    if weight_cache is not None:
        share_quantized_weights(q, weight_cache)
    metric.calibrate(q)
    with torch.no_grad():
        return float(metric.score(q))


# ------------------------------------------------------------------------------ refine
@dataclass
class Candidate:
    origin: str            # "ilp#1" (the ILP optimum), "ilp#2".., "greedy", "uniform", "local r.i"
    assignment: list[int]
    sensitivity: float
    energy_pj: float
    score: float
    #: other origins that proposed the same plan (measured once)
    aliases: list[str] = field(default_factory=list)

    def named(self, origin: str) -> bool:
        return origin == self.origin or origin in self.aliases


@dataclass
class Refinement:
    """The best measured plan and every candidate measured on the way."""

    assignment: list[int]
    score: float
    origin: str
    candidates: list[Candidate] = field(default_factory=list)
    metric: str = ""
    seconds: float = 0.0

    def by_origin(self, origin: str) -> Candidate | None:
        return next((c for c in self.candidates if c.named(origin)), None)

    def summary(self) -> dict:
        """JSON-ready form (plan.json ``refine``)."""
        return {"metric": self.metric, "chosen": self.origin, "score": self.score,
                "evaluated": len(self.candidates), "seconds": round(self.seconds, 3),
                "candidates": [{"origin": c.origin, "also": list(c.aliases), "score": c.score,
                                "sensitivity": c.sensitivity, "energy_pj": c.energy_pj} for c in self.candidates]}


def refine(problem: Problem, evaluate: Callable[[Sequence[int]], float], k: int, *, solver: str = "cbc",
           extra: Sequence[tuple[str, Sequence[int] | None]] = (), local_evals: int | None = None,
           local_per_round: int = 4, progress: Callable[[str], None] | None = None) -> Refinement:
    """Measure the K best ILP plans, the ``extra`` plans (greedy, best uniform) and local moves.

    ``evaluate(assignment) -> score`` (higher is better). ``local_evals`` (default ``k``) bounds the
    measurements spent on local improvements, ``local_per_round`` of them per round.
    """
    t0 = time.perf_counter()
    cands: list[Candidate] = []
    seen: dict[tuple[int, ...], Candidate] = {}

    def add(origin: str, a: Sequence[int]) -> Candidate:
        key = tuple(int(c) for c in a)
        if key in seen:
            if origin != seen[key].origin and origin not in seen[key].aliases:
                seen[key].aliases.append(origin)
            return seen[key]
        t = problem.totals(key)
        c = Candidate(origin, list(key), t["sensitivity"], t["energy_pj"], float(evaluate(key)))
        seen[key] = c
        cands.append(c)
        if progress:
            progress(f"refine: {origin}: {c.score:.4f} (sensitivity {c.sensitivity:.4g})")
        return c

    for i, a in enumerate(ilp_top_k(problem, max(1, k), solver=solver)):
        add(f"ilp#{i + 1}", a)
    for origin, a in extra:
        if a is not None and not problem.violations(a):
            add(origin, a)
    best = max(cands, key=lambda c: c.score)  # max keeps the first of equal scores
    budget = k if local_evals is None else local_evals
    rnd = 0
    while budget > 0:  # first improvement: measure the best-predicted untried neighbours of the best plan
        rnd += 1
        trial = [n for n in neighbours(problem, best.assignment, limit=len(seen) + budget)
                 if tuple(n) not in seen][:min(local_per_round, budget)]
        if not trial:
            break
        for j, a in enumerate(trial):
            c = add(f"local {rnd}.{j + 1}", a)
            budget -= 1
            if c.score > best.score:
                best = c
                break
    best = max(cands, key=lambda c: c.score)
    return Refinement(best.assignment, best.score, best.origin, cands, seconds=time.perf_counter() - t0)
