"""Resumable parallel evaluation of design points.

:func:`run_points` maps an evaluation function over :class:`~hwq.codesign.space.DesignPoint`
objects on a process pool (``concurrent.futures.ProcessPoolExecutor``, spawn context so
workers never inherit a forked torch thread pool) with a rich progress bar. Each finished
point is appended at once, as one JSON line, to ``results.jsonl``; a rerun with the same
``context`` reads that file and skips every point already there. A half-written last line
(a killed run) is ignored and that point is evaluated again.

Evaluation functions must be importable top-level callables ``fn(point) -> dict`` (they
are pickled by name). Shared, expensive inputs (a workload, a sensitivity table) travel
once per worker through ``initializer``/``initargs`` instead of once per point.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from hwq.codesign.space import DesignPoint
from hwq.errors import HwqError

#: Name of the JSON-lines file written in the output folder.
RESULTS_FILE = "results.jsonl"


def read_finished(path: Path, context: str) -> dict[str, dict[str, Any]]:
    """Records already in ``path`` for ``context``, by point key (later lines win)."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # torn last line of an interrupted run
        if isinstance(rec, dict) and rec.get("context") == context and "key" in rec:
            done[rec["key"]] = rec
    return done


def _append(path: Path, record: Mapping[str, Any]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _call(fn: Callable[[DesignPoint], dict[str, Any]], point: DesignPoint) -> dict[str, Any]:
    """Run ``fn`` on one point; a :class:`HwqError` becomes an infeasible record (not a crash)."""
    try:
        out = dict(fn(point))
    except HwqError as err:
        out = {"feasible": False, "reason": str(err)}
    out.setdefault("feasible", True)
    return out


def _init_worker(initializer: Callable[..., None] | None, initargs: Sequence[Any]) -> None:
    if "torch" in sys.modules:  # one thread per worker: the pool already uses every core
        sys.modules["torch"].set_num_threads(1)
    if initializer is not None:
        initializer(*initargs)


def run_points(points: Iterable[DesignPoint], fn: Callable[[DesignPoint], dict[str, Any]], out_dir: Path, *,
               context: str, jobs: int = 1, initializer: Callable[..., None] | None = None,
               initargs: Sequence[Any] = (), progress: bool = True,
               description: str = "design points") -> list[dict[str, Any]]:
    """Evaluate every point not yet recorded in ``out_dir/results.jsonl``; return all records by index.

    ``context`` identifies the question (model, budget, space...): records of another
    context in the same file are not reused. ``jobs`` > 1 uses that many worker processes;
    ``jobs`` == 1 runs in this process (``initializer`` is still called first).
    Each record holds ``fn``'s keys plus ``key``, ``index``, ``label``, ``params``,
    ``context`` and ``feasible``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    points = list(points)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RESULTS_FILE
    done = read_finished(path, context)
    todo = [p for p in points if p.key not in done]
    records: dict[str, dict[str, Any]] = {p.key: done[p.key] for p in points if p.key in done}

    def finish(point: DesignPoint, out: dict[str, Any]) -> None:
        rec = {**out, "key": point.key, "index": point.index, "label": point.label,
               "params": dict(point.params), "context": context}
        _append(path, rec)
        records[point.key] = rec

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   disable=not progress, transient=False, console=Console(stderr=True))
    with bar:
        task = bar.add_task(description, total=len(points), completed=len(points) - len(todo))
        if todo and jobs <= 1:
            _init_worker(initializer, initargs)
            for p in todo:
                finish(p, _call(fn, p))
                bar.advance(task)
        elif todo:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx,
                                     initializer=_init_worker, initargs=(initializer, tuple(initargs))) as pool:
                pending = {pool.submit(_call, fn, p): p for p in todo}
                try:
                    while pending:
                        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            finish(pending.pop(fut), fut.result())
                            bar.advance(task)
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise
    return sorted((records[p.key] for p in points), key=lambda r: r["index"])
