"""Routed Fmax on iCE40 of every hardware block and of 2x2 PE arrays, as Markdown lines.

:func:`timing_lines` returns the section that ``reports/hardware.md`` includes: each block
(bit-serial PE of ``bitmod``, bit-parallel INT8 PE of ``int8_parallel``, the ``bitmod`` weight
decoder, the bit-serial dequantizer, the ``fpga_zu`` fixed-point datapath with multipliers and
K-hot) and a 2x2 cut of the ``bitmod`` and ``int8_parallel`` arrays, placed and routed by
:func:`hwq.hw.pnr.place_and_route` on an iCE40 HX8K (ct256) with LUT multipliers
(``synth_ice40`` without ``-dsp``: HX8K has no DSP, and every path is then timed by nextpnr),
median over seeds 1-3.

Results are cached in ``reports/hardware_timing.json``, keyed by a SHA-256 of each block's
Verilog, the device, seeds, target and tool versions: a block is routed again only when its
Verilog or the tools change. Regenerate (prints the lines)::

    .venv/bin/python -m hwq.reports.hardware_timing
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from hwq.hw.pnr import DEFAULT_SEEDS, DEFAULT_TARGET_MHZ, PnrResult, place_and_route, require_tool

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "reports" / "hardware_timing.json"
COMMAND = ".venv/bin/python -m hwq.reports.hardware_timing"
DEVICE, PACKAGE = "ice40hx8k", "ct256"


def timing_blocks() -> dict[str, tuple[dict[str, str], str, str]]:
    """``{label: ({file name: Verilog}, top module, description)}`` of every block routed."""
    from hwq.hw.array import make_decoder, make_pe
    from hwq.hw.config import array_config_from_spec
    from hwq.hw.dequant import BitSerialDequant
    from hwq.hw.fixed_datapath import FixedDatapath
    from hwq.hw.generate import array_sources, to_verilog
    from hwq.hw.presets import fixed_config_for
    from hwq.spec import load_spec

    bitmod, int8, zu = load_spec("bitmod"), load_spec("int8_parallel"), load_spec("fpga_zu")
    serial, parallel = array_config_from_spec(bitmod), array_config_from_spec(int8)
    out = {
        "pe_bitserial": ({"pe.v": to_verilog(make_pe(serial), "pe_bitserial")}, "pe_bitserial",
                         f"bit-serial PE of `bitmod` ({serial.lanes} lanes, {serial.bits_per_cycle} bits/cycle)"),
        "pe_int8_parallel": ({"pe.v": to_verilog(make_pe(parallel), "pe_int8_parallel")}, "pe_int8_parallel",
                             f"bit-parallel INT8 PE of `int8_parallel` ({parallel.lanes} lanes, LUT multipliers)"),
        "decoder_bitmod": ({"dec.v": to_verilog(make_decoder(serial), "decoder_bitmod")}, "decoder_bitmod",
                           f"weight decoder of `bitmod` ({len(serial.members)} member datatypes)"),
        "dequant": ({"dq.v": to_verilog(BitSerialDequant(psum_bits=serial.seg_bits, scale_bits=serial.scale_bits,
                                                         acc_bits=32, digits_per_cycle=1), "dequant")},
                    "dequant", f"bit-serial dequantizer ({serial.scale_bits}-bit scale, 1 bit/cycle)"),
    }
    fx, kx = fixed_config_for(zu), fixed_config_for(zu, khot=2)
    out["fixed_datapath"] = ({"fx.v": to_verilog(FixedDatapath(fx), "fixed_datapath")}, "fixed_datapath",
                             f"fixed-point datapath of `fpga_zu` ({fx.lanes} lanes, LUT multipliers)")
    out["fixed_datapath_khot"] = ({"fxk.v": to_verilog(FixedDatapath(kx), "fixed_datapath_khot")},
                                  "fixed_datapath_khot", "the same, K-hot (K=2) weights and BN scale")
    for name, spec, cfg in (("array2x2_bitmod", bitmod, serial), ("array2x2_int8_parallel", int8, parallel)):
        small = replace(cfg, rows=2, cols=2, group_size=2 * cfg.lanes, x_depth=64, w_depth=64, out_depth=64)
        out[name] = (array_sources(small), "pe_array",
                     f"2x2 PE array of `{spec.name}` ({small.lanes} lanes, buffers 64 words)")
    return out


def _tool_versions() -> str:
    from hwq.toolchain import require_yosys

    outs = []
    for cmd in ([require_yosys(), "-V"], [require_tool("nextpnr-ice40"), "--version"]):
        p = subprocess.run(cmd, capture_output=True, text=True)
        outs.append((p.stdout + p.stderr).strip().splitlines()[0])
    return " / ".join(outs)


def _key(files: dict[str, str], top: str, tools: str) -> str:
    h = hashlib.sha256()
    for part in (top, DEVICE, PACKAGE, repr(DEFAULT_SEEDS), f"{DEFAULT_TARGET_MHZ:g}", "nodsp", tools,
                 *(f"{n}\n{t}" for n, t in sorted(files.items()))):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def routed_results(cache: Path = CACHE, *, log=sys.stderr) -> tuple[dict[str, PnrResult], dict[str, str], str]:
    """``({label: PnrResult}, {label: description}, tool versions)``, routing only blocks whose
    cache entry is missing or stale; rewrites ``cache``."""
    from hwq.atomic import write_text

    tools = _tool_versions()
    old = json.loads(cache.read_text()) if cache.exists() else {}
    new = {k: v for k, v in old.items() if k.startswith("preset:")}  # kept for preset_result
    results, desc = {}, {}
    for label, (files, top, text) in timing_blocks().items():
        key = _key(files, top, tools)
        desc[label] = text
        entry = old.get(label)
        try:
            cached = PnrResult.from_json(entry["result"]) if entry and entry.get("key") == key else None
        except (ValueError, TypeError, KeyError):
            cached = None
        if cached is None:
            print(f"place and route {label} on {DEVICE} (seeds {DEFAULT_SEEDS})", file=log)
            with tempfile.TemporaryDirectory(prefix=f"hwq_timing_{label}_") as tmp:
                paths = []
                for name, text_v in files.items():
                    (Path(tmp) / name).write_text(text_v)
                    paths.append(Path(tmp) / name)
                r = place_and_route(paths, top, Path(tmp) / "pnr", device=DEVICE, package=PACKAGE,
                                    bitstream=False, nodsp=True)
            entry, cached = {"key": key, "result": r.to_json()}, r
        new[label] = entry
        results[label] = cached
    write_text(cache, json.dumps(new, indent=2, sort_keys=True) + "\n")
    return results, desc, tools


#: The open-flow preset whose full RTL (``rtl/<preset>/``, the array with its buffers) is routed on
#: its own device and packed to a bitstream for the report.
BITSTREAM_PRESET = "ice40_up5k"


def preset_result(cache: Path = CACHE, *, log=sys.stderr) -> tuple[PnrResult, dict]:
    """Routed result of :data:`BITSTREAM_PRESET`'s committed ``pe_array`` RTL on the spec's device
    and package (seeds 1-3, DSPs on), with the bitstream icepack wrote: ``(result, {"bytes", "sha256"})``.
    Cached in ``cache`` under ``preset:<name>`` by Verilog hash and tool versions."""
    from hwq.atomic import write_text
    from hwq.spec import load_spec

    spec = load_spec(BITSTREAM_PRESET)
    folder = REPO / "rtl" / BITSTREAM_PRESET
    names = json.loads((folder / "blocks.json").read_text())["blocks"]["pe_array"]
    files = {n: (folder / n).read_text() for n in names}
    tools = _tool_versions()
    key = _key(files, "pe_array", tools + spec.fpga.device + spec.fpga.package)
    label = f"preset:{BITSTREAM_PRESET}"
    data = json.loads(cache.read_text()) if cache.exists() else {}
    entry = data.get(label)
    if entry and entry.get("key") == key:
        try:
            return PnrResult.from_json(entry["result"]), entry["bitstream"]
        except (ValueError, TypeError, KeyError):
            pass
    print(f"place and route {BITSTREAM_PRESET} pe_array on {spec.fpga.device} with bitstream", file=log)
    with tempfile.TemporaryDirectory(prefix="hwq_timing_preset_") as tmp:
        r = place_and_route([folder / n for n in names], "pe_array", Path(tmp) / "pnr", device=spec.fpga.device,
                            package=spec.fpga.package, bitstream=True)
        blob = Path(r.bitstream).read_bytes()
    bit = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    r = replace(r, bitstream=f"pe_array.{spec.fpga.device}.bin")
    data = json.loads(cache.read_text()) if cache.exists() else {}
    data[label] = {"key": key, "result": r.to_json(), "bitstream": bit}
    write_text(cache, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return r, bit


def preset_lines(cache: Path = CACHE) -> list[str]:
    """Markdown lines: the open-flow preset through Yosys, nextpnr and icepack, against its clock."""
    from hwq.spec import load_spec

    spec = load_spec(BITSTREAM_PRESET)
    r, bit = preset_result(cache)
    util = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in r.utilisation.items() if k in ("LC", "EBR", "SPRAM", "DSP"))
    ok = "within" if spec.clock_mhz <= min(r.fmax_by_seed.values()) else "ABOVE"
    return [f"## Open-flow preset `{BITSTREAM_PRESET}`: placed, routed and packed", "",
            f"`rtl/{BITSTREAM_PRESET}/pe_array.v` (the whole array: PEs, decoders, sequencer, buffers in EBR) through "
            f"Yosys `synth_ice40 -dsp`, nextpnr-ice40 on {spec.fpga.device} ({spec.fpga.package}), seeds "
            f"{', '.join(map(str, r.fmax_by_seed))}, and icepack (same as `hwq synth rtl/{BITSTREAM_PRESET} --target "
            f"ice40 --pnr --blocks pe_array`; cached in `reports/hardware_timing.json`).", "",
            f"- routed Fmax: {r.fmax_mhz:.1f} MHz median (per seed "
            + ", ".join(f"{v:.1f}" for v in r.fmax_by_seed.values())
            + f"); the preset's `clock_mhz` {spec.clock_mhz:g} is {ok} the slowest seed "
            f"(checked by `tests/test_pnr.py`). nextpnr-ice40 does not time paths inside SB_MAC16.",
            f"- utilisation (first seed, harness included): {util}",
            f"- bitstream `{r.bitstream}`: {bit['bytes']} bytes, sha256 {bit['sha256'][:16]}...", ""]


def timing_lines(cache: Path = CACHE) -> list[str]:
    """Markdown lines: routed Fmax per block and per 2x2 array on iCE40 HX8K (cached)."""
    results, desc, tools = routed_results(cache)
    lines = [f"## Routed Fmax on iCE40 ({DEVICE}, {PACKAGE})", "",
             f"Regenerate: `{COMMAND}` (cached in `reports/hardware_timing.json` by Verilog hash; {tools}). "
             "Each block: Yosys `synth_ice40` without `-dsp` (LUT multipliers: HX8K has no DSP, so nextpnr times "
             "every path), nextpnr-ice40 `--hx8k --package ct256 --freq "
             f"{DEFAULT_TARGET_MHZ:g}`, seeds {', '.join(map(str, DEFAULT_SEEDS))}, Fmax = median. The block sits in "
             "a harness (hwq.hw.pnr) that registers every port, so a combinational block (the decoder) is timed "
             "register to register and LC includes the harness flip-flops. EBR in a block without buffers (the decoder): "
             "Yosys put its ROM in block RAM, using the harness registers as the RAM's address/output registers.", "",
             "| block | Fmax MHz (median) | per seed | LC used (of 7680) | EBR |", "| --- | --- | --- | --- | --- |"]
    for label, r in results.items():
        lc, ebr = r.utilisation.get("LC", [0, 0]), r.utilisation.get("EBR", [0, 0])
        lines.append(f"| `{label}` ({desc[label]}) | {r.fmax_mhz:.1f} | "
                     + ", ".join(f"{v:.1f}" for v in r.fmax_by_seed.values()) + f" | {lc[0]} | {ebr[0]} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(timing_lines() + preset_lines()))
