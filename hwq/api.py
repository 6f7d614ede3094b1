"""One call from a model to a precision plan: ``hwq.explore(model, example_inputs, budget="2mJ")``.

In the style of torchao's ``quantize_(model, config)``: the plan is data (the ``plan.json`` dict, which
:func:`hwq.quant.quantize_model` takes), applying it is one more call::

    import hwq, torch, torchvision
    from hwq.quant import quantize_model, calibrate

    model = torchvision.models.mobilenet_v3_small(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    plan = hwq.explore(model, x, budget="2mJ", arch="bitmod_edge", calib=[torch.randn(8, 3, 224, 224)])
    qmodel = calibrate(quantize_model(model, plan), [x])

The pipeline is ``hwq explore``'s (:mod:`hwq.search.explore`); ``model`` may also be any ``--model``
string (``"torchvision:efficientnet_b0"``, ``"net.py:build"``, a ``.pt2``, a Hugging Face folder).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable


def explore(model: Any, example_inputs: Any = None, budget: str | float = "2mJ", *, arch: str | None = None,
            calib: Iterable[Any] | None = None, latency: str | None = None, max_size: str | None = None,
            out: str | None = None, warn: Callable[[str], None] | None = None, **options: Any) -> dict:
    """The per-layer precision plan (``plan.json`` dict) of ``model`` under ``budget`` per inference.

    ``model``: an ``nn.Module`` (then ``example_inputs`` is required: a tensor or tuple) or a ``--model``
    string. ``arch``: preset name or spec YAML (default: ``hwq.spec.DEFAULT_PRESET``, as the CLI). ``budget``: energy text (``"2mJ"``) or joules. ``calib``: input batches for the sensitivity
    (default: synthetic data of the example input's shape, with a warning). ``latency``/``max_size``:
    optional budgets as text. ``out``: also write the report folder there. Other keywords go to
    :class:`hwq.search.explore.ExploreRequest` (``sensitivity``, ``solver``, ``pareto``, ``calib_samples``,
    ``keep_first_last_8bit``, ``tie_residual``, ``refine``...). Raises ``UsageError`` /
    ``UnsatisfiableError`` as the CLI does (the latter names the cheapest plan's cost).
    """
    import warnings

    import torch

    from hwq.cli import validate as v
    from hwq.errors import UsageError
    from hwq.search.explore import ExploreRequest
    from hwq.search.explore import explore as run
    from hwq.search.units import format_si

    from hwq.spec import DEFAULT_PRESET

    arch = arch or DEFAULT_PRESET
    budget_j = float(budget) if isinstance(budget, (int, float)) else v.energy(budget)
    recipe = None
    name = model
    if isinstance(model, torch.nn.Module):
        if example_inputs is None:
            raise UsageError("hwq.explore(model, example_inputs, ...): give an example input for an nn.Module")
        from models.resolve import _recipe

        name = type(model).__name__
        state = {k: t.clone() for k, t in model.state_dict().items()}

        def build(weights=None, _m=model):
            _m.load_state_dict(state)
            return _m.eval()

        batches = None if calib is None else list(calib)
        calibration = None if batches is None else (lambda n, calib_dir: batches)
        recipe = _recipe(name, f"user module {name}", build, lambda: example_inputs, calibration,
                         weights_description="the module's own weights",
                         calibration_source=None if batches is None else "the calibration batches given to hwq.explore")
    elif not isinstance(model, str):
        raise UsageError(f"hwq.explore: model must be an nn.Module or a --model string, not {type(model).__name__}")
    elif calib is not None:
        raise UsageError("hwq.explore: calib applies to an nn.Module; a --model string uses its recipe's data")
    if calib is not None and "calib_samples" not in options:
        options["calib_samples"] = sum(len(b[0] if isinstance(b, (tuple, list)) else b) for b in batches)
    req = ExploreRequest(model=name, budget_j=budget_j, budget_text=format_si(budget_j, "J"), arch=arch,
                         latency_s=v.latency(latency) if latency else None,
                         size_bytes=v.size(max_size) if max_size else None, out=out, write=out is not None,
                         pareto=options.pop("pareto", 0), recipe=recipe, **options)
    if warn is None:
        warn = lambda msg: warnings.warn(msg, stacklevel=3)  # noqa: E731
    return run(req, warn=warn).plan
