"""Generated-Verilog size and simulator build time of a preset's PE array, with and without
per-word memory init.

Run: ``nice -n 10 .venv/bin/python benchmarks/bench_rtl_build.py [--arch bitmod] [--simulator verilator]
[--with-init] [--spec-depths]``. Builds the streaming co-simulation harness
(:func:`hwq.verify.stream.build_stream`) of the preset's full-size array from nothing, at the
buffer depths the whole-layer path uses (:func:`hwq.verify.stream.shared_build_config`), or at
the spec's depths with ``--spec-depths``. ``--with-init`` emits the memories as Amaranth does by
default (one ``initial`` assignment per word, the emission before issue 14) for the comparison.
``--rows``/``--cols`` shrink the array (the buffers' words shrink with cols). Prints one JSON
line: ``pe_array.v`` bytes, ``initial`` blocks, build wall seconds and CPU seconds (generation,
Verilator and the C++ compile; the CPU figure is the one to compare on a shared machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="bitmod")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--with-init", action="store_true", help="emit per-word memory init (old behaviour)")
    parser.add_argument("--spec-depths", action="store_true", help="buffers at the spec's depths")
    parser.add_argument("--rows", type=int, default=None, help="override the preset's rows (smaller array)")
    parser.add_argument("--cols", type=int, default=None, help="override the preset's cols")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    from hwq.hw import generate
    from hwq.hw.config import array_config_from_spec
    from hwq.hw.presets import array_config_for
    from hwq.spec import load_spec
    from hwq.verify.stream import build_stream, shared_build_config

    spec = load_spec(args.arch)
    geo = {k: v for k, v in (("rows", args.rows), ("cols", args.cols)) if v is not None}
    cfg = (array_config_for(spec, **geo) if args.spec_depths
           else shared_build_config(array_config_from_spec(spec, **geo)))
    if args.with_init:
        generate.uninitialised_rams = contextlib.nullcontext  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="hwq_bench_build_") as tmp:
        t0, c0 = time.perf_counter(), _cpu_s()
        build = build_stream(cfg, args.simulator, build_dir=Path(tmp) / "b", jobs=args.jobs)
        total, cpu = time.perf_counter() - t0, _cpu_s() - c0
        text = (Path(tmp) / "b" / "pe_array.v").read_text()
    print(json.dumps({"arch": args.arch, "simulator": args.simulator, "with_init": args.with_init,
                      "depths": [cfg.x_depth, cfg.w_depth, cfg.out_depth], "pe_array_v_bytes": len(text),
                      "initial_blocks": text.count("initial begin"), "build_s": round(build.build_s, 1),
                      "generate_and_build_s": round(total, 1), "cpu_s": round(cpu, 1),
                      "geometry": [cfg.rows, cfg.cols, cfg.lanes]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
