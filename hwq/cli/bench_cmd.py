"""``hwq bench``: run the speed benchmarks in ``benchmarks/`` and print what they report."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from hwq.errors import HwqError, UsageError

HELP = "run every benchmarks/bench_*.py (or the named ones) and print their reports"

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def available() -> list[str]:
    """Benchmark names (``bench_<name>.py`` -> ``<name>``), sorted."""
    return sorted(p.stem[len("bench_"):] for p in BENCH_DIR.glob("bench_*.py"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="benchmarks to run, e.g. `sim` for benchmarks/bench_sim.py (default: all)")


def run(args: argparse.Namespace) -> int:
    names = available()
    if not names:
        raise UsageError(f"no benchmarks found in {BENCH_DIR} (expected bench_*.py files)")
    chosen = args.names or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise UsageError(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(names)}")
    failed: list[str] = []
    for name in chosen:
        script = BENCH_DIR / f"bench_{name}.py"
        print(f"== {script.relative_to(BENCH_DIR.parent)}", flush=True)
        proc = subprocess.run([sys.executable, str(script)], cwd=BENCH_DIR.parent, check=False)
        if proc.returncode != 0:
            failed.append(f"{name} (exit {proc.returncode})")
    if failed:
        raise HwqError(f"benchmark(s) failed: {', '.join(failed)}")
    return 0
