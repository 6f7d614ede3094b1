"""Place and route on iCE40 (nextpnr-ice40, icepack): routed Fmax, utilisation and a bitstream.

A block's top-level ports are far more than an iCE40 package has pins, so each block is
wrapped in a *harness* (:func:`harness_verilog`): every input bit comes from a shift-register
flip-flop fed by one pin, every output bit is captured in a flip-flop and shifted out through
another. All of the block's paths then start and end at flip-flops (input pins add no
unconstrained path), and the routed Fmax of the harness clock is the Fmax of the block's own
register-to-register paths plus its ports registered at both ends (a combinational block, such
as the weight decoder, is timed from its input registers to its output registers). The harness
adds ``inputs + 2 x outputs`` flip-flops and ``outputs`` LUTs, counted in the utilisation.

Flow per block: Yosys ``synth_ice40 -top hwq_pnr_top -dsp -json`` (the same mapping as
:mod:`hwq.hw.synth`), ``nextpnr-ice40 --<device> --package <pkg> --freq <MHz> --seed <s>
--report``, for several seeds (Fmax = median over seeds), then ``icepack`` on the first seed's
placement to build the bitstream (``.bin``).

nextpnr-ice40 (0.4) does not time paths inside ``SB_MAC16`` DSP blocks: a design that maps
multipliers to DSPs has its multiply paths untimed, so its routed Fmax is an upper bound.
:func:`place_and_route` reports the DSP count next to the Fmax so a reader can tell.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from hwq.errors import HwqError, ToolMissingError, UsageError
from hwq.toolchain import require_yosys

#: nextpnr-ice40 device flag and default package of every iCE40 part hwq targets (lower-case part name).
ICE40_DEVICES: dict[str, tuple[str, str]] = {
    "ice40up5k": ("--up5k", "sg48"),
    "ice40up3k": ("--up3k", "sg48"),
    "ice40hx8k": ("--hx8k", "ct256"),
    "ice40hx4k": ("--hx4k", "tq144"),
    "ice40hx1k": ("--hx1k", "tq144"),
    "ice40lp8k": ("--lp8k", "cm81"),
}

#: Parts with SB_MAC16 DSP blocks (UltraPlus); on the others multipliers are synthesised to LUTs.
DSP_DEVICES: frozenset[str] = frozenset({"ice40up5k", "ice40up3k"})

#: Seeds of a default run (the Fmax is their median).
DEFAULT_SEEDS: tuple[int, ...] = (1, 2, 3)

#: Default nextpnr ``--freq`` target (MHz): above what the iCE40 fabric reaches, so timing-driven
#: placement always works on the critical path (the run does not fail on it: ``--timing-allow-fail``).
DEFAULT_TARGET_MHZ = 100.0

#: Caveat printed wherever a routed Fmax is shown.
DSP_NOTE = ("nextpnr-ice40 does not time paths inside SB_MAC16 DSP blocks: with DSPs > 0 the multiply "
            "paths are untimed and the Fmax is an upper bound")

HARNESS_TOP = "hwq_pnr_top"

#: nextpnr "clocks" that are constant nets (a clock pin tied off), not clocks of the design.
_CONSTANT_NETS = ("$PACKER_GND", "$PACKER_VCC")

INSTALL_HINT = "install it: `apt-get install -y nextpnr-ice40 fpga-icestorm` (or run `make setup`)"

#: nextpnr utilisation rows reported, with hwq's names.
_UTIL_NAMES = {"ICESTORM_LC": "LC", "ICESTORM_RAM": "EBR", "ICESTORM_SPRAM": "SPRAM", "ICESTORM_DSP": "DSP",
               "SB_IO": "IO", "SB_GB": "GB"}


@dataclass(frozen=True)
class Port:
    """One top-level port of a block: name, ``input``/``output``, width (bits)."""

    name: str
    direction: str
    width: int


@dataclass
class PnrResult:
    """Routed result of one block on one device.

    Attributes:
        top: the block's Verilog module; device/package: the part routed on.
        fmax_mhz: median over ``seeds`` of the routed Fmax (MHz) of the slowest clock (the harness
            has one clock; nextpnr's clocks of constant nets, e.g. an EBR clock tied low, are ignored).
        fmax_by_seed: that Fmax per seed (MHz); clocks: median Fmax per nextpnr clock net (MHz);
        target_mhz: nextpnr ``--freq`` (MHz).
        utilisation: ``{LC, EBR, SPRAM, DSP, IO, GB: [used, available]}`` (first seed).
        harness_ffs: flip-flops the harness adds (inputs + 2 x outputs).
        bitstream: path of the ``.bin`` icepack wrote (empty when not asked for).
    """

    top: str
    device: str
    package: str
    fmax_mhz: float
    fmax_by_seed: dict[int, float]
    clocks: dict[str, float]
    target_mhz: float
    utilisation: dict[str, list[int]]
    harness_ffs: int
    bitstream: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """JSON-ready dict (seed keys as strings)."""
        d = asdict(self)
        d["fmax_by_seed"] = {str(k): v for k, v in self.fmax_by_seed.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "PnrResult":
        """Inverse of :meth:`to_json`; ValueError when ``d`` is not one (e.g. written by another version)."""
        try:
            d = dict(d)
            d["fmax_by_seed"] = {int(k): float(v) for k, v in d["fmax_by_seed"].items()}
            return cls(**d)
        except (TypeError, KeyError, ValueError, AttributeError) as err:
            raise ValueError(f"not a P&R result: {err}") from None


def require_tool(name: str) -> str:
    """Path of ``nextpnr-ice40`` or ``icepack``; :class:`ToolMissingError` with an install hint when absent."""
    found = shutil.which(name)
    if not found:
        raise ToolMissingError(f"{name} not found on PATH; {INSTALL_HINT}")
    return found


def device_args(device: str, package: str = "") -> tuple[str, str]:
    """``(nextpnr device flag, package)`` of an iCE40 part; UsageError for a part nextpnr-ice40 cannot route."""
    key = device.lower()
    if key not in ICE40_DEVICES:
        raise UsageError(f"device {device!r} cannot be placed and routed here (nextpnr-ice40 only); "
                         f"choose one of {', '.join(ICE40_DEVICES)}")
    flag, default_pkg = ICE40_DEVICES[key]
    return flag, package or default_pkg


def _run(cmd: Sequence[str], cwd: Path, log: Path, timeout_s: int) -> int:
    with open(log, "w") as f:
        try:
            return subprocess.run(list(cmd), cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            raise HwqError(f"{Path(cmd[0]).name} ran past {timeout_s} s (log {log})") from None


def module_ports(files: Sequence[Path], top: str, workdir: Path) -> list[Port]:
    """Top-level ports of module ``top`` in ``files`` (Yosys ``portlist``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = "\n".join([*(f"read_verilog {Path(f).resolve()}" for f in files), f"hierarchy -top {top}",
                        f"tee -q -o ports.txt portlist {top}"]) + "\n"
    (workdir / "ports.ys").write_text(script)
    if _run([require_yosys(), "-q", "-s", "ports.ys"], workdir, workdir / "ports.log", 300):
        tail = (workdir / "ports.log").read_text().strip().splitlines()[-2:]
        raise HwqError(f"yosys could not read {top} (log {workdir / 'ports.log'}): {' | '.join(tail)}")
    ports = []
    for line in (workdir / "ports.txt").read_text().splitlines():
        m = re.fullmatch(r"\s*(input|output|inout) \[(\d+):(\d+)\] (\S+)\s*", line)
        if m:
            ports.append(Port(m.group(4), m.group(1), abs(int(m.group(2)) - int(m.group(3))) + 1))
    if not ports:
        raise HwqError(f"module {top} has no ports (log {workdir / 'ports.log'})")
    return ports


def harness_verilog(top: str, ports: Sequence[Port]) -> tuple[str, int]:
    """``(Verilog, flip-flops added)`` of :data:`HARNESS_TOP`: pins ``clk``, ``din``, ``load``, ``dout`` around ``top``.

    Inputs other than ``clk`` are slices of a ``din``-fed shift register; outputs are captured
    in a register and shifted out of ``dout`` (``load`` high: parallel load).
    """
    if any(p.direction == "inout" for p in ports):
        raise UsageError(f"module {top} has inout ports; the P&R harness supports input/output only")
    ins = [p for p in ports if p.direction == "input" and p.name != "clk"]
    outs = [p for p in ports if p.direction == "output"]
    ni, no = max(1, sum(p.width for p in ins)), max(1, sum(p.width for p in outs))
    conns, pos = [], 0
    if any(p.name == "clk" for p in ports):
        conns.append(".clk(clk)")
    for p in ins:
        conns.append(f".{p.name}(si[{pos + p.width - 1}:{pos}])")
        pos += p.width
    pos = 0
    for p in outs:
        conns.append(f".{p.name}(bo[{pos + p.width - 1}:{pos}])")
        pos += p.width
    shift_in = "din" if ni == 1 else f"{{si[{ni - 2}:0], din}}"
    shift_out = "1'b0" if no == 1 else f"{{so[{no - 2}:0], 1'b0}}"
    return "\n".join([
        f"// hwq P&R harness around {top}: {ni} input and {no} output bits registered (hwq.hw.pnr)",
        f"module {HARNESS_TOP}(input clk, input din, input load, output dout);",
        f"  reg [{ni - 1}:0] si = 0;",
        f"  always @(posedge clk) si <= {shift_in};",
        f"  wire [{no - 1}:0] bo;",
        f"  {top} dut({', '.join(conns)});",
        f"  reg [{no - 1}:0] cap = 0;",
        f"  reg [{no - 1}:0] so = 0;",
        "  always @(posedge clk) begin",
        "    cap <= bo;",
        f"    so <= load ? cap : {shift_out};",
        "  end",
        f"  assign dout = so[{no - 1}];",
        "endmodule",
        "",
    ]), ni + 2 * no


def _nextpnr_error(log: Path, device: str) -> str:
    """One line naming why nextpnr failed: the over-used resource when the design does not fit."""
    text = log.read_text(errors="replace")
    for m in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", text):
        name, used, avail = m.group(1), int(m.group(2)), int(m.group(3))
        if used > avail:
            return (f"design does not fit {device}: {_UTIL_NAMES.get(name, name)} ({name}) {used} used, "
                    f"{avail} available")
    errors = [ln.strip() for ln in text.splitlines() if ln.startswith("ERROR")]
    return errors[-1] if errors else " | ".join(text.strip().splitlines()[-2:])


def place_and_route(files: Sequence[Path], top: str, workdir: Path, *, device: str, package: str = "",
                    seeds: Sequence[int] = DEFAULT_SEEDS, target_mhz: float = DEFAULT_TARGET_MHZ,
                    bitstream: bool = True, nodsp: bool = False, timeout_s: int = 1800) -> PnrResult:
    """Synthesise ``top`` (from ``files``) in the harness, route it on ``device`` for each seed,
    and (``bitstream``) pack the first seed's result to ``workdir/<top>.bin``.

    ``nodsp`` (forced on parts without DSPs): multipliers in LUTs (``synth_ice40`` without ``-dsp``),
    so nextpnr times them.

    Raises :class:`HwqError` with one line naming the cause when a tool fails (for a design
    that does not fit: the resource, used and available counts).
    """
    if not seeds:
        raise UsageError("give at least one seed")
    flag, package = device_args(device, package)
    nodsp = nodsp or device.lower() not in DSP_DEVICES  # HX/LP parts have no SB_MAC16: LUT multipliers
    nextpnr = require_tool("nextpnr-ice40")
    icepack = require_tool("icepack") if bitstream else ""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ports = module_ports(files, top, workdir)
    harness, harness_ffs = harness_verilog(top, ports)
    (workdir / "harness.v").write_text(harness)
    synth = "synth_ice40 -top {t}" + ("" if nodsp else " -dsp")
    script = "\n".join([*(f"read_verilog {Path(f).resolve()}" for f in files), "read_verilog harness.v",
                        synth.format(t=HARNESS_TOP) + " -json pnr_in.json"]) + "\n"
    (workdir / "pnr_synth.ys").write_text(script)
    if _run([require_yosys(), "-q", "-s", "pnr_synth.ys"], workdir, workdir / "pnr_yosys.log", timeout_s):
        tail = (workdir / "pnr_yosys.log").read_text().strip().splitlines()[-2:]
        raise HwqError(f"yosys failed on {top} for {device} (log {workdir / 'pnr_yosys.log'}): {' | '.join(tail)}")
    fmax: dict[int, float] = {}
    per_clock: dict[str, dict[int, float]] = {}
    util: dict[str, list[int]] = {}
    for i, seed in enumerate(seeds):
        log, report = workdir / f"nextpnr_seed{seed}.log", workdir / f"report_seed{seed}.json"
        cmd = [nextpnr, flag, "--package", package, "--json", "pnr_in.json", "--pcf-allow-unconstrained",
               "--freq", f"{target_mhz:g}", "--timing-allow-fail", "--seed", str(seed), "--report", report.name,
               "-q", "-l", log.name]
        if i == 0 and bitstream:
            cmd += ["--asc", f"{top}.asc"]
        if _run(cmd, workdir, log, timeout_s):
            raise HwqError(f"nextpnr-ice40 failed on {top} for {device} (log {log}): {_nextpnr_error(log, device)}")
        rep = json.loads(report.read_text())
        clocks = {name: float(c["achieved"]) for name, c in rep.get("fmax", {}).items()
                  if not name.startswith(_CONSTANT_NETS)}
        if not clocks:
            raise HwqError(f"nextpnr-ice40 reported no clock for {top} (log {log}); the harness clock was removed?")
        for name, mhz in clocks.items():
            per_clock.setdefault(name, {})[seed] = mhz
        fmax[seed] = min(clocks.values())
        if i == 0:
            util = {name: [int(rep["utilization"][k]["used"]), int(rep["utilization"][k]["available"])]
                    for k, name in _UTIL_NAMES.items() if k in rep.get("utilization", {})}
    bin_path = ""
    if bitstream:
        packed = workdir / f"{top}.bin"
        if _run([icepack, f"{top}.asc", packed.name], workdir, workdir / "icepack.log", timeout_s) or not packed.exists():
            raise HwqError(f"icepack failed on {top} (log {workdir / 'icepack.log'})")
        bin_path = str(packed)
    notes = [DSP_NOTE] if util.get("DSP", [0])[0] else []
    return PnrResult(top=top, device=device.lower(), package=package, fmax_mhz=float(statistics.median(fmax.values())),
                     fmax_by_seed=fmax, clocks={c: float(statistics.median(v.values())) for c, v in per_clock.items()},
                     target_mhz=float(target_mhz), utilisation=util, harness_ffs=harness_ffs,
                     bitstream=bin_path, notes=notes)


def pnr_markdown(title: str, results: dict[str, PnrResult]) -> list[str]:
    """Markdown lines of a P&R table, one row per block (``title``: spec or device name)."""
    if not results:
        return []
    first = next(iter(results.values()))
    seeds = ", ".join(str(s) for s in first.fmax_by_seed)
    lines = ["", f"## Place and route of `{title}`: {first.device} ({first.package}), nextpnr-ice40", "",
             f"Fmax: routed, median over seeds {seeds} (`--freq {first.target_mhz:g}`, `--timing-allow-fail`), "
             "per clock net; the slowest clock is the block's Fmax. Each block sits in a harness that registers "
             "every port (hwq.hw.pnr; its flip-flops are counted in LC). "
             f"Note: {DSP_NOTE}.", "",
             "| block | Fmax MHz (median) | per seed | clocks (MHz) | LC used/avail | EBR | SPRAM | DSP | bitstream |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for top, r in results.items():
        u = r.utilisation
        cell = lambda k: f"{u[k][0]}/{u[k][1]}" if k in u else "-"  # noqa: E731
        per_seed = ", ".join(f"{v:.1f}" for v in r.fmax_by_seed.values())
        clocks = ", ".join(f"`{c}` {v:.1f}" for c, v in r.clocks.items())
        lines.append(f"| `{top}` | {r.fmax_mhz:.1f} | {per_seed} | {clocks} | {cell('LC')} | {cell('EBR')} "
                     f"| {cell('SPRAM')} | {cell('DSP')} | {Path(r.bitstream).name if r.bitstream else '-'} |")
    return lines
