"""Issue 17: co-design on Ray and the staged pipeline.

* the same Pareto set and chosen design from Ray and from the local pool (digits CNN, real ILPs);
* a worker killed mid-sweep (``os._exit``): retried by Ray in the run, or recorded with the reason
  and evaluated again by the resumed run; every point ends done exactly once;
* the local pool survives a crashed worker the same way;
* samplers (random, Latin hypercube, Optuna TPE) and a failing stage that does not stop the sweep.

One Ray instance (2 CPUs, small object store) is shared by the module and shut down at its end.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import pytest

from hwq.codesign.executors import InlineExecutor, PoolExecutor, RayExecutor
from hwq.codesign.pipeline import StageConfig, run_pipeline
from hwq.codesign.runner import RESULTS_FILE, read_finished
from hwq.codesign.space import DesignPoint, space_from_dict
from hwq.errors import UsageError

SPACE = {"name": "t", "base": "bitmod", "axes": {"rows": [4, 8, 16], "cols": [4, 8], "bits_per_cycle": [2, 4]}}


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module: 2 CPUs, 128 MiB object store, no dashboard."""
    import logging

    import ray  # a dependency of hwq: a missing ray fails here (install: `make setup`)

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=128 * 1024 * 1024,
             logging_level=logging.WARNING, log_to_driver=False)
    # this module's stand-in point functions travel by value (Ray workers do not have tests/ on sys.path)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


def crashing_eval(folder: str, crash_index: int, point: DesignPoint) -> dict:
    """Stand-in ILP stage: the worker evaluating point ``crash_index`` dies once (marker file), every
    successful evaluation appends the point key to ``calls.txt``."""
    marker = Path(folder) / f"crashed_{crash_index}"
    if point.index == crash_index and not marker.exists():
        marker.write_text("1")
        os._exit(1)  # the worker process dies without a word, as on an OOM kill or a lost node
    with open(Path(folder) / "calls.txt", "a") as fh:
        fh.write(point.key + "\n")
    r, c = point.params["rows"], point.params["cols"]
    return {"energy_pj": 100.0 / (r * c), "latency_us": 10.0 / r, "hw_cost": float(r * c),
            "sensitivity": float(point.params["bits_per_cycle"]), "cheapest_energy_pj": 1.0}


def _calls(folder: Path) -> list[str]:
    f = folder / "calls.txt"
    return f.read_text().split() if f.exists() else []


def _sweep(space, folder: Path, executor, crash_index: int = 2, **kw):
    fn = functools.partial(crashing_eval, str(folder), crash_index)
    return run_pipeline(space.points(), space, None, folder / "out", context="ctx", executor=executor, fn=fn,
                        progress=False, **kw)


@pytest.mark.slow
def test_killed_worker_is_retried_then_resumed(tmp_path, ray_instance):
    """max_retries 0: the killed point becomes a failed record with the reason, the rest finish; the
    rerun evaluates only that point; max_retries 1: Ray retries it within the run."""
    space = space_from_dict(SPACE, "t.yaml")
    pts = space.points()
    first = _sweep(space, tmp_path, RayExecutor(2, max_retries=0))
    bad = [r for r in first.records if not r["feasible"]]
    assert len(first.records) == len(pts) and [r["index"] for r in bad] == [2]
    assert bad[0]["retry"] and bad[0]["failed_stage"] == "ilp" and "ilp stage failed" in bad[0]["reason"]
    assert first.failed["ilp"] == 1 and len(_calls(tmp_path)) == len(pts) - 1
    second = _sweep(space, tmp_path, RayExecutor(2, max_retries=0))  # resume: only the failed point runs
    assert second.evaluated["ilp"] == 1 and second.failed["ilp"] == 0
    calls = _calls(tmp_path)
    assert sorted(calls) == sorted(p.key for p in pts)  # every point evaluated exactly once
    final = read_finished(tmp_path / "out" / RESULTS_FILE, "ctx")
    assert len(final) == len(pts) and all(r["feasible"] for r in final.values())
    # in-run retry: the worker dies once, Ray resubmits the task, nothing is lost or doubled
    other = tmp_path / "retry"
    other.mkdir()
    third = _sweep(space, other, RayExecutor(2, max_retries=1))
    assert third.failed["ilp"] == 0 and all(r["feasible"] for r in third.records)
    assert (other / "crashed_2").exists() and sorted(_calls(other)) == sorted(p.key for p in pts)
    assert [r["energy_pj"] for r in third.records] == [r["energy_pj"] for r in sorted(final.values(),
                                                                                       key=lambda r: r["index"])]


def test_local_pool_survives_a_killed_worker(tmp_path):
    space = space_from_dict(SPACE, "t.yaml")
    res = _sweep(space, tmp_path, PoolExecutor(2, max_retries=1))
    assert res.failed["ilp"] == 0 and all(r["feasible"] for r in res.records)
    assert (tmp_path / "crashed_2").exists() and sorted(_calls(tmp_path)) == sorted(p.key for p in space.points())


TINY = {"name": "tiny", "base": "bitmod", "axes": {"rows": [16, 32], "bits_per_cycle": [2, 4],
                                                   "weight_formats": [["bitmod4", "int8"],
                                                                      {"name": "int", "formats": ["int4", "int8"]}]}}


@pytest.mark.slow
def test_ray_and_local_pool_give_the_same_pareto_set(tmp_path, monkeypatch, ray_instance):
    """Digits CNN, 8 points, real cost model + ILP: the plain local runner and the Ray pipeline agree."""
    from hwq.codesign.driver import run_codesign

    monkeypatch.setenv("HWQ_CACHE_DIR", str(tmp_path / "cache"))
    space = space_from_dict(TINY, "tiny.yaml")
    kw = dict(method="kl", calibration_samples=8, progress=False)
    local = run_codesign("digits_cnn", space, 2e6, tmp_path / "local", jobs=1, **kw)
    on_ray = run_codesign("digits_cnn", space, 2e6, tmp_path / "ray", executor=RayExecutor(2), **kw)
    assert len(local.records) == len(on_ray.records) == 8
    assert sum(r["feasible"] for r in local.records) >= 2  # a real choice, not one point
    labels = lambda res: [res.records[i]["label"] for i in res.front]  # noqa: E731
    assert labels(on_ray) == labels(local)
    assert local.chosen is not None and on_ray.records[on_ray.chosen]["label"] == local.records[local.chosen]["label"]
    for a, b in zip(local.records, on_ray.records):
        assert a["key"] == b["key"] and a["feasible"] == b["feasible"]
        if a["feasible"]:
            assert (a["energy_pj"], a["latency_us"], a["sensitivity"], a["plan"]) == \
                (b["energy_pj"], b["latency_us"], b["sensitivity"], b["plan"])
    assert on_ray.extra["pipeline"]["executor"] == "ray" and on_ray.extra["pipeline"]["points_per_stage"]["ilp"] == 8


# ------------------------------------------------------------------ samplers (no Ray)
BIG = {"name": "big", "base": "bitmod", "axes": {"rows": [4, 8, 16, 32], "cols": [4, 8, 16, 32],
                                                 "lanes": [2, 4, 8], "bits_per_cycle": [2, 4, 6]},
       "limits": {"max_pes": 256}}


def test_random_and_lhs_samples_are_distinct_balanced_and_seeded():
    from hwq.codesign.sampling import coordinates, sample_lhs, sample_random, select

    space = space_from_dict(BIG, "big.yaml")
    pts = space.points()  # 4x4 minus the cells over 256 PEs (32x16, 16x32, 32x32) = 13 shapes x 9
    assert len(pts) == 13 * 9
    for fn in (lambda s: sample_random(pts, 27, s), lambda s: sample_lhs(space, pts, 27, s)):
        a, b, c = fn(0), fn(0), fn(1)
        assert len(a) == 27 and len({p.key for p in a}) == 27 and a == b and a != c
    lhs = sample_lhs(space, pts, 27, 0)
    for d in range(4):  # Latin hypercube: every value of every axis is drawn
        assert {coordinates(space, p)[d] for p in lhs} == set(range(len(list(space.axes.values())[d])))
    assert select(space, pts, None, "lhs") == pts
    with pytest.raises(UsageError, match="more than the space"):
        select(space, pts, 1000, "random")


def test_tpe_asks_distinct_points_and_resumes(tmp_path):
    space = space_from_dict(BIG, "big.yaml")
    res = _sweep(space, tmp_path, InlineExecutor(), crash_index=-1, samples=20, sampler="tpe")
    assert len(res.records) == 20 and len({r["key"] for r in res.records}) == 20
    assert res.sampler == "tpe" and res.proposals >= 20
    again = _sweep(space, tmp_path, InlineExecutor(), crash_index=-1, samples=25, sampler="tpe")
    assert again.evaluated["ilp"] == 5 and len(again.records) == 25  # the 20 known points seed the study
    assert len(_calls(tmp_path)) == 25


def test_failing_stage_does_not_stop_the_sweep(tmp_path):
    """Synthesis and co-simulation fail (stand-in inputs have no spec): both are recorded with the
    reason, every ILP record is there."""
    space = space_from_dict(SPACE, "t.yaml")
    res = _sweep(space, tmp_path, InlineExecutor(), crash_index=-1, stages=StageConfig(synth_top=1, cosim_top=1))
    assert len(res.records) == len(space.points()) and all(r["feasible"] for r in res.records)
    assert res.failed["synth"] >= 1 and res.failed["cosim"] == 1 and res.seen["cosim"] == 1
    lines = [json.loads(l) for l in (tmp_path / "out" / "stages.jsonl").read_text().splitlines()]
    assert {e["stage"] for e in lines} == {"synth", "cosim"} and all(not e["result"]["ok"] for e in lines)
    assert all("stage failed" in e["result"]["reason"] for e in lines)


def test_cli_rejects_bad_executor_flags(capsys):
    from hwq.cli.main import main

    base = ["codesign", "--model", "digits_cnn", "--budget", "2uJ"]
    assert main(base + ["--address", "127.0.0.1:6379"]) == 2
    assert main(base + ["--sampler", "tpe"]) == 2
    assert main(base + ["--samples", "100000"]) == 2
    assert main(base + ["--synth-top", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--address joins a Ray cluster" in err and "give --samples N" in err and "more than the space" in err
    assert "--synth-top must be >= 0" in err


def test_running_front_equals_batch_front_and_choice_order():
    """The pipeline's incremental Pareto front (what picks synthesis candidates) is the batch one."""
    import random

    from hwq.codesign.pareto import choose, pareto_front
    from hwq.codesign.pipeline import RunningFront, choice_order

    rng = random.Random(0)
    recs = [{"key": str(i), "energy_pj": rng.randint(1, 6), "latency_us": rng.randint(1, 6),
             "hw_cost": rng.randint(1, 6), "sensitivity": rng.randint(1, 6), "feasible": rng.random() > 0.2}
            for i in range(300)]
    front = RunningFront()
    for r in recs:
        front.add(r)
    assert sorted(m["key"] for m in front.members) == sorted(recs[i]["key"] for i in pareto_front(recs))
    order = choice_order(recs)
    assert order[0] is recs[choose(recs)] and len(order) == sum(r["feasible"] for r in recs)


def test_projection_arithmetic():
    from hwq.codesign.scaling import projection

    m = {"prepare_s": 30.0, "synth": {"seconds": 200.0},
         "rows": [{"executor": "Ray (local)", "workers": 1, "points_per_s": 2.0, "noop_s_per_task": 0.004},
                  {"executor": "Ray (local)", "workers": 2, "points_per_s": 3.0, "noop_s_per_task": 0.002}]}
    p = projection(m)
    assert p["compute_s"] == pytest.approx((10_000 * 0.5 + 500 * 200.0) / 64)
    assert p["driver_total_s"] == pytest.approx(10_000 * 0.002)
    assert p["wall_s"] == pytest.approx(30.0 + p["compute_s"] + 200.0)
