"""FPGA hardware cost of a design point: LUT/FF/DSP/BRAM from Yosys synthesis, cached on disk.

The array of the point (``hwq.hw.config.array_config_from_spec``) is generated and
synthesised by :mod:`hwq.hw.synth`; the resource counts are stored in
``<cache>/codesign_synth/<hash>.json`` where the hash covers the array configuration that
reaches the generator and the source of the generator and synthesis modules, so a point is
synthesised once, and again only when the hardware code changes.

The Pareto objective is the device utilisation: the largest fraction of any resource of the
spec's ``fpga`` section (:func:`hwq.hw.fit.device_utilisation`; > 1 does not fit).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hwq.paths import scratch_dir  # $TMPDIR/.hwq-LABEL.hwq-tmp-PID-XXXX, cleaned by the next run

#: Modules whose source decides the synthesis result (part of the cache key).
HW_MODULES = ("hwq.hw.array", "hwq.hw.pe", "hwq.hw.pe_parallel", "hwq.hw.decoder", "hwq.hw.dequant",
              "hwq.hw.config", "hwq.hw.generate", "hwq.hw.synth", "hwq.hw.presets", "hwq.hw.buffers",
              "hwq.hw.digits", "hwq.hw.shift_add", "hwq.codesign.artifacts")


def _source_hash() -> str:
    import importlib.util

    h = hashlib.sha1()
    for name in HW_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()[:12]


def synth_key(spec) -> str:
    """Cache key of ``spec``'s array synthesis: its array configuration plus the hardware code."""
    from hwq.hw.presets import array_config_for

    cfg = array_config_for(spec)
    blob = json.dumps({"cfg": asdict(cfg), "device": spec.fpga.device if spec.fpga else None,
                       "code": _source_hash()}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def utilization(resources: dict[str, Any], spec) -> dict[str, float]:
    """Fraction of the device each resource uses (:func:`hwq.hw.fit.device_utilisation`, the
    device-fit check's own rule)."""
    from hwq.hw.fit import device_utilisation

    # a resource the device lacks (inf) becomes 1e9: far over 1, and finite for JSON
    return {k: (v if math.isfinite(v) else 1e9) for k, v in device_utilisation(resources, spec.fpga).items()}


def fpga_resources(spec, cache_dir: Path) -> dict[str, Any]:
    """Synthesised resources of ``spec``'s array (cached), with ``utilization`` = the largest fraction."""
    key = synth_key(spec)
    path = Path(cache_dir) / "codesign_synth" / f"{key}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass  # a torn file from a killed run: synthesise again
    resources = synthesize(spec)
    util = utilization(resources, spec)
    out = {**resources, "utilization_by_resource": util, "utilization": max(util.values()), "cache_key": key}
    from hwq.atomic import write_text  # temp named .NAME.hwq-tmp-PID-XXXX (hwq.paths)

    write_text(path, json.dumps(out, sort_keys=True))
    return out


def synthesize(spec) -> dict[str, Any]:
    """Generate ``spec``'s RTL (:func:`hwq.hw.presets.write_rtl`) and synthesise its array for the device's Yosys flow (``fpga.synth_target``).

    Returns the resource counts ``{"LUT", "FF", "CARRY", "DSP", "BRAM", "LUTRAM", "other"}`` (BRAM in 36 Kb).
    """
    
    from hwq.codesign.artifacts import synth_array
    from hwq.hw.presets import write_rtl

    with scratch_dir("codesign-fpga") as tmp:
        rtl = Path(tmp) / "rtl"
        write_rtl(spec, rtl)
        return dict(synth_array(spec, rtl, spec.fpga.synth_target)["resources"])
