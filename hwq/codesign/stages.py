"""Worker side of the co-design pipeline: one function per stage, called as ``fn(inputs, ...)``.

``inputs`` is the sweep's :class:`~hwq.codesign.sweep.SweepInputs`, sent once per worker by the
executor (:mod:`hwq.codesign.executors`). Every function returns a JSON-able dict and turns a
:class:`~hwq.errors.HwqError` into a record with ``ok``/``feasible`` False and the reason, so a
failing point never stops the sweep (other exceptions are caught by the executor, likewise).

* :func:`ilp_task`   -- cost table + precision ILP of one point (the record ``results.jsonl`` holds);
* :func:`synth_task` -- Yosys resources of a Pareto candidate's array (or its column slice),
  cached by the array's RTL key (:func:`hwq.codesign.artifacts.cached_synth_array`);
* :func:`cosim_task` -- layer co-simulation of one of the chosen few, with its plan.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

from hwq.codesign.space import DesignPoint
from hwq.errors import HwqError
from hwq.paths import scratch_dir  # $TMPDIR/.hwq-LABEL.hwq-tmp-PID-XXXX, cleaned by the next run


def ilp_task(inputs: Any, fn: Callable[[DesignPoint], dict[str, Any]], point: DesignPoint) -> dict[str, Any]:
    """``fn(point)`` (normally :func:`hwq.codesign.sweep.evaluate_point`) with ``inputs`` installed;
    an :class:`HwqError` becomes an infeasible record; ``seconds`` is the wall time in the worker."""
    from hwq.codesign.runner import _call
    from hwq.codesign.sweep import SweepInputs, init_worker

    if isinstance(inputs, SweepInputs):
        init_worker(inputs)
    t0 = time.perf_counter()
    out = _call(fn, point)
    out["seconds"] = time.perf_counter() - t0
    return out


def synth_task(inputs: Any, point: DesignPoint) -> dict[str, Any]:
    """Synthesis report digest of ``point``'s array (its column slice above
    :data:`hwq.codesign.artifacts.SIM_MAX_LANES` MAC lanes): ``{ok, arch, cols, sliced, resources, seconds}``."""
    from hwq.codesign.artifacts import cached_synth_array, slice_spec
    from hwq.codesign.sweep import point_spec

    t0 = time.perf_counter()
    try:
        spec = point_spec(point, inputs)
        hw = slice_spec(spec)
        rep = cached_synth_array(hw, Path(inputs.cache_dir))
    except HwqError as err:
        return {"ok": False, "reason": str(err), "seconds": time.perf_counter() - t0}
    return {"ok": True, "arch": rep["arch"], "cols": hw.array.cols, "sliced": hw is not spec,
            "resources": rep["resources"], "seconds": time.perf_counter() - t0}


def cosim_task(inputs: Any, point: DesignPoint, plan_labels: Sequence[str], model_name: str,
               simulator: str = "icarus", sim_layer: str | None = None) -> dict[str, Any]:
    """Layer co-simulation of ``point`` with its plan (:func:`hwq.codesign.artifacts.cosim_design`):
    the :class:`LayerCheckResult` dict plus ``seconds``; ``ok`` False with the reason on failure."""
    from hwq.codesign.artifacts import cosim_design, plan_dict, slice_spec
    from hwq.codesign.driver import write_json
    from hwq.codesign.sweep import point_spec

    t0 = time.perf_counter()
    try:
        spec = point_spec(point, inputs)
        hw = slice_spec(spec)
        with scratch_dir("codesign-stage") as tmp:
            hw_path = Path(tmp) / ("spec.yaml" if hw is spec else "slice_spec.yaml")
            hw_path.write_text(hw.to_yaml())
            plan = Path(tmp) / "plan.json"
            write_json(plan, plan_dict(spec, inputs.weight_layers, plan_labels))
            s = cosim_design(model_name, spec, hw_path, plan, inputs.workload, inputs.weight_layers, plan_labels,
                             simulator, sim_layer)
    except HwqError as err:
        return {"ok": False, "reason": str(err), "seconds": time.perf_counter() - t0}
    s.update(sliced=hw is not spec, sim_cols=hw.array.cols, design_cols=spec.array.cols,
             seconds=time.perf_counter() - t0)
    return s
