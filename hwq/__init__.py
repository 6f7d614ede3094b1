"""hwq: hardware-aware accelerator co-design.

Point hwq at a PyTorch model and an energy or latency budget; get back a per-layer
precision plan, the accelerator that runs it, and proof (cocotb co-simulation of the
generated RTL against the numpy golden model) that the hardware computes exactly what
the software promised.

Sub-packages: ``hwq.datatypes`` (the one datatype table), ``hwq.quant`` (PyTorch
quantizers), ``hwq.golden`` (bit-exact integer model), ``hwq.cost`` (analytic cost model),
``hwq.search`` (sensitivity + ILP), ``hwq.hw`` (Amaranth generators), ``hwq.cli``.
"""

__version__ = "0.1.0"
__all__ = ["__version__", "explore"]


def __getattr__(name: str):
    """``hwq.explore`` (:func:`hwq.api.explore`), imported on first use so ``import hwq`` stays light."""
    if name == "explore":
        from hwq.api import explore

        return explore
    raise AttributeError(f"module 'hwq' has no attribute {name!r}")
