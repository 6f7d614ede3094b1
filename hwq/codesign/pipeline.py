"""The co-design sweep as a pipeline of stages on an executor (local pool or Ray).

Stages, each its own tasks (:mod:`hwq.codesign.stages`), interleaved on the same workers:

1. **ilp**: cost table + precision ILP for every selected point (all of the space, a random or
   Latin-hypercube sample, or the points Optuna TPE asks for). Each record is appended to
   ``results.jsonl`` as it arrives (the resumable file of :mod:`hwq.codesign.runner`).
2. **synth**: Yosys resources of Pareto candidates. While the ILPs run, a record that joins the
   running Pareto front and ranks within the best ``synth_top`` of it by the choice rule
   (:func:`hwq.codesign.pareto.choose`) has its array synthesised at once, so synthesis of
   candidate A overlaps the ILPs of the rest; at most ``synth_top`` distinct arrays, plus the
   final chosen design's if it is not among them. Cached by the array's RTL key.
3. **cosim**: after the last ILP, the best ``cosim_top`` points of the final Pareto set by the
   choice rule (the chosen design first) are co-simulated (one layer, bit-exact and cycle check).

A task that fails (an exception, or a worker that died more than ``max_retries`` times) becomes a
record with the reason: an ILP record ``feasible`` False with ``failed_stage`` and ``retry``
True (a rerun evaluates that point again), a synth/cosim entry with ``ok`` False. Synthesis and
co-simulation results go to ``stages.jsonl`` beside ``results.jsonl``; a rerun reuses both.
One rich progress bar per stage, with its ETA.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from hwq.codesign.pareto import OBJECTIVES, choose, dominates, pareto_front
from hwq.codesign.runner import RESULTS_FILE, _append, read_finished
from hwq.codesign.space import DesignPoint, DesignSpace

#: Stage names, in pipeline order.
STAGES: tuple[str, ...] = ("ilp", "synth", "cosim")
#: Synthesis and co-simulation results (JSON lines), beside results.jsonl.
STAGE_FILE = "stages.jsonl"


@dataclass
class StageConfig:
    """What the later stages do.

    Attributes:
        synth_top: distinct arrays synthesised among the running Pareto front's best (0: no synthesis).
        cosim_top: best points of the final Pareto set co-simulated (0: none).
        model_name: registered model (the co-simulation re-captures its layer).
        simulator: ``icarus`` or ``verilator``.
        sim_layer: the layer to co-simulate (default: chosen per design, as ``hwq codesign``).
    """

    synth_top: int = 1
    cosim_top: int = 1
    model_name: str = ""
    simulator: str = "icarus"
    sim_layer: str | None = None


@dataclass
class PipelineResult:
    """What the pipeline found: ILP records of the selected points (by index), the later stages'
    results by point key, and per stage the points it saw / evaluated now / that failed."""

    records: list[dict[str, Any]]
    synth: dict[str, dict[str, Any]]
    cosim: dict[str, dict[str, Any]]
    seen: dict[str, int]
    evaluated: dict[str, int]
    failed: dict[str, int]
    seconds: float
    sampler: str
    executor: str
    workers: int
    proposals: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def stage_summary(self) -> dict[str, Any]:
        """JSON-able digest (``summary.json``'s ``pipeline``)."""
        return {"executor": self.executor, "workers": self.workers, "sampler": self.sampler,
                "points_per_stage": self.seen, "evaluated_this_run": self.evaluated, "failed": self.failed,
                "tpe_proposals": self.proposals or None, "seconds": self.seconds,
                "worker_seconds_per_stage": self.stage_seconds}


class RunningFront:
    """Pareto front of the feasible records seen so far, updated one record at a time (O(front))."""

    def __init__(self, objectives: Sequence[str] = OBJECTIVES) -> None:
        self.objectives = objectives
        self.members: list[dict[str, Any]] = []

    def add(self, rec: Mapping[str, Any]) -> bool:
        """Insert ``rec``; True when it is on the front now."""
        if not rec.get("feasible"):
            return False
        if any(dominates(m, rec, self.objectives) for m in self.members):
            return False
        self.members = [m for m in self.members if not dominates(rec, m, self.objectives)] + [dict(rec)]
        return True


def choice_order(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Feasible ``records`` best first by the choice rule (``choose`` applied repeatedly)."""
    rest = [r for r in records if r.get("feasible")]
    out = []
    while rest:
        i = choose(rest)
        if i is None:
            break
        out.append(rest.pop(i))
    return out


def _read_stages(path: Path, context: str) -> dict[tuple[str, str], dict[str, Any]]:
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(e, dict) and e.get("context") == context and e.get("result", {}).get("ok"):
            done[(e["stage"], e["id"])] = e["result"]
    return done


def _synth_id(point: DesignPoint, inputs: Any) -> str:
    """Identity of the array the synthesis stage builds for ``point`` (its column slice's RTL key)."""
    from hwq.codesign.artifacts import slice_spec
    from hwq.codesign.fpga_cost import synth_key
    from hwq.codesign.sweep import point_spec

    return synth_key(slice_spec(point_spec(point, inputs)))


def run_pipeline(points: Sequence[DesignPoint], space: DesignSpace, inputs: Any, out_dir: Path, *, context: str,
                 executor: Any, fn: Callable[[DesignPoint], dict[str, Any]] | None = None,
                 samples: int | None = None, sampler: str = "lhs", seed: int = 0,
                 stages: StageConfig | None = None, progress: bool = True,
                 description: str = "codesign", close: bool = True) -> PipelineResult:
    """Run the stages over ``points`` (the whole space) on ``executor``; see the module docstring.

    ``fn`` is the ILP stage's point function (default :func:`hwq.codesign.sweep.evaluate_point`;
    tests pass stand-ins). ``samples``/``sampler``/``seed`` select the points
    (:mod:`hwq.codesign.sampling`). ``close``: close the executor at the end (also on Ctrl-C).
    """
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from hwq.codesign.sampling import TpeSearch, select
    from hwq.codesign.stages import cosim_task, ilp_task, synth_task
    from hwq.codesign.sweep import evaluate_point

    fn = fn or evaluate_point
    stages = stages or StageConfig(synth_top=0, cosim_top=0)
    t_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    path, stage_path = out_dir / RESULTS_FILE, out_dir / STAGE_FILE
    done = {k: r for k, r in read_finished(path, context).items() if not r.get("retry")}
    stage_done = _read_stages(stage_path, context)
    by_key = {p.key: p for p in points}

    records: dict[str, dict[str, Any]] = {}
    front = RunningFront()
    tpe: TpeSearch | None = None
    queue: deque[DesignPoint] = deque()
    if sampler == "tpe" and samples is not None:
        tpe = TpeSearch(space, points, float(getattr(inputs, "budget_pj", 1.0)), seed=seed)
        prior = [by_key[k] for k in done if k in by_key]
        for p in sorted(prior, key=lambda p: p.index):
            tpe.seed_known(p, done[p.key])
        target = max(samples, len(prior))
        for p in prior:
            records[p.key] = done[p.key]
    else:
        selected = select(space, points, samples, sampler, seed)
        target = len(selected)
        for p in selected:
            if p.key in done:
                records[p.key] = done[p.key]
            else:
                queue.append(p)
    for rec in sorted(records.values(), key=lambda r: r["index"]):
        front.add(rec)

    seen = {s: 0 for s in STAGES}
    evaluated = {s: 0 for s in STAGES}
    failed = {s: 0 for s in STAGES}
    worker_s = {s: 0.0 for s in STAGES}
    synth_by_id: dict[str, dict[str, Any]] = {}
    synth_of_point: dict[str, str] = {}
    synth_submitted: set[str] = set()
    cosim: dict[str, dict[str, Any]] = {}
    tasks: dict[int, tuple[str, DesignPoint, str]] = {}
    window = max(2, 2 * executor.workers)

    bar = Progress(TextColumn("[bold]{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                   disable=not progress, transient=False, console=Console(stderr=True))
    bars: dict[str, Any] = {}

    def log_stage(stage: str, ident: str, point: DesignPoint, result: Mapping[str, Any]) -> None:
        _append(stage_path, {"stage": stage, "id": ident, "key": point.key, "index": point.index,
                             "context": context, "result": dict(result)})

    def want_synth(point: DesignPoint, force: bool = False) -> None:
        if stages.synth_top <= 0:
            return
        try:
            ident = synth_of_point.get(point.key) or _synth_id(point, inputs)
        except Exception:  # noqa: BLE001 - the synthesis task will report why
            ident = f"point-{point.key}"
        synth_of_point[point.key] = ident
        if ident in synth_submitted:
            return
        if not force and len(synth_submitted) >= stages.synth_top:
            return
        synth_submitted.add(ident)
        bar.update(bars["synth"], total=len(synth_submitted))
        if ("synth", ident) in stage_done:
            synth_by_id[ident] = stage_done[("synth", ident)]
            seen["synth"] += 1
            bar.advance(bars["synth"])
            return
        tasks[executor.submit(synth_task, point)] = ("synth", point, ident)

    def on_record(point: DesignPoint, rec: dict[str, Any]) -> None:
        if front.add(rec) and stages.synth_top > 0:
            best = choice_order(front.members)[:stages.synth_top]
            if any(b["key"] == point.key for b in best):
                want_synth(point)

    def submit_ilp() -> None:
        while sum(1 for s, _, _ in tasks.values() if s == "ilp") < window:
            if tpe is not None:
                if len(records) + sum(1 for s, _, _ in tasks.values() if s == "ilp") >= target:
                    return
                p = tpe.ask()
                if p is None:
                    return
            elif queue:
                p = queue.popleft()
            else:
                return
            tasks[executor.submit(ilp_task, fn, p)] = ("ilp", p, p.key)

    cosim_started = False
    try:
        executor.start(inputs)
        with bar:
            bars["ilp"] = bar.add_task(f"{description}: ilp", total=target, completed=len(records))
            bars["synth"] = bar.add_task("synth (Pareto cand.)", total=0)
            bars["cosim"] = bar.add_task("cosim (chosen few)", total=0)
            for rec in choice_order(front.members)[:stages.synth_top]:
                want_synth(by_key.get(rec["key"]) or DesignPoint(rec["index"], rec["params"]))
            submit_ilp()
            while True:
                for o in executor.next_done(0.2):
                    stage, point, ident = tasks.pop(o.token)
                    value = o.value if o.ok else None
                    if stage == "ilp":
                        if o.ok:
                            out = dict(value)
                        else:
                            failed["ilp"] += 1
                            out = {"feasible": False, "reason": f"ilp stage failed: {o.error}", "failed_stage": "ilp",
                                   "retry": True}
                        out.setdefault("feasible", True)
                        worker_s["ilp"] += float(out.get("seconds", 0.0))
                        rec = {**out, "key": point.key, "index": point.index, "label": point.label,
                               "params": dict(point.params), "context": context}
                        _append(path, rec)
                        records[point.key] = rec
                        evaluated["ilp"] += 1
                        if tpe is not None:
                            tpe.tell(point, rec)
                        bar.advance(bars["ilp"])
                        on_record(point, rec)
                    else:
                        res = dict(value) if o.ok else {"ok": False, "reason": f"{stage} stage failed: {o.error}"}
                        if not res.get("ok"):
                            failed[stage] += 1
                        worker_s[stage] += float(res.get("seconds", 0.0))
                        evaluated[stage] += 1
                        seen[stage] += 1
                        log_stage(stage, ident, point, res)
                        if stage == "synth":
                            synth_by_id[ident] = res
                        else:
                            cosim[point.key] = res
                        bar.advance(bars[stage])
                submit_ilp()
                ilp_running = any(s == "ilp" for s, _, _ in tasks.values())
                if not ilp_running and not cosim_started:
                    cosim_started = True
                    final = list(records.values())
                    order = choice_order([final[i] for i in pareto_front(final)])
                    if order:
                        want_synth(by_key.get(order[0]["key"]) or DesignPoint(order[0]["index"], order[0]["params"]),
                                   force=True)  # the chosen design's array, always
                    for rec in order[:stages.cosim_top]:
                        p = by_key.get(rec["key"]) or DesignPoint(rec["index"], rec["params"])
                        bar.update(bars["cosim"], total=(bar.tasks[bars["cosim"]].total or 0) + 1)
                        if ("cosim", p.key) in stage_done:
                            cosim[p.key] = stage_done[("cosim", p.key)]
                            seen["cosim"] += 1
                            bar.advance(bars["cosim"])
                            continue
                        tasks[executor.submit(cosim_task, p, rec.get("plan", []), stages.model_name, stages.simulator,
                                              stages.sim_layer)] = ("cosim", p, p.key)
                if not tasks and cosim_started:
                    break
    except BaseException:  # Ctrl-C, or a bug: what finished is on disk; abandon the running tasks
        executor.close(wait=False)
        raise
    if close:
        executor.close()
    seen["ilp"] = len(records)
    synth = {k: synth_by_id[i] for k, i in synth_of_point.items() if i in synth_by_id}
    return PipelineResult(sorted(records.values(), key=lambda r: r["index"]), synth, cosim, seen, evaluated, failed,
                          time.perf_counter() - t_start, sampler if samples is not None else "all",
                          executor.name, executor.workers, tpe.proposals if tpe else 0, worker_s)
