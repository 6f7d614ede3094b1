"""Which points of a large design space to evaluate (``hwq codesign --samples N --sampler S``).

A space's points live on a grid: one dimension per axis (one per buffer of ``buffer_kib``),
each point a tuple of value indices (:func:`coordinates`). Samplers:

* ``random``: ``N`` distinct points drawn uniformly (numpy ``default_rng(seed)``);
* ``lhs``: Latin hypercube (``scipy.stats.qmc.LatinHypercube``) over the grid: every value of
  every axis appears about ``N / len(values)`` times; a cell that no point occupies (removed by
  ``limits``) is redrawn, duplicates are dropped;
* ``tpe``: Bayesian search with Optuna's TPE sampler (:class:`TpeSearch`), asked and told
  point by point as results come back: it proposes points near the feasible, low-sensitivity,
  small-hardware ones, so the synthesis stage (Pareto candidates only) is spent on promising
  points. Two objectives, both minimised: sensitivity Σ Ω and hardware cost; the budget is
  Optuna's constraint (``cheapest plan energy / budget - 1 <= 0``).

All samplers are deterministic for a given ``seed``, so a rerun asks for the same points and
resumes from ``results.jsonl``.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from hwq.codesign.space import AXES, DesignPoint, DesignSpace
from hwq.errors import UsageError

#: ``--sampler`` choices.
SAMPLERS: tuple[str, ...] = ("random", "lhs", "tpe")
#: Latin-hypercube rounds before giving up on filling ``N`` distinct occupied cells.
_LHS_ROUNDS = 50


def dimensions(space: DesignSpace) -> list[tuple[str, tuple[Any, ...]]]:
    """``[(dimension name, values)]`` of the space's grid, in :data:`AXES` order
    (``buffer_kib.<buffer>`` per buffer)."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    for a in AXES:
        if a not in space.axes:
            continue
        if a == "buffer_kib":
            out += [(f"buffer_kib.{b}", tuple(space.axes[a][b])) for b in sorted(space.axes[a])]
        else:
            out.append((a, tuple(space.axes[a])))
    return out


def _norm(v: Any) -> str:
    import json

    return json.dumps(list(v) if isinstance(v, tuple) else v, sort_keys=True)


def coordinates(space: DesignSpace, point: DesignPoint) -> tuple[int, ...]:
    """The grid cell of ``point``: one value index per dimension (an accumulator depth the point
    does not use, an output-buffer-only point, counts as index 0)."""
    return coordinates_of(dimensions(space), point)


def coordinates_of(dims: Sequence[tuple[str, Sequence[Any]]], point: DesignPoint) -> tuple[int, ...]:
    """:func:`coordinates` for precomputed :func:`dimensions`."""
    coords = []
    for name, values in dims:
        if name.startswith("buffer_kib."):
            v = point.params["buffer_kib"][name.split(".", 1)[1]]
        elif name not in point.params:
            coords.append(0)
            continue
        else:
            v = point.params[name]
        coords.append([_norm(x) for x in values].index(_norm(v)))
    return tuple(coords)


def grid(space: DesignSpace, points: Sequence[DesignPoint]) -> dict[tuple[int, ...], DesignPoint]:
    """Grid cell -> point, for every point of the space."""
    dims = dimensions(space)
    return {coordinates_of(dims, p): p for p in points}


def _check(n: int, total: int) -> None:
    if n < 1:
        raise UsageError(f"--samples must be >= 1, got {n}")
    if n > total:
        raise UsageError(f"--samples {n} is more than the space's {total} points; drop --samples to sweep them all")


def sample_random(points: Sequence[DesignPoint], n: int, seed: int = 0) -> list[DesignPoint]:
    """``n`` distinct points, uniformly at random, in index order."""
    _check(n, len(points))
    idx = np.random.default_rng(seed).choice(len(points), size=n, replace=False)
    return [points[i] for i in sorted(idx)]


def sample_lhs(space: DesignSpace, points: Sequence[DesignPoint], n: int, seed: int = 0) -> list[DesignPoint]:
    """``n`` distinct points by Latin hypercube over the grid (see the module docstring), in index order."""
    from scipy.stats import qmc

    _check(n, len(points))
    dims = dimensions(space)
    cells = grid(space, points)
    sizes = np.array([len(v) for _, v in dims])
    rng = np.random.default_rng(seed)
    chosen: dict[int, DesignPoint] = {}
    for _ in range(_LHS_ROUNDS):
        u = qmc.LatinHypercube(d=len(dims), seed=rng).random(n)
        for row in np.minimum((u * sizes).astype(int), sizes - 1):
            p = cells.get(tuple(int(x) for x in row))
            if p is not None and len(chosen) < n:
                chosen.setdefault(p.index, p)
        if len(chosen) >= n:
            break
    if len(chosen) < n:  # a space the limits make very sparse: top up at random
        rest = [p for p in points if p.index not in chosen]
        for i in rng.choice(len(rest), size=n - len(chosen), replace=False):
            chosen[rest[i].index] = rest[i]
    return sorted(chosen.values(), key=lambda p: p.index)


def select(space: DesignSpace, points: Sequence[DesignPoint], n: int | None, sampler: str,
           seed: int = 0) -> list[DesignPoint]:
    """The points a random or Latin-hypercube sweep evaluates (all of them when ``n`` is None)."""
    if sampler not in SAMPLERS:
        raise UsageError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if n is None or n == len(points):
        return list(points)
    if sampler == "random":
        return sample_random(points, n, seed)
    if sampler == "lhs":
        return sample_lhs(space, points, n, seed)
    raise ValueError("tpe is asked point by point: use TpeSearch")


class TpeSearch:
    """Optuna TPE over the space's grid, asked and told one point at a time.

    :meth:`ask` returns a point not asked before (proposals that hit a cell no point occupies,
    or one already asked, are told back at once as infeasible or with the known result and
    another proposal is drawn); :meth:`tell` gives a record (``feasible``, ``sensitivity``,
    ``hw_cost``, ``cheapest_energy_pj``) back to the study.
    """

    #: Proposals per :meth:`ask` before the search is declared exhausted.
    MAX_PROPOSALS = 200

    def __init__(self, space: DesignSpace, points: Sequence[DesignPoint], budget_pj: float, seed: int = 0,
                 n_startup: int = 10) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self._dims = dimensions(space)
        self._cells = grid(space, points)
        self._budget = budget_pj
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constraints_func is marked experimental
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup, multivariate=True,
                                                 constraints_func=lambda t: [t.user_attrs["violation"]])
            self._study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        self._trial_of: dict[str, Any] = {}   # point key -> its open trial
        self._known: dict[str, Mapping[str, Any]] = {}
        self.asked: set[str] = set()
        self.proposals = 0

    def _distributions(self):
        return {name: self._optuna.distributions.IntDistribution(0, len(v) - 1) for name, v in self._dims}

    def _finish(self, trial, rec: Mapping[str, Any] | None) -> None:
        if rec is None:  # an empty cell (limits): as bad as it gets
            trial.set_user_attr("violation", 1.0)
            values = [1e30, 1e30]
        else:
            feasible = bool(rec.get("feasible"))
            cheapest = rec.get("cheapest_energy_pj")
            violation = 0.0 if feasible else (cheapest / self._budget - 1 if cheapest else 1.0)
            trial.set_user_attr("violation", max(float(violation), 1e-9) if not feasible else 0.0)
            values = [float(rec["sensitivity"]) if feasible else 1e30, float(rec.get("hw_cost", 1e30))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._study.tell(trial, values)

    def ask(self) -> DesignPoint | None:
        """The next point to evaluate, or None when TPE keeps proposing points already asked."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(self.MAX_PROPOSALS):
                trial = self._study.ask(self._distributions())
                self.proposals += 1
                cell = tuple(int(trial.params[name]) for name, _ in self._dims)
                p = self._cells.get(cell)
                if p is None:
                    self._finish(trial, None)
                elif p.key in self._known:
                    self._finish(trial, self._known[p.key])
                elif p.key in self.asked:
                    self._study.tell(trial, state=self._optuna.trial.TrialState.PRUNED)
                else:
                    self.asked.add(p.key)
                    self._trial_of[p.key] = trial
                    return p
        return None

    def seed_known(self, point: DesignPoint, rec: Mapping[str, Any]) -> None:
        """Tell the study a point finished by an earlier run (resume: TPE starts from what is known)."""
        coords = coordinates_of(self._dims, point)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._study.enqueue_trial({name: c for (name, _), c in zip(self._dims, coords)})
            trial = self._study.ask(self._distributions())
        self.asked.add(point.key)
        self._known[point.key] = rec
        self._finish(trial, rec)

    def tell(self, point: DesignPoint, rec: Mapping[str, Any]) -> None:
        """The result of an asked point (the record ``results.jsonl`` holds)."""
        self._known[point.key] = rec
        trial = self._trial_of.pop(point.key, None)
        if trial is not None:
            self._finish(trial, rec)
