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
