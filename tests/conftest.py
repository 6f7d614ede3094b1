"""Shared pytest set-up. Tests run as two xdist workers on a 2-core machine: one intra-op
thread per worker avoids oversubscription (small-tensor torch ops get ~15x slower otherwise)."""

import os

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
os.environ.setdefault("MPLBACKEND", "Agg")

# Property tests: no per-example deadline (two xdist workers share 2 cores) and a fixed example
# sequence, so a CI run is reproducible; HYPOTHESIS_PROFILE=explore searches with fresh seeds.
settings.register_profile("ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Pin torch to one intra-op thread for the whole session (see the module docstring)."""
    import torch

    torch.set_num_threads(1)
    yield


#: ``make test`` runs ``pytest -n 2 --dist loadfile --no-loadscope-reorder``: a test file's tests
#: share one xdist worker (so its module fixtures and cached builds are made once), and files are
#: handed out in collection order. (``--dist loadgroup`` would group finer, but pytest-xdist 3.8
#: tags group members by rewriting ``item._nodeid``, which pytest 9 no longer reads: every test
#: then lands in a group of its own.) Tests marked ``long_build`` hold the suite's longest serial
#: work (one streaming build of the full bitmod array and the tests that run it; the FPGA presets'
#: Yosys synthesis): they are collected first, so their files are the first units and each worker
#: starts one at once while the rest fill in around them, instead of the suite waiting on a long
#: file at its end.
LONG_BUILD = "long_build"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LONG_BUILD}: shares a long build or synthesis with the other tests of "
                                       "its file; collected first (see tests/conftest.py)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the ``long_build`` tests to the front, in file order (stable: the rest keep theirs)."""
    items.sort(key=lambda item: item.get_closest_marker(LONG_BUILD) is None)
