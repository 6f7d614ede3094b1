"""Layer-level co-simulation proof (``hwq sim``): a real layer's tile on the array RTL must match
the golden model bit for bit, in the cycles ``hwq.timing`` predicts.

Public API: :func:`check_layer`, :func:`check_layers`, :func:`prepare_layer`, :class:`LayerCheckResult`
(all in :mod:`hwq.verify.check`).
"""

from hwq.verify.check import LayerCheckResult, check_layer, check_layers, prepare_layer

__all__ = ["LayerCheckResult", "check_layer", "check_layers", "prepare_layer"]
