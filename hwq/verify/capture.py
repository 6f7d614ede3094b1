"""Find one layer of a registered model and capture the real activation that enters it.

A layer is named ``MODEL:LAYER`` where ``MODEL`` is a name from ``models.registry`` and
``LAYER`` the module's qualified name in ``model.named_modules()`` (the same names the
workload capture and ``plan.json`` use), e.g. ``resnet50:layer1.0.conv2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwq.errors import UsageError

#: Module types whose weights run on the PE array (lowered to one GEMM each).
GEMM_MODULE_TYPES = ("Conv2d", "Linear")


@dataclass(frozen=True)
class LayerRef:
    """A parsed ``MODEL:LAYER`` reference."""

    model: str
    layer: str

    def __str__(self) -> str:
        return f"{self.model}:{self.layer}"


def parse_layer_ref(text: str) -> LayerRef:
    """Split ``MODEL:LAYER``; raise :class:`UsageError` when either part is missing."""
    model, sep, layer = text.rpartition(":")  # layer names hold no ':'; models may (torchvision:NAME)
    if not sep or not model or not layer:
        raise UsageError(f"layer {text!r} is not MODEL:LAYER; give e.g. resnet50:layer1.0.conv2")
    return LayerRef(model.strip(), layer.strip())


def load_model(model_name: str) -> tuple[Any, Any]:
    """``(recipe, model in eval mode)`` for a registered model name (unknown -> UsageError)."""
    from models.registry import get_recipe

    recipe = get_recipe(model_name)
    model = recipe.build()
    model.eval()
    return recipe, model


def find_gemm_module(model: Any, ref: LayerRef) -> Any:
    """The ``Conv2d``/``Linear`` module named ``ref.layer``; UsageError lists close names otherwise."""
    modules = dict(model.named_modules())
    gemm_names = [n for n, m in modules.items() if type(m).__name__ in GEMM_MODULE_TYPES]
    module = modules.get(ref.layer)
    if module is None:
        close = [n for n in gemm_names if ref.layer.split(".")[-1] in n][:5] or gemm_names[:5]
        raise UsageError(f"model {ref.model!r} has no layer {ref.layer!r}; its GEMM layers include "
                         f"{', '.join(close)} ({len(gemm_names)} in all)")
    if type(module).__name__ not in GEMM_MODULE_TYPES:
        raise UsageError(f"layer {ref} is a {type(module).__name__}, not a Conv2d or Linear; "
                         f"pick one of its GEMM layers, e.g. {', '.join(gemm_names[:3])}")
    return module


def _call(model: Any, batch: Any) -> Any:
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def capture_input(model: Any, module: Any, batch: Any) -> Any:
    """Run ``model`` on ``batch`` and return the float tensor that enters ``module`` (first call).

    The forward pass stops as soon as the input is captured.
    """
    import torch

    captured: list[torch.Tensor] = []

    class _Captured(Exception):
        pass

    def hook(_mod: Any, args: tuple[Any, ...]) -> None:
        captured.append(args[0].detach().clone())
        raise _Captured

    handle = module.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            _call(model, batch)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise UsageError(f"layer {type(module).__name__} was not called by the model's forward pass; "
                         "pick a layer the model uses")
    return captured[0]
