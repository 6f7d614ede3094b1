"""The cost model as it was before issue 11 (git commit :data:`BASELINE_COMMIT`), loaded from git.

Used only to measure against: ``benchmarks/bench_cost.py`` times it beside the current model in
the same run, and ``python -m hwq.reports.cost_model`` lists what closing each hole changed.
Nothing in hwq's pipeline imports it.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Last commit with the old cost model (before liveness residency, element-wise costs, strided
#: 1x1 inputs, DRAM-read input images, partial-sum elision and the accumulate dataflow).
BASELINE_COMMIT = "1811df6"


def load_baseline_cost() -> types.ModuleType:
    """The old ``hwq/cost.py`` as a module (``evaluate`` works on today's workloads and specs).

    Raises ``RuntimeError`` when the commit is not in this clone (e.g. a shallow clone).
    """
    try:
        src = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:hwq/cost.py"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(f"baseline cost model {BASELINE_COMMIT} is not available in {REPO} "
                           f"(a shallow clone? run `git fetch --unshallow`): {err}") from None
    mod = types.ModuleType("hwq_cost_baseline")
    mod.__file__ = f"git:{BASELINE_COMMIT}:hwq/cost.py"
    sys.modules[mod.__name__] = mod
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)  # noqa: S102 - our own committed source
    return mod
