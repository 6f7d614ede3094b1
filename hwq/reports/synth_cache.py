"""Content-addressed cache of Yosys resources and Verilator lint counts for report generators.

A result is keyed by a SHA-256 of everything that determines it: the Verilog text of every file
(by name), the top module, the target and its Yosys command (:data:`hwq.hw.synth._SYNTH_CMD`),
``nodsp``, and the tool's version line. Unchanged RTL is therefore never synthesised twice; a
change to the Verilog, the flow or the tool re-runs it. The cache lives in ``.hwq_cache/`` (git
ignored) and is safe to delete.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / ".hwq_cache" / "hardware_report"


@lru_cache(maxsize=None)
def tool_version(exe: str, flag: str = "--version") -> str:
    """First output line of ``exe flag`` (part of every cache key)."""
    p = subprocess.run([exe, flag], capture_output=True, text=True)
    return ((p.stdout + p.stderr).strip().splitlines() or ["?"])[0]


def cache_key(*parts: str, files: Mapping[str, str]) -> str:
    """SHA-256 over ``parts`` and the ``{name: text}`` sources (sorted by name)."""
    h = hashlib.sha256()
    for part in (*parts, *(f"{n}\n{t}" for n, t in sorted(files.items()))):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


class JsonCache:
    """A JSON object on disk, ``{key: value}``, rewritten atomically after every new entry."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    def get_or_compute(self, key: str, compute: Callable[[], object]):
        """The cached value of ``key``, else ``compute()`` stored under it."""
        if key not in self.data:
            from hwq.atomic import write_text

            self.data[key] = compute()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")
        return self.data[key]


def _write(files: Mapping[str, str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        (folder / name).write_text(text)
        paths.append(folder / name)
    return paths


def synth_resources(files: Mapping[str, str], top: str, target: str, *, nodsp: bool = False,
                    cache: JsonCache | None = None, log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Yosys resources (:data:`hwq.hw.synth.RESOURCE_KEYS`) of ``top`` in ``files`` for ``target``, cached."""
    from hwq.hw.synth import _SYNTH_CMD, synthesize
    from hwq.toolchain import require_yosys

    cache = cache or JsonCache(CACHE_DIR / "synth.json")
    key = cache_key("synth", top, target, _SYNTH_CMD[target], f"nodsp={nodsp}", tool_version(require_yosys(), "-V"),
                    files=files)

    def run() -> dict[str, float]:
        if log:
            log(f"synthesising {top} for {target}{' (no DSP)' if nodsp else ''}")
        with tempfile.TemporaryDirectory(prefix="hwq_synth_") as tmp:
            paths = _write(files, Path(tmp) / "src")
            return synthesize({top: paths}, target, Path(tmp) / "out", nodsp=nodsp)[top]["resources"]

    return dict(cache.get_or_compute(key, run))


def lint_counts(files: Mapping[str, str], top: str, *, cache: JsonCache | None = None) -> dict[str, int]:
    """``verilator --lint-only -Wall`` warning counts by kind of ``top`` in ``files``, cached."""
    import re

    from hwq.toolchain import require_simulator

    verilator = require_simulator("verilator")
    cache = cache or JsonCache(CACHE_DIR / "lint.json")
    key = cache_key("lint", top, tool_version(verilator), files=files)

    def run() -> dict[str, int]:
        with tempfile.TemporaryDirectory(prefix="hwq_lint_") as tmp:
            paths = _write(files, Path(tmp))
            proc = subprocess.run([verilator, "--lint-only", "-Wall", "--top-module", top, *map(str, paths)],
                                  capture_output=True, text=True)
        counts: dict[str, int] = {}
        for kind in re.findall(r"%Warning-([A-Z0-9_]+):", proc.stderr):
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    return dict(cache.get_or_compute(key, run))
