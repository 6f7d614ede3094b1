"""Quantization-aware fine-tuning of a chosen plan with distillation from the float model.

HAWQ-V3 fine-tunes after choosing the bits; hwq does the short version on the calibration
data: the student is :func:`hwq.quant.quantize_model` of the float model under the plan
(fake-quant weights with the straight-through estimator, activation scales calibrated once
and then frozen), the teacher is the float model, and the loss is

* classifier outputs (2-D logits): ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``,
* anything else (e.g. MiniLM's hidden states): mean squared error to the teacher output,
  normalised by the teacher output's mean square.

BatchNorm layers stay in eval mode (their running statistics are not re-estimated from a
few calibration batches); weights, biases and BatchNorm affine parameters are trained with
Adam. Runs on the GPU when one is present (``device="auto"``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn


#: Adam learning rate per model recipe (the digits CNN trains from a small checkpoint; a
#: pretrained transformer needs a small step). Models not listed: :data:`DEFAULT_LR_OTHER`.
DEFAULT_LR: dict[str, float] = {"digits_cnn": 1e-3}
DEFAULT_LR_OTHER = 1e-5
#: Calibration samples fine-tuned on per model recipe (images, sentences, ...); others: 64.
DEFAULT_CALIB_SAMPLES: dict[str, int] = {"digits_cnn": 512}
DEFAULT_CALIB_SAMPLES_OTHER = 64


def default_lr(model_name: str) -> float:
    """Default Adam learning rate of ``hwq finetune`` for ``model_name`` (dimensionless)."""
    return DEFAULT_LR.get(model_name, DEFAULT_LR_OTHER)


def default_calib_samples(model_name: str) -> int:
    """Default number of calibration samples ``hwq finetune`` trains on for ``model_name``."""
    return DEFAULT_CALIB_SAMPLES.get(model_name, DEFAULT_CALIB_SAMPLES_OTHER)


@dataclass
class FinetuneResult:
    """The fine-tuned student and what happened."""

    model: nn.Module
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    device: str = "cpu"
    seconds: float = 0.0


def pick_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cpu``/``cuda`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from hwq.errors import UsageError

        raise UsageError("--device cuda: no CUDA device is available; use --device cpu or auto")
    return torch.device(device)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def _forward(model: nn.Module, batch: Any) -> torch.Tensor:
    from hwq.search.sensitivity import _call, _main_output

    return _main_output(_call(model, batch))


def distill_loss(student_out: torch.Tensor, teacher_out: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """KL on 2-D logits (temperature ``T``, scaled by ``T^2``), else normalised MSE."""
    if student_out.dim() == 2 and student_out.shape[1] > 1:
        t = temperature
        return nn.functional.kl_div(nn.functional.log_softmax(student_out / t, dim=1),
                                    nn.functional.log_softmax(teacher_out / t, dim=1), reduction="batchmean",
                                    log_target=True) * t * t
    denom = teacher_out.pow(2).mean().clamp(min=1e-12)
    return (student_out - teacher_out).pow(2).mean() / denom


def _bn_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def finetune(model: nn.Module, plan: Any, batches: Sequence[Any], *, steps: int = 200, lr: float = 1e-4,
             temperature: float = 2.0, device: str = "auto", seed: int = 0,
             calibrate_batches: Sequence[Any] | None = None,
             progress: Callable[[int, float], None] | None = None) -> FinetuneResult:
    """QAT of ``quantize_model(model, plan)`` distilled from ``model`` on ``batches`` for ``steps`` steps.

    ``calibrate_batches`` (default ``batches``) set the activation scales before training.
    Returns the student in eval mode on the CPU. ``model`` itself is not changed.
    """
    from hwq.quant import calibrate, quantize_model

    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    t0 = time.perf_counter()
    dev = pick_device(device)
    torch.manual_seed(seed)
    teacher = copy.deepcopy(model).eval().to(dev)
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = quantize_model(model, plan)
    student.to(dev)
    batches = [_to(b, dev) for b in batches]
    calibrate(student, [_to(b, dev) for b in calibrate_batches] if calibrate_batches is not None else batches)
    with torch.no_grad():
        targets = [_forward(teacher, b).detach() for b in batches]
    params = [p for p in student.parameters() if p.is_floating_point()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    losses: list[float] = []
    student.train()
    _bn_eval(student)
    for step in range(steps):
        i = step % len(batches)
        opt.zero_grad(set_to_none=True)
        loss = distill_loss(_forward(student, batches[i]), targets[i], temperature)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress:
            progress(step, losses[-1])
    student.eval()
    for p in student.parameters():
        p.requires_grad_(False)
    student.to("cpu")
    return FinetuneResult(student, losses, steps, str(dev), time.perf_counter() - t0)
