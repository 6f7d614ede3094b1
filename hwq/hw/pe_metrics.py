"""LUT·ns per MAC of the bit-serial PE against its bit-parallel LUT-multiplier baselines.

The metric (issue 14, "PEs that win where they claim to")::

    LUT·ns/MAC = LUTs x t_crit x I / lanes

* ``LUTs``: the PE's LUT count after Yosys synthesis with multipliers in LUTs (Xilinx:
  ``synth_xilinx -nodsp``, LUT1..LUT6 cells; iCE40: ``synth_ice40`` without ``-dsp``,
  SB_LUT4 cells). Flip-flops and carry cells are not counted.
* ``t_crit``: the routed critical path (ns) = 1000 / routed Fmax (MHz) from nextpnr-ice40
  (HX8K ct256, UP5K sg48; :func:`hwq.hw.pnr.place_and_route`, synthesised without DSPs), the
  median over :data:`SEEDS`. The PE sits in :mod:`hwq.hw.pnr`'s harness: every PE input is
  driven by a flip-flop of a shift chain and every output is captured in a flip-flop, so the
  clock's Fmax is the PE's own register-to-register path (its accumulator loop and
  input-to-accumulator path). The harness's LUTs are not counted; Xilinx has no open router,
  so Xilinx gets LUT-cycles only.
* ``I``: cycles per weight, :func:`hwq.datatypes.cycles_per_weight` of the weight format's
  term slots and the PE's bits per cycle (1 for a bit-parallel PE).
* ``lanes``: weights (MACs) the PE applies per weight interval.

LUT-cycles/MAC = ``LUTs x I / lanes`` (Xilinx and iCE40). Lower is better for both.

The PEs are exactly what the array replicates (:func:`hwq.hw.array.make_pe`, weight registers
included): the ``bitmod`` preset's bit-serial PE (measured at bitmod3, bitmod4 and int8
weights), the ``int8_parallel`` preset's INT8 PE and an INT4xINT8 :class:`ParallelMac` of the
same lanes and activation width. ``python -m hwq.hw.pe_metrics --write`` measures them and
writes :data:`RESULTS_PATH` (committed; :func:`markdown_lines` renders it, and
``tests/test_pe_metrics.py`` checks it is current for the PEs' Verilog).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from hwq.errors import HwqError, UsageError

#: Committed measurement (read by :func:`markdown_lines` and the hardware report).
RESULTS_PATH = Path(__file__).resolve().parents[2] / "reports" / "pe_metrics.json"
#: nextpnr seeds; t_crit is the median of their routed critical paths.
SEEDS = (1, 2, 3)
#: iCE40 devices routed: short name -> :data:`hwq.hw.pnr.ICE40_DEVICES` part (default package).
ICE40_DEVICES = {"hx8k": "ice40hx8k", "up5k": "ice40up5k"}
#: Synthesis targets (Yosys) and their LUT cell names.
TARGETS = ("xilinx", "ice40")


@dataclass(frozen=True)
class PECase:
    """One PE measured: its Verilog (top ``module``) and the weight formats it runs.

    Attributes:
        name: key in the results; module: Verilog top; verilog: its text;
        lanes: MACs per weight interval; intervals: ``{weight format: I (cycles per weight)}``;
        summary: one line for the report.
    """

    name: str
    module: str
    verilog: str
    lanes: int
    intervals: dict[str, int]
    summary: str

    @property
    def verilog_sha256(self) -> str:
        """Hash of the Verilog text (the committed results are current only for this hash)."""
        return hashlib.sha256(self.verilog.encode()).hexdigest()


@lru_cache(maxsize=None)
def pe_cases() -> tuple[PECase, ...]:
    """The bit-serial PE of the ``bitmod`` preset and its two LUT-multiplier baselines (cached:
    Verilog generation takes seconds)."""
    from dataclasses import replace

    from hwq.datatypes import cycles_per_weight, resolve
    from hwq.hw.array import make_pe
    from hwq.hw.config import array_config_from_spec
    from hwq.hw.generate import to_verilog
    from hwq.spec import load_spec

    serial = array_config_from_spec(load_spec("bitmod"))
    int8 = array_config_from_spec(load_spec("int8_parallel"))
    int4 = replace(int8, formats=(("int", 4),))
    cases = [PECase("bit_serial", "pe_bit_serial", to_verilog(make_pe(serial), "pe_bit_serial"), serial.lanes,
                    {f"{f}{b}": cycles_per_weight(resolve(f, b).term_slots, serial.bpc)
                     for f, b in (("bitmod", 3), ("bitmod", 4), ("int", 8))},
                    f"bit-serial PE of `bitmod` ({serial.lanes} lanes, {serial.bits_per_cycle} bits/cycle, "
                    f"{serial.geometry['slots']} term slots, {len(serial.members)} member datatypes)")]
    for name, cfg, fmt in (("int8_lut", int8, "int8"), ("int4x8_lut", int4, "int4")):
        cases.append(PECase(name, f"pe_{name}", to_verilog(make_pe(cfg), f"pe_{name}"), cfg.lanes, {fmt: 1},
                            f"bit-parallel {fmt.upper()}xINT{cfg.act_bits} PE, multipliers in LUTs "
                            f"({cfg.lanes} lanes, weights {cfg.geometry['value_bits']} bits)"))
    return tuple(cases)


# ---- synthesis ---------------------------------------------------------------------------------
def synth_luts(case: PECase, target: str, workdir: Path) -> int:
    """LUTs of ``case`` on ``target`` with multipliers in LUTs (Yosys; see the module docstring).

    The Verilog is read by a relative name (``dut.v``) so the result does not depend on where
    ``workdir`` is."""
    from hwq.hw.synth import classify, run_yosys, yosys_script

    workdir = Path(workdir) / f"synth_{target}"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dut.v").write_text(case.verilog)
    run_yosys(yosys_script({case.module: ["dut.v"]}, target, nodsp=True), workdir, log_name=f"yosys_{target}.log")
    stat = json.loads((workdir / f"stat_{case.module}.json").read_text())
    cells = {k: int(v) for k, v in stat["design"]["num_cells_by_type"].items()}
    return int(classify(cells, target)["LUT"])


# ---- place and route (hwq.hw.pnr: nextpnr-ice40 on a shift-register harness) -------------------
def routed_fmax(case: PECase, device: str, workdir: Path, seeds: Sequence[int] = SEEDS) -> list[float]:
    """Routed Fmax (MHz) per seed of ``case`` on iCE40 ``device`` (:data:`ICE40_DEVICES`), multipliers
    in LUTs, through :func:`hwq.hw.pnr.place_and_route` (its harness registers every PE port)."""
    from hwq.hw.pnr import place_and_route

    if device not in ICE40_DEVICES:
        raise UsageError(f"unknown iCE40 device {device!r}; choose one of {', '.join(ICE40_DEVICES)}")
    workdir = Path(workdir) / f"pnr_{device}"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dut.v").write_text(case.verilog)
    res = place_and_route([workdir / "dut.v"], case.module, workdir, device=ICE40_DEVICES[device], seeds=seeds,
                          bitstream=False, nodsp=True)
    return [res.fmax_by_seed[s] for s in seeds]


# ---- the measurement ---------------------------------------------------------------------------
def measure_case(case: PECase, workdir: Path, *, devices: Sequence[str] = tuple(ICE40_DEVICES),
                 seeds: Sequence[int] = SEEDS) -> dict:
    """LUTs per target, routed Fmax per device and seed, and the per-MAC metrics of ``case``."""
    workdir = Path(workdir)
    luts = {t: synth_luts(case, t, workdir) for t in TARGETS}
    routed = {}
    for dev in devices:
        fmax = routed_fmax(case, dev, workdir, seeds)
        routed[dev] = {"fmax_mhz": fmax, "t_crit_ns": round(1000.0 / statistics.median(fmax), 3)}
    per_format = {}
    for fmt, iv in case.intervals.items():
        row = {"cycles_per_weight": iv}
        for t in TARGETS:
            row[f"lut_cycles_per_mac_{t}"] = round(luts[t] * iv / case.lanes, 2)
        for dev, r in routed.items():
            row[f"lut_ns_per_mac_{dev}"] = round(luts["ice40"] * r["t_crit_ns"] * iv / case.lanes, 1)
        per_format[fmt] = row
    return {"module": case.module, "summary": case.summary, "lanes": case.lanes,
            "verilog_sha256": case.verilog_sha256, "luts": luts, "routed": routed, "formats": per_format}


def measure(*, devices: Sequence[str] = tuple(ICE40_DEVICES), seeds: Sequence[int] = SEEDS) -> dict:
    """Every :func:`pe_cases` PE measured (see the module docstring for the metric)."""
    out = {"metric": "LUT·ns/MAC = LUTs(iCE40) x median routed critical path (ns) x cycles per weight / lanes; "
                     "LUT-cycles/MAC = LUTs x cycles per weight / lanes",
           "seeds": list(seeds), "pes": {}}
    with tempfile.TemporaryDirectory(prefix="hwq_pe_metrics_") as tmp:
        for case in pe_cases():
            out["pes"][case.name] = measure_case(case, Path(tmp) / case.name, devices=devices, seeds=seeds)
    return out


def load_results(path: Path = RESULTS_PATH) -> dict:
    """The committed measurement; :class:`UsageError` if it is missing."""
    if not Path(path).exists():
        raise UsageError(f"{path} is missing; run `python -m hwq.hw.pe_metrics --write`")
    return json.loads(Path(path).read_text())


# ---- report ------------------------------------------------------------------------------------
def _rows(res: dict) -> list[tuple[str, str, dict]]:
    return [(name, fmt, pe) for name, pe in res["pes"].items() for fmt in pe["formats"]]


def markdown_lines(res: dict | None = None) -> list[str]:
    """Markdown section "Bit-serial PE against its baselines" from the committed results."""
    res = load_results() if res is None else res
    pes = res["pes"]
    devs = list(next(iter(pes.values()))["routed"])
    head = ("| PE | weights | LUTs Xilinx | LUTs iCE40 | I (cycles/weight) | LUT-cycles/MAC Xilinx | "
            + " | ".join(f"routed ns {d.upper()} | LUT·ns/MAC {d.upper()}" for d in devs) + " |")
    lines = ["## Bit-serial PE against its baselines", "",
             f"Metric: {res['metric']}. Routed delay from nextpnr-ice40, median of seeds "
             f"{', '.join(map(str, res['seeds']))}; LUTs from Yosys with multipliers in LUTs "
             "(`synth_xilinx -nodsp`, `synth_ice40`). Generated by `python -m hwq.hw.pe_metrics --write` "
             "(`reports/pe_metrics.json`).", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    for name, fmt, pe in _rows(res):
        row = pe["formats"][fmt]
        cells = [name, fmt, str(pe["luts"]["xilinx"]), str(pe["luts"]["ice40"]), str(row["cycles_per_weight"]),
                 f"{row['lut_cycles_per_mac_xilinx']:g}"]
        for d in devs:
            cells += [f"{pe['routed'][d]['t_crit_ns']:.2f}", f"{row[f'lut_ns_per_mac_{d}']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + verdict_lines(res) + [""] + asic_lines()
    return lines


def asic_lines() -> list[str]:
    """Where the bit-serial claim is made: ASIC, by the cost model's PE energy
    (:meth:`hwq.spec.ComputeEnergySpec.pe_cycle_pj`: published 28 nm figures of the ``bitmod``
    and ``int8_parallel`` presets) and the published PE areas of :mod:`hwq.codesign.area`.
    Per MAC at W4A8 (bit-serial) and W8A8 (INT8)."""
    from hwq.codesign.area import BITMOD_PE_AREA_UM2, FP16_PE_AREA_UM2
    from hwq.datatypes import cycles_per_weight, resolve
    from hwq.spec import load_spec

    serial, par = load_spec("bitmod"), load_spec("int8_parallel")
    iv = cycles_per_weight(resolve("bitmod", 4).term_slots, serial.arithmetic.bits_per_cycle)
    e_serial = serial.compute.pe_cycle_pj(4, 8) * iv / serial.array.lanes
    e_par = par.compute.pe_cycle_pj(8, 8) / par.array.lanes
    a_serial = BITMOD_PE_AREA_UM2 * iv / serial.array.lanes
    a_par = FP16_PE_AREA_UM2 / par.array.lanes
    win = "wins" if e_serial < e_par else "does not win"
    return [f"On an ASIC (28 nm, the cost model's PE energy `ComputeEnergySpec.pe_cycle_pj` of the presets, "
            f"from published figures): the bit-serial PE at W4A8 ({iv} cycles/weight) spends {e_serial:.3f} pJ "
            f"per MAC against {e_par:.3f} pJ per INT8 MAC of `int8_parallel` ({e_serial / e_par:.2f}x: it "
            f"{win} on energy per MAC); its area-time per MAC is {a_serial:.0f} µm²·cycle (BitMoD PE "
            f"{BITMOD_PE_AREA_UM2} µm², {serial.array.lanes} lanes) against {a_par:.0f} µm²·cycle for a "
            f"bit-parallel PE priced at the FP16 PE's {FP16_PE_AREA_UM2} µm² (`hwq/codesign/area.py`; an upper "
            "bound for INT8). These are published figures, not measured here: on an ASIC a shift-add lane "
            "replaces a multiplier that costs several adders (Horowitz 45 nm: INT8 multiply 0.2 pJ, INT8 add "
            "0.03 pJ); on an FPGA a LUT multiplier with a 4-bit operand is only a few LUT adders, which is why the "
            "measured table above decides there."]


def verdict_lines(res: dict) -> list[str]:
    """The winner at each low-bit weight format and metric, named from the numbers."""
    pes = res["pes"]
    serial = pes["bit_serial"]
    base = {n: next(iter(p["formats"].values())) for n, p in pes.items() if n != "bit_serial"}
    keys = ["lut_cycles_per_mac_xilinx", "lut_cycles_per_mac_ice40"] + \
           [f"lut_ns_per_mac_{d}" for d in serial["routed"]]
    out = []
    for fmt in ("bitmod3", "bitmod4"):
        if fmt not in serial["formats"]:
            continue
        for key in keys:
            mine = serial["formats"][fmt][key]
            best = min(base, key=lambda n: base[n][key])
            verb = "beats" if mine < base[best][key] else "does not beat"
            out.append(f"- {fmt}, {key.replace('_', ' ')}: bit-serial {mine:,.1f} {verb} the best baseline "
                       f"({best}, {base[best][key]:,.1f}); ratio {mine / base[best][key]:.2f}.")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hwq.hw.pe_metrics [--write] [--seeds 1 2 3]``: measure and print (or write) the JSON."""
    ap = argparse.ArgumentParser(prog="python -m hwq.hw.pe_metrics", description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS_PATH.name} (else print)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = ap.parse_args(argv)
    try:
        res = measure(seeds=args.seeds)
    except HwqError as exc:
        raise SystemExit(f"error: {exc}") from None
    text = json.dumps(res, indent=1, sort_keys=True) + "\n"
    if args.write:
        from hwq.atomic import write_text
        write_text(RESULTS_PATH, text)
    print("\n".join(markdown_lines(res)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
