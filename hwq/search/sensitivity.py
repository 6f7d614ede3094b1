"""Per-layer, per-choice sensitivity Omega_l(c): how much quantizing layer l to choice c hurts.

Two methods:

* ``hessian`` (HAWQ-V3): ``Omega_l(c) = Tr(H_W)/n_W * ||W - Q_c(W)||^2 + Tr(H_x)/n_x * ||x - Q_a(x)||^2``.
  The traces are estimated by Hutchinson's method (Rademacher vectors ``v``, ``E[v^T H v] =
  Tr H``) on one calibration batch, either with Hessian-vector products by double backward
  (``hvp``; one joint vector over every layer's weight gives an unbiased trace per layer at
  once) or, for the activations and (``gn``) the weights, as the Gauss-Newton trace
  ``E_u ||J^T u||^2`` with output-space Rademacher ``u`` (no cross-layer terms, >= 0). For
  unlabelled data the loss is the MSE to the float output, whose Hessian is exactly ``J^T J``,
  so both target the same trace; ``auto`` picks gn there. Cost: O(samples) backward passes,
  not O(layers x choices).
  The weight error is computed per (layer, weight format) with :func:`hwq.quant.quantize_weight`
  (cheap), the activation error per (layer, act_bits) with the per-tensor activation quantizer
  used by :func:`hwq.quant.quantize_model` (absmax calibrated on the same batch).
* ``kl``: quantize only layer l (weights and input activations) to c and measure the output
  change on the calibration batch: KL(p_float || p_quant) for classifiers (labelled data or a
  ``[batch, classes]`` output), else mean squared output error. O(layers x choices) forwards.

The loss for ``hessian`` is cross-entropy against the batch labels when the calibration data
has labels, else (``loss="mse"``) half the squared distance to the float model's own output,
whose Hessian at the float weights is the Gauss-Newton matrix (always >= 0).

Results are cached on disk under ``.hwq_cache/sensitivity/`` (or ``$HWQ_CACHE_DIR``), keyed by
a fingerprint of the model weights, the calibration data, the layers, the choices and the options.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

#: ``--sensitivity`` methods.
METHODS: tuple[str, ...] = ("hessian", "kl")
#: Bump when the computation changes so stale cache entries are ignored.
CACHE_VERSION = 2


@dataclass
class Sensitivity:
    """Omega per layer and choice, plus the parts it was built from.

    Attributes:
        values: ``[L, C]`` Omega_l(c) (loss units; lower is better).
        allowed: ``[L, C]`` False where the quantizer cannot represent the layer (e.g. MX block
            does not divide the row).
        method: "hessian" or "kl".
        weight_trace: ``[L]`` Tr(H_W)/n_W (hessian only; NaN otherwise).
        act_trace: ``[L]`` Tr(H_x)/n_x (hessian only).
        weight_error: ``[L, C]`` ||W - Q_c(W)||^2 (hessian only).
        seconds: compute time, s (0 for a cache hit's recompute).
        cache_hit: whether the values came from the on-disk cache.
        cache_key: the fingerprint used.
    """

    values: np.ndarray
    allowed: np.ndarray
    method: str
    weight_trace: np.ndarray
    act_trace: np.ndarray
    weight_error: np.ndarray
    seconds: float
    cache_hit: bool = False
    cache_key: str = ""
    options: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ helpers
def cache_dir() -> Path:
    """Directory of the sensitivity cache: ``$HWQ_CACHE_DIR`` or ``./.hwq_cache``, plus ``/sensitivity``."""
    root = Path(os.environ.get("HWQ_CACHE_DIR", ".hwq_cache"))
    return root / "sensitivity"


def _tensors(batch: Any) -> list:
    import torch

    if isinstance(batch, torch.Tensor):
        return [batch]
    if isinstance(batch, dict):
        return [v for k in sorted(batch) for v in _tensors(batch[k])]
    if isinstance(batch, (tuple, list)):
        return [t for b in batch for t in _tensors(b)]
    return []


def fingerprint(model, batches: Sequence[Any], extra: dict) -> str:
    """SHA-256 over the model's state dict, the calibration tensors and ``extra`` (JSON)."""
    import torch

    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, **extra}, sort_keys=True, default=str).encode())
    def raw(t: torch.Tensor) -> bytes:
        return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()

    for name, t in model.state_dict().items():
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(raw(t.to(torch.uint8) if t.dtype == torch.bool else t))
    for t in (t for b in batches for t in _tensors(b)):
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(raw(t.to(torch.uint8) if t.dtype == torch.bool else t))
    return h.hexdigest()[:32]


def _call(model, inputs: Any):
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _main_output(out: Any):
    """The tensor a loss is taken on: the tensor itself, ``logits``/``last_hidden_state``/first element."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    for key in ("logits", "sentence_embedding", "last_hidden_state"):
        if isinstance(out, dict) and key in out:
            return out[key]
        if hasattr(out, key) and getattr(out, key) is not None:
            return getattr(out, key)
    if isinstance(out, (tuple, list)) and out:
        return _main_output(out[0])
    raise TypeError(f"cannot find an output tensor in {type(out).__name__}")


def split_batch(batch: Any) -> tuple[Any, Any]:
    """(inputs, labels or None): a ``(x, y)`` pair with integer ``y`` is labelled, anything else is inputs."""
    import torch

    if (isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[1], torch.Tensor)
            and not batch[1].is_floating_point() and batch[1].dim() == 1):
        return batch[0], batch[1]
    return batch, None


def _concat(batches: Sequence[Any], limit: int) -> tuple[Any, Any]:
    """Merge up to ``limit`` samples of the calibration batches into one (inputs, labels)."""
    import torch

    pairs = [split_batch(b) for b in batches]
    xs = [p[0] for p in pairs]
    ys = [p[1] for p in pairs]

    def cat(items):
        first = items[0]
        if isinstance(first, torch.Tensor):
            if any(i.shape[1:] != first.shape[1:] for i in items):  # e.g. token batches padded differently
                return first[:limit]
            return torch.cat(items)[:limit]
        if isinstance(first, dict):
            return {k: cat([i[k] for i in items]) for k in first}
        if isinstance(first, (tuple, list)):
            return type(first)(cat([i[j] for i in items]) for j in range(len(first)))
        return first

    x = cat(xs)
    y = None if any(v is None for v in ys) else torch.cat(ys)[:limit]
    return x, y


@contextlib.contextmanager
def _math_attention():
    """Use the math SDPA kernel (the fused CPU kernels have no double backward)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - old torch
        yield
        return
    with sdpa_kernel(SDPBackend.MATH):
        yield


@contextlib.contextmanager
def _progress(total: int, description: str, enabled: bool):
    """A rich progress bar on stderr (a no-op callback when disabled)."""
    if not enabled:
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def layer_group_size(k: int, group_size: int | None) -> int | None:
    """Group size a layer of row length ``k`` uses: ``group_size`` when it divides ``k``, else None (one group per row)."""
    if not group_size or k % group_size:
        return None
    return group_size


def _weight_key(choice) -> tuple[str, int]:
    return (choice.fmt, int(choice.bits))


# ------------------------------------------------------------------------------ weight error
def weight_errors(modules: Sequence[Any], choices: Sequence[Any], group_size: int | None,
                  tick: Callable[[int], None] = lambda n=1: None) -> tuple[np.ndarray, np.ndarray]:
    """``||W - Q_c(W)||^2`` per layer and choice (float64) and the ``allowed`` mask.

    Computed once per distinct (format, bits); choices that differ only in act_bits share it.
    """
    import torch

    from hwq.quant import quantize_weight

    err = np.full((len(modules), len(choices)), np.nan)
    allowed = np.ones((len(modules), len(choices)), dtype=bool)
    keys = sorted({_weight_key(c) for c in choices})
    for l, mod in enumerate(modules):
        w = mod.weight.detach()
        k = w[0].numel()
        per_key: dict[tuple[str, int], float | None] = {}
        for key in keys:
            try:
                wq = quantize_weight(w, key[0], key[1], group_size=layer_group_size(k, group_size))
                per_key[key] = float(((w.to(torch.float64) - wq.to(torch.float64)) ** 2).sum())
            except ValueError:
                per_key[key] = None
        for c, choice in enumerate(choices):
            v = per_key[_weight_key(choice)]
            if v is None:
                allowed[l, c] = False
            else:
                err[l, c] = v
        tick(1)
    return err, allowed


def activation_errors(inputs: Sequence[Any], choices: Sequence[Any]) -> np.ndarray:
    """``||x - Q_a(x)||^2`` per layer input ``x`` and choice (0 when the choice leaves activations float)."""
    import torch

    from hwq.quant.modules import ActQuant

    out = np.zeros((len(inputs), len(choices)))
    for l, x in enumerate(inputs):
        cache: dict[int, float] = {}
        for c, choice in enumerate(choices):
            a = getattr(choice, "act_bits", None)
            if not a:
                continue
            if a not in cache:
                with torch.no_grad():
                    q = ActQuant(int(a))
                    xq = q(x.detach())
                    cache[a] = float(((x.detach().double() - xq.double()) ** 2).sum())
            out[l, c] = cache[a]
    return out


# ------------------------------------------------------------------------------ Hutchinson
def hutchinson_traces(model, layer_names: Sequence[str], inputs: Any, labels: Any, *, samples: int = 4,
                      seed: int = 0, loss: str = "auto", with_activations: bool = True, weight_estimator: str = "hvp",
                      tick: Callable[[int], None] = lambda n=1: None) -> tuple[np.ndarray, np.ndarray, list]:
    """Average Hessian trace per weight element and per input-activation element of every layer.

    Weights: Hutchinson's estimator with Rademacher vectors and Hessian-vector products by
    double backward (HAWQ-V3), one joint vector over all layers per sample. Activations: the
    Gauss-Newton trace ``Tr(J_x^T A J_x)/B`` (A = I for the MSE loss, where it equals the
    Hessian exactly; the softmax curvature for cross-entropy) from output-space Rademacher
    vectors: one plain backward per sample and no cross terms between layers (the joint
    double-backward estimate gave non-positive traces for about half of ResNet-50's layer
    inputs with 4 vectors, because consecutive activations are strongly coupled).

    ``weight_estimator="gn"`` estimates the weight traces the same Gauss-Newton way (one plain
    backward per vector, always >= 0) instead of by double backward.

    Returns ``(weight_trace [L], act_trace [L], layer_inputs)``: ``Tr(H_W)/n_W``,
    ``Tr(H_x)/n_x`` (NaN when ``with_activations`` is False) and the captured float inputs.
    ``loss``: "ce" (labels required), "mse" (distance to the float output) or "auto".
    """
    import torch
    import torch.nn.functional as F

    modules = dict(model.named_modules())
    mods = [modules[n] for n in layer_names]
    captured: dict[int, torch.Tensor] = {}
    hooks = []
    for i, m in enumerate(mods):
        def hook(_m, args, _out, i=i):
            if i not in captured and args and isinstance(args[0], torch.Tensor):
                captured[i] = args[0]
        hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    frozen = [p for p in model.parameters() if not p.requires_grad]
    for p in frozen:  # the double backward needs every weight in the graph
        p.requires_grad_(True)
    gen = torch.Generator().manual_seed(seed)
    try:
        with _math_attention():
            x = inputs
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                x = x.detach().clone().requires_grad_(True)  # so the first layer's input is in the graph
            out = _main_output(_call(model, x))
            kind = loss if loss != "auto" else ("ce" if labels is not None else "mse")
            if kind == "ce":
                if labels is None:
                    raise ValueError("loss 'ce' needs labelled calibration data")
                value = F.cross_entropy(out.float(), labels)
            else:
                ref = out.detach()  # gradient is zero here; the Hessian is the Gauss-Newton J^T J
                value = 0.5 * ((out - ref) ** 2).sum() / max(1, ref.shape[0])
            weights = [m.weight for m in mods]
            acts = [captured.get(i) for i in range(len(mods))] if with_activations else []
            act_ok = [a is not None and a.requires_grad for a in acts]
            live_acts = [a for a, ok in zip(acts, act_ok) if ok]
            est: dict[int, float] = {id(t): 0.0 for t in weights + live_acts}
            batch = max(1, out.shape[0])
            gn_targets = live_acts + ([w for w in weights if w.requires_grad] if weight_estimator == "gn" else [])
            # Activation blocks: Gauss-Newton trace through output-space Rademacher vectors,
            # E_u ||J_x^T S u||^2 / B (one backward each, no cross-block terms, always >= 0).
            if gn_targets:
                probs = F.softmax(out.detach().float(), dim=-1) if kind == "ce" else None
                for _ in range(samples):
                    u = torch.randint(0, 2, out.shape, generator=gen).to(out.dtype) * 2 - 1
                    if probs is not None:  # S u with S S^T = diag(p) - p p^T (softmax curvature)
                        sq = probs.sqrt()
                        u = (sq * u - probs * (sq * u).sum(-1, keepdim=True)).to(out.dtype)
                    ga = torch.autograd.grad(out, gn_targets, grad_outputs=u, retain_graph=True, allow_unused=True)
                    for a, g in zip(gn_targets, ga):
                        if g is not None:
                            est[id(a)] += float((g.double() ** 2).sum()) / batch / samples
                    tick(0)
            # Weight blocks (HAWQ-V3): Hessian-vector products by double backward, joint Rademacher v.
            if weight_estimator == "gn":
                weights_hvp: list = []
            elif weight_estimator == "hvp":
                weights_hvp = weights
            else:
                raise ValueError(f"unknown weight estimator {weight_estimator!r}; choose hvp or gn")
            grads = torch.autograd.grad(value, weights_hvp, create_graph=True, allow_unused=True) if weights_hvp else []
            live = [(t, g) for t, g in zip(weights_hvp, grads) if g is not None and g.requires_grad]
            for _ in range(samples if live else 0):
                vs = [torch.randint(0, 2, t.shape, generator=gen).to(t.dtype) * 2 - 1 for t, _ in live]
                hv = torch.autograd.grad([g for _, g in live], [t for t, _ in live], grad_outputs=vs,
                                         retain_graph=True, allow_unused=True)
                for (t, _), v, h in zip(live, vs, hv):
                    if h is not None:
                        est[id(t)] += float((v * h).sum()) / samples
                tick(1)
    finally:
        for h in hooks:
            h.remove()
        for p in frozen:
            p.requires_grad_(False)
        model.train(was_training)
    w_trace = np.array([est[id(w)] / w.numel() for w in weights])
    a_trace = np.full(len(mods), np.nan)
    for i, (a, ok) in enumerate(zip(acts, act_ok)):
        if ok:
            a_trace[i] = est[id(a)] / a.numel()
    layer_inputs = [captured[i].detach() if i in captured else None for i in range(len(mods))]
    return w_trace, a_trace, layer_inputs


def floor_traces(trace: np.ndarray) -> np.ndarray:
    """Replace non-positive (or NaN) per-layer trace estimates by the smallest positive one.

    With few Hutchinson vectors the joint estimator's cross terms can push a small block's
    estimate below zero although the true trace of the Gauss-Newton Hessian is >= 0; zero
    would make quantization error on that layer free. Flooring keeps such layers as cheap
    to perturb as the least sensitive measured layer, no cheaper. All NaN -> zeros.
    """
    t = np.asarray(trace, dtype=float)
    pos = t[np.isfinite(t) & (t > 0)]
    if pos.size == 0:
        return np.zeros_like(t)
    return np.where(np.isfinite(t) & (t > 0), t, pos.min())


def auto_samples(model) -> int:
    """Default Hutchinson vectors: 16 for small models (< 1M weights; cheap), 4 for large ones."""
    n = sum(p.numel() for p in model.parameters())
    return 16 if n < 1_000_000 else 4


# ------------------------------------------------------------------------------ KL form
def kl_sensitivity(model, layer_names: Sequence[str], choices: Sequence[Any], inputs: Any, labels: Any,
                   group_size: int | None, tick: Callable[[int], None] = lambda n=1: None) -> tuple[np.ndarray, np.ndarray]:
    """Output change when only layer l is quantized to choice c: KL for classifiers, else MSE. ``[L, C]``."""
    import torch
    import torch.nn.functional as F

    from hwq.quant import quantize_weight
    from hwq.quant.modules import ActQuant

    modules = dict(model.named_modules())
    was_training = model.training
    model.eval()
    vals = np.full((len(layer_names), len(choices)), np.nan)
    allowed = np.ones_like(vals, dtype=bool)
    with torch.no_grad():
        ref = _main_output(_call(model, inputs)).float()
        # [batch, classes] outputs are class logits (labelled or not): KL; anything else: MSE.
        logp_ref = F.log_softmax(ref, dim=-1) if labels is not None or ref.dim() == 2 else None
        for l, name in enumerate(layer_names):
            m = modules[name]
            w0 = m.weight.detach().clone()
            k = w0[0].numel()
            for c, choice in enumerate(choices):
                try:
                    wq = quantize_weight(w0, choice.fmt, int(choice.bits), group_size=layer_group_size(k, group_size))
                except ValueError:
                    allowed[l, c] = False
                    continue
                hook = None
                if getattr(choice, "act_bits", None):
                    aq = ActQuant(int(choice.act_bits))
                    hook = m.register_forward_pre_hook(lambda _m, args, aq=aq: (aq(args[0]), *args[1:]))
                try:
                    m.weight.copy_(wq.to(w0.dtype))
                    out = _main_output(_call(model, inputs)).float()
                finally:
                    m.weight.copy_(w0)
                    if hook is not None:
                        hook.remove()
                if logp_ref is not None:
                    vals[l, c] = float(F.kl_div(F.log_softmax(out, dim=-1), logp_ref, log_target=True,
                                                reduction="batchmean"))
                else:
                    vals[l, c] = float(((out - ref) ** 2).mean())
            tick(1)
    model.train(was_training)
    return vals, allowed


# ------------------------------------------------------------------------------ cache entries
def _cache_problem(path: Path, problem: str):
    from hwq.errors import UsageError

    return UsageError(f"sensitivity cache entry {str(path)!r} {problem}; delete it (or run with --no-cache)")


def _check_cache_folder(folder: Path) -> None:
    for p in (folder.parent, folder):
        if (p.exists() or p.is_symlink()) and not p.is_dir():
            from hwq.errors import UsageError

            raise UsageError(f"sensitivity cache {str(p)!r} is a file, not a folder; remove it, set "
                             f"HWQ_CACHE_DIR to a folder, or pass --no-cache")


def read_cache_entry(path: Path, layers: int, choices: int) -> dict[str, Any] | None:
    """The arrays of cache entry ``path`` for ``layers`` x ``choices``, checked.

    A truncated file (a killed writer) returns None, so it is recomputed and overwritten; an entry
    that is a folder, has the wrong shapes, or holds NaN/infinite sensitivities for
    allowed choices raises :class:`hwq.errors.UsageError` naming the entry (hwq never writes such
    entries, so something else did and the user should look).
    """
    if path.is_dir() or not path.is_file():
        raise _cache_problem(path, "is not a regular file")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in ("values", "allowed", "weight_trace", "act_trace", "weight_error", "seconds")}
    except (OSError, ValueError, EOFError):
        return None  # unreadable npz: recomputed
    except KeyError as err:
        raise _cache_problem(path, f"lacks the array {err.args[0]!r}") from None
    want = {"values": (layers, choices), "allowed": (layers, choices), "weight_error": (layers, choices),
            "weight_trace": (layers,), "act_trace": (layers,)}
    for k, shape in want.items():
        if tuple(data[k].shape) != shape:
            raise _cache_problem(path, f"has {k} of shape {list(data[k].shape)}, expected {list(shape)} "
                                       f"({layers} layers x {choices} choices)")
    allowed = data["allowed"].astype(bool)
    vals = np.asarray(data["values"], dtype=float)[allowed]
    if not np.all(np.isfinite(vals)):
        raise _cache_problem(path, f"holds {int((~np.isfinite(vals)).sum())} NaN or infinite sensitivities "
                                   f"for allowed choices")
    data["allowed"] = allowed
    data["seconds"] = float(data["seconds"])
    return data


# ------------------------------------------------------------------------------ entry point
def compute_sensitivity(model, layer_names: Sequence[str], choices: Sequence[Any], batches: Sequence[Any], *,
                        method: str = "hessian", group_size: int | None = 128, samples: int = 4,
                        max_samples: int = 4, seed: int = 0, loss: str = "auto", use_cache: bool = True,
                        progress: bool = True, weight_estimator: str = "auto") -> Sensitivity:
    """Omega for every (layer, choice), from the cache when the same model/data/options were seen.

    ``batches``: calibration batches (tensors, tuples of inputs, or ``(x, labels)`` pairs);
    at most ``max_samples`` samples are used. ``samples``: Hutchinson vectors. ``choices``:
    objects with ``fmt``, ``bits``, ``act_bits`` (``hwq.cost.Choice``). ``weight_estimator``:
    "hvp" (double-backward Hessian-vector products, HAWQ-V3), "gn" (Gauss-Newton, output-space
    vectors) or "auto" (gn for unlabelled data, where the MSE loss's Hessian equals J^T J; else hvp).
    The estimator used is ``result.options["weight_estimator"]``.
    """
    if method not in METHODS:
        from hwq.errors import UsageError

        raise UsageError(f"unknown sensitivity method {method!r}; choose one of {', '.join(METHODS)}")
    import torch

    inputs, labels = _concat(list(batches), max_samples)
    if weight_estimator == "auto":
        # Unlabelled data: the loss is the MSE to the float output, whose Hessian *is* J^T J, so the
        # Gauss-Newton estimator targets the same trace without cross-layer terms. Labelled: HVP.
        weight_estimator = "gn" if labels is None and loss in ("auto", "mse") else "hvp"
    choice_desc = [(c.fmt, int(c.bits), getattr(c, "act_bits", None)) for c in choices]
    options = {"method": method, "group_size": group_size, "samples": samples, "max_samples": max_samples,
               "seed": seed, "loss": loss, "layers": list(layer_names), "choices": choice_desc}
    if method == "hessian" and weight_estimator != "hvp":  # hvp keys stay as before the option existed
        options["weight_estimator"] = weight_estimator
    if method == "kl":
        options["kl_version"] = 2  # KL (not MSE) for unlabelled [batch, classes] outputs
    key = fingerprint(model, [(inputs, labels) if labels is not None else inputs], options)
    path = cache_dir() / f"{key}.npz"
    if use_cache and path.parent.is_dir():
        from hwq.paths import clean_stale_in

        clean_stale_in(path.parent)  # temps of killed runs (hwq.paths), whichever entry they were writing
    if use_cache and (path.exists() or path.is_symlink()):
        hit = read_cache_entry(path, len(layer_names), len(choices))
        if hit is not None:
            return Sensitivity(hit["values"], hit["allowed"], method, hit["weight_trace"], hit["act_trace"],
                               hit["weight_error"], hit["seconds"], True, key, options)

    t0 = time.perf_counter()
    modules = dict(model.named_modules())
    mods = [modules[n] for n in layer_names]
    L, C = len(layer_names), len(choices)
    if method == "hessian":
        torch.manual_seed(seed)
        with _progress(samples + L, "sensitivity (Hessian trace, weight error)", progress) as tick:
            w_tr, a_tr, layer_inputs = hutchinson_traces(model, layer_names, inputs, labels, samples=samples,
                                                         seed=seed, loss=loss, tick=tick,
                                                         weight_estimator=weight_estimator)
            w_err, allowed = weight_errors(mods, choices, group_size, tick)
        a_err = activation_errors([x if x is not None else torch.zeros(1) for x in layer_inputs], choices)
        w_term = floor_traces(w_tr)[:, None] * np.nan_to_num(w_err)
        a_term = floor_traces(a_tr)[:, None] * a_err
        values = w_term + a_term
        values[~allowed] = np.nan
    else:
        with _progress(L, "sensitivity (quantize one layer at a time)", progress) as tick:
            values, allowed = kl_sensitivity(model, layer_names, choices, inputs, labels, group_size, tick)
        w_tr = a_tr = np.full(L, np.nan)
        w_err = np.full((L, C), np.nan)
    seconds = time.perf_counter() - t0
    result = Sensitivity(values, allowed, method, w_tr, a_tr, w_err, seconds, False, key, options)
    if use_cache:
        _check_cache_folder(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        from hwq.atomic import atomic_path

        # .KEY.npz.hwq-tmp-PID-XXXX.npz beside the entry (hwq.paths): one a SIGKILLed run leaves is
        # removed by the next run (clean_stale_in above, atomic_path here).
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, values=values, allowed=allowed, weight_trace=w_tr, act_trace=a_tr, weight_error=w_err,
                     seconds=seconds)
    return result
