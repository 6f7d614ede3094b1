"""Artefacts of the chosen design: spec YAML, plan.json, Verilog, synthesis report, co-simulation.

:func:`write_chosen` fills ``OUT/chosen/`` (atomically: a temporary folder renamed into place):

* ``spec.yaml``   -- ``AcceleratorSpec.to_yaml()`` of the chosen point (loadable by every command);
* ``plan.json``   -- its per-layer precision plan (``{"layers": [{name, format, bits, act_bits, group_size}]}``);
* ``rtl/``        -- ``hwq rtl`` of the chosen spec (:func:`hwq.hw.presets.write_rtl`);
* ``synth.json``  -- Yosys synthesis of the array (:func:`hwq.hw.synth.synthesize`, Xilinx cells);
* ``sim.json``    -- the layer-level co-simulation of one layer (:func:`hwq.verify.check.check_layer`):
  outputs bit-exact against the golden model, cycles equal to ``hwq.timing``'s. It runs the
  design's batch (``spec.batch`` images per weight load) and the dataflow the cost model's mapper
  picks for that layer at its planned precision (:func:`plan_layer_dataflows`); by default the layer
  is the smallest one the mapper runs in the design's first dataflow mode.

RTL simulation and synthesis time grow with the array (the 4096-lane ``bitmod`` preset takes
minutes to generate and to simulate on Icarus), so an array above ``max_lanes`` MAC lanes is
synthesised and co-simulated as a **column slice**: the same spec with fewer columns (same PE
rows, lanes, radix, datatypes and buffers), written as ``slice_spec.yaml``. Every file says
which array it describes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from hwq.codesign.driver import write_json
from hwq.errors import UsageError
from hwq.paths import scratch_dir  # $TMPDIR/.hwq-LABEL.hwq-tmp-PID-XXXX, cleaned by the next run

#: Largest array (MAC lanes = rows x cols x lanes) synthesised and co-simulated whole.
SIM_MAX_LANES = 512
#: Layers tried for the co-simulation before giving up (layers the array cannot run are skipped).
MAX_SIM_TRIES = 8


def plan_dict(spec, layer_names: Sequence[str], plan_labels: Sequence[str]) -> dict[str, Any]:
    """plan.json mapping for ``spec`` from the ILP's per-layer choice labels (``"bitmod4/a8"``)."""
    by_label = {str(c): c for c in spec.choices()}
    layers = []
    for name, lab in zip(layer_names, plan_labels, strict=True):
        c = by_label[lab]
        layers.append({"name": name, "format": c.fmt, "bits": int(c.bits), "act_bits": int(c.act_bits),
                       "group_size": spec.arithmetic.group_size})
    return {"arch": spec.name, "layers": layers}


def _atomic_text(path: Path, text: str) -> None:
    from hwq.atomic import write_text  # temp named .NAME.hwq-tmp-PID-XXXX (hwq.paths)

    write_text(path, text)


def sim_layer_candidates(workload, layer_names: Sequence[str], requested: str | None = None,
                         prefer: Sequence[str] | None = None) -> list[str]:
    """Layers to try for the co-simulation, best first: ``requested`` alone if given, else the layers
    of ``prefer`` by fewest weights, then the other planned layers by fewest weights."""
    if requested:
        if requested not in layer_names:
            from hwq.errors import UsageError

            raise UsageError(f"--sim-layer {requested!r} is not a weight layer of the model; e.g. "
                             f"{', '.join(layer_names[:3])}")
        return [requested]
    by_name = {l.name: l for l in workload.layers}
    pref = set(prefer or ())
    return sorted(layer_names, key=lambda n: (n not in pref, by_name[n].weights, layer_names.index(n)))


def pick_sim_layer(workload, layer_names: Sequence[str], requested: str | None = None,
                   prefer: Sequence[str] | None = None) -> str:
    """The layer to co-simulate: ``requested`` if given, else the planned layer with the fewest weights
    among ``prefer`` (when it names any), else among all planned layers."""
    return sim_layer_candidates(workload, layer_names, requested, prefer)[0]


def plan_layer_dataflows(workload, spec, layer_names: Sequence[str], plan_labels: Sequence[str]) -> dict[str, str]:
    """Layer name -> the dataflow the cost model's mapper picks for it at its planned choice on ``spec``
    (at ``spec.batch``)."""
    from hwq.cost import _dataflow_of, evaluate_plan

    by_label = {str(c): c for c in spec.choices()}
    rows = {l.name: i for i, l in enumerate(workload.layers)}
    names = [n for n in layer_names if n in rows]
    table, cols = evaluate_plan(workload, spec, [by_label[plan_labels[list(layer_names).index(n)]] for n in names],
                                batch=spec.batch)
    return {n: _dataflow_of(table.mapping_names[int(table.mapping[rows[n], c])]) for n, c in zip(names, cols)}


def slice_spec(spec, max_lanes: int = SIM_MAX_LANES):
    """``spec`` itself when its array has at most ``max_lanes`` MAC lanes, else a column slice of it."""
    from hwq.spec import parse_spec

    a = spec.array
    cols = max(1, min(a.cols, max_lanes // (a.rows * a.lanes)))
    if cols == a.cols:
        return spec
    d = spec.to_dict()
    d["array"]["cols"] = cols
    d["name"] = f"{spec.name}_slice{cols}"
    d["description"] = (f"{cols}-column slice of {spec.name} ({a.cols} columns) for synthesis and "
                        "co-simulation: same rows, lanes, radix, datatypes and buffers")
    return parse_spec(d, d["name"])


def write_chosen(out_dir: Path, model_name: str, spec, workload, layer_names: Sequence[str],
                 plan_labels: Sequence[str], *, simulator: str = "icarus", sim_layer: str | None = None,
                 rtl: bool = True, synth: bool = True, sim: bool = True,
                 max_lanes: int = SIM_MAX_LANES, synth_cache: Path | None = None,
                 sim_result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the chosen design's artefacts under ``out_dir/chosen``; return a digest (paths relative to
    ``out_dir``, synthesis resources, co-simulation result).

    ``rtl``: write the full design's Verilog (``hwq rtl``); ``synth``/``sim``: synthesise and
    co-simulate the design (or its column slice above ``max_lanes`` MAC lanes). ``synth_cache``: a
    cache folder for the synthesis report (:func:`cached_synth_array`, shared with the co-design
    pipeline's synthesis stage); ``sim_result``: a co-simulation the pipeline already ran
    (:func:`cosim_design` on the same spec and plan), written instead of running it again.
    """
    final = out_dir / "chosen"
    rel = Path("chosen")  # digest paths are relative to out_dir (reports are committed)
    out_dir.mkdir(parents=True, exist_ok=True)
    from hwq.paths import clean_stale, make_tmp_dir

    clean_stale(final)  # .chosen.hwq-tmp-PID-XXXX of a killed run (hwq.paths)
    tmp = make_tmp_dir(final)
    digest: dict[str, Any] = {"spec": str(rel / "spec.yaml"), "plan": str(rel / "plan.json")}
    try:
        _atomic_text(tmp / "spec.yaml", spec.to_yaml())
        write_json(tmp / "plan.json", plan_dict(spec, layer_names, plan_labels))
        hw = slice_spec(spec, max_lanes)
        hw_path = tmp / "spec.yaml"
        if hw is not spec and (synth or sim):
            hw_path = tmp / "slice_spec.yaml"
            _atomic_text(hw_path, hw.to_yaml())
            digest["slice_spec"] = str(rel / "slice_spec.yaml")
        if rtl:
            from hwq.hw.presets import write_rtl

            files = write_rtl(spec, tmp / "rtl")
            digest["verilog"] = str(rel / "rtl")
            digest["verilog_files"] = files
        if synth:
            rep = (cached_synth_array(hw, synth_cache) if synth_cache is not None
                   else _synth(hw, tmp / "rtl" if (rtl and hw is spec) else None))
            rep["sliced"] = hw is not spec
            write_json(tmp / "synth.json", rep)
            digest["synth"] = {"arch": rep["arch"], "cols": hw.array.cols, "sliced": hw is not spec,
                               **rep["resources"]}
            digest["synth_report"] = str(rel / "synth.json")
        if sim:
            s = sim_result if sim_result is not None else cosim_design(
                model_name, spec, hw_path, tmp / "plan.json", workload, layer_names, plan_labels, simulator,
                sim_layer)
            s.update(sliced=hw is not spec, sim_cols=hw.array.cols, design_cols=spec.array.cols)
            write_json(tmp / "sim.json", s)
            digest["sim"] = s
        write_json(tmp / "artifacts.json", digest)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return digest


def cosim_design(model_name: str, spec, hw_path: Path, plan_path: Path, workload, layer_names: Sequence[str],
                 plan_labels: Sequence[str], simulator: str = "icarus", sim_layer: str | None = None) -> dict[str, Any]:
    """Co-simulate one layer of ``spec``'s plan on the array of ``hw_path`` (the spec or its slice).

    The layer exercises the design's first dataflow where the mapper uses it (the new hardware);
    a layer the array cannot run (e.g. a K the lanes do not divide) is skipped and the next one is
    tried, up to :data:`MAX_SIM_TRIES`. Returns the :class:`LayerCheckResult` dict plus
    ``skipped_layers``.
    """
    flows = plan_layer_dataflows(workload, spec, layer_names, plan_labels)
    candidates = sim_layer_candidates(workload, layer_names, sim_layer,
                                      prefer=[n for n, f in flows.items() if f == spec.dataflow.modes[0]])
    skipped: list[dict[str, str]] = []
    for i, layer in enumerate(candidates[:MAX_SIM_TRIES]):
        try:
            s = _cosim(model_name, layer, hw_path, plan_path, simulator, batch=spec.batch, dataflow=flows[layer])
            break
        except UsageError as err:
            if sim_layer or i == min(len(candidates), MAX_SIM_TRIES) - 1 or "cannot run" not in str(err):
                raise
            skipped.append({"layer": layer, "reason": str(err)})
    s["skipped_layers"] = skipped
    return s


def cached_synth_array(spec, cache_dir: Path) -> dict[str, Any]:
    """:func:`synth_array` of ``spec``'s array (its RTL generated in a temporary folder), cached in
    ``cache_dir/codesign_synth/array_<key>.json``; the key
    (:func:`hwq.codesign.fpga_cost.synth_key`) covers the array configuration and the source of the
    generator and synthesis modules, so an array is synthesised once per hardware-code version."""
    from hwq.codesign.fpga_cost import synth_key

    path = Path(cache_dir) / "codesign_synth" / f"array_{synth_key(spec)}.json"
    if path.is_file():
        try:
            rep = json.loads(path.read_text())
            return {**rep, "arch": spec.name}
        except json.JSONDecodeError:
            pass  # a torn file from a killed run: synthesise again
    rep = _synth(spec, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, rep)
    return rep


def _cosim(model_name: str, layer: str, arch: Path, plan: Path, simulator: str, *, batch: int = 1,
           dataflow: str | None = None) -> dict[str, Any]:
    """Co-simulate one tile of ``layer`` on ``arch``'s array RTL (``batch`` images, ``dataflow``); the
    :class:`LayerCheckResult` as a dict."""
    from hwq.verify.check import check_layer

    with scratch_dir("codesign-sim") as build:
        res = check_layer(f"{model_name}:{layer}", arch, plan=plan, simulator=simulator,
                          build_dir=Path(build) / simulator, batch=batch, dataflow=dataflow)
    d = json.loads(json.dumps(res.to_dict(), default=str))
    d["arch_file"], d["plan"] = arch.name, plan.name  # relative: the temp folder becomes chosen/
    if str(d.get("precision_source", "")).startswith("plan "):
        d["precision_source"] = f"plan {plan.name}"
    return d


def _synth(spec, rtl_dir: Path | None) -> dict[str, Any]:
    """Synthesis report of ``spec``'s array, generating its RTL in a temporary folder unless given."""
    if rtl_dir is not None:
        return synth_array(spec, rtl_dir)
    from hwq.hw.presets import write_rtl

    with scratch_dir("codesign-rtl") as tmp:
        write_rtl(spec, Path(tmp) / "rtl")
        return synth_array(spec, Path(tmp) / "rtl")


def synth_array(spec, rtl_dir: Path, target: str = "xilinx") -> dict[str, Any]:
    """Yosys synthesis (:func:`hwq.hw.synth.synthesize`) of the ``pe_array`` block written in ``rtl_dir``.

    Returns ``{"target", "top", "arch", "resources": {LUT, FF, CARRY, DSP, BRAM, LUTRAM, other}, "cells"}``.
    """
    from hwq.hw.array import DECODER_MODULE, PE_MODULE
    from hwq.hw.synth import synthesize

    files = [str(Path(rtl_dir) / f) for f in ("pe_array.v", f"{PE_MODULE}.v", f"{DECODER_MODULE}.v")]
    with scratch_dir("codesign-synth") as work:
        res = synthesize({"pe_array": files}, target, Path(work))
    r = res["pe_array"]
    return {"target": target, "top": "pe_array", "arch": spec.name, "resources": r["resources"], "cells": r["cells"]}
