"""Bring your own model: ``--model`` forms beyond the registry names (``models/registry.py``).

``resolve(spec) -> ModelRecipe`` accepts:

* ``torchvision:<name>``: any torchvision classification model (``torchvision.models.list_models``),
  random weights (seed 0) unless ``build(path)`` loads a state dict; example input ``1 x 3 x S x S`` with
  ``S`` the crop size of the model's published transforms (224 for most); calibration: synthetic images.
* ``path/to/file.py:build`` or ``package.module:build``: a callable returning ``(module, example_input)``,
  or a recipe object with ``build()`` (or ``model``), ``example_input()`` and optionally
  ``calibration(n)``; a bare ``nn.Module`` is refused (no example input).
* ``file.pt2``: a program saved with ``torch.export.save``; example inputs are the ones stored in the file.
  Its aten ``conv2d``/``linear`` calls on parameters become ``nn.Conv2d``/``nn.Linear`` modules at the
  parameter owner's path, so plans name and quantize them like any module.
* a local Hugging Face folder (``config.json`` + ``*.safetensors``), loaded offline with
  ``transformers.AutoModel``; example input 128 token ids of ``models.minilm.SENTENCES`` when the folder
  has a tokenizer, else random ids (seed 0).

Calibration for these models is synthetic data of the example input's shape (random token ids for
integer inputs) unless the recipe gives some; ``ModelRecipe.synthetic_calibration`` says so and
``hwq explore`` warns.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from hwq.errors import UsageError

_IMAGE_BATCH = 8
#: Tokens in a Hugging Face folder's example input (as the registry's MiniLM).
HF_TOKENS = 128


def slug(spec: str) -> str:
    """A file-name-safe form of a ``--model`` value (report folders): ``torchvision:vit_b_16`` ->
    ``torchvision-vit_b_16``, ``path/to/net.py:build`` -> ``net-build``."""
    text = str(spec)
    if ":" in text and not text.endswith(":"):
        head, _, tail = text.rpartition(":")
        head = Path(head).stem if ("/" in head or head.endswith(".py")) else head
        text = f"{head}-{tail}"
    else:
        p = Path(text.rstrip("/"))
        text = p.stem if p.suffix else p.name
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-.") or "model"


def resolve(spec: str):
    """The :class:`models.registry.ModelRecipe` of any ``--model`` form (see the module docstring)."""
    from models.registry import MODEL_NAMES, get_recipe

    text = str(spec).strip()
    if text in MODEL_NAMES:
        return get_recipe(text)
    forms = (f"known models: {', '.join(MODEL_NAMES)}; or torchvision:<name>, path/to/file.py:build, "
             f"package.module:build, a torch.export .pt2 file, or a local Hugging Face folder")
    if not text:
        raise UsageError(f"--model is empty; {forms}")
    if text.startswith("torchvision:"):
        return _torchvision(text.split(":", 1)[1])
    p = Path(text)
    if text.endswith(".pt2"):
        if not p.is_file():
            raise UsageError(f"--model {text!r}: no such .pt2 file")
        return _exported(p)
    if p.is_dir():
        return _hf_folder(p)
    if ":" in text:
        where, _, attr = text.rpartition(":")
        if where and attr.isidentifier():
            return _callable(text, where, attr)
    if p.suffix == ".py":
        raise UsageError(f"--model {text!r}: name the builder function too, e.g. {text}:build")
    raise UsageError(f"unknown model {text!r}; {forms}")


# ------------------------------------------------------------------------------------------ shared
def _recipe(name, description, build, example, calibration=None, *, weights_description="",
            random_weights=False, calibration_source=None, synthetic=None):
    from models.registry import ModelRecipe

    synthetic = calibration is None if synthetic is None else synthetic
    if calibration is None:
        calibration = lambda n, calib_dir, _ex=example: _synthetic_calibration(_ex(), n, calib_dir)  # noqa: E731
        calibration_source = calibration_source or "synthetic data of the example input's shape (seed 0)"
    return ModelRecipe(name, description, build, example, calibration, weights_description=weights_description,
                       random_weights=random_weights, synthetic_calibration=synthetic,
                       calibration_source=calibration_source)


def _synthetic_calibration(example: Any, n: int, calib_dir: Any, per: int | None = None) -> list:
    """``n`` samples shaped like ``example`` (batch dim 0): normal floats, or integer ids below the
    example's largest id (token ids), seed 0; ``calib_dir`` of tensors as for the image recipes."""
    import torch

    if calib_dir is not None:
        from models.registry import _image_calibration

        return _image_calibration(n, calib_dir)
    g = torch.Generator().manual_seed(0)

    def like(x, count):
        if not isinstance(x, torch.Tensor):
            return x
        shape = (count,) + tuple(x.shape[1:]) if x.dim() else ()
        if x.is_floating_point():
            return torch.randn(shape, generator=g, dtype=x.dtype)
        if x.dtype == torch.bool:
            return torch.ones(shape, dtype=torch.bool)
        hi = max(int(x.max()) + 1, 2)
        return torch.randint(0, hi, shape, generator=g, dtype=x.dtype)

    ex = example
    if per is None:
        per = _IMAGE_BATCH if isinstance(ex, torch.Tensor) and ex.is_floating_point() and ex.dim() == 4 else 16
    out = []
    for i in range(0, n, per):
        c = min(per, n - i)
        out.append(tuple(like(x, c) for x in ex) if isinstance(ex, (tuple, list)) else like(ex, c))
    return out


def _load_state(model, weights: Any, what: str):
    from models.registry import _load_state as load

    if weights is not None and str(weights) != "random":
        load(model, Path(weights))
    return model


def _seeded(fn):
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return fn()


# ------------------------------------------------------------------------------------------ torchvision
def _torchvision(name: str):
    import torchvision.models as tvm

    known = tvm.list_models(module=tvm)
    if name not in known:
        raise UsageError(f"torchvision has no classification model {name!r}; e.g. "
                         f"{', '.join(sorted(known)[:12])}, ... ({len(known)} in all)")
    size = 224
    try:
        size = int(tvm.get_model_weights(name).DEFAULT.transforms.keywords.get("crop_size", 224))
    except Exception:  # noqa: BLE001 - no published weights/transforms: the common 224
        pass

    def build(weights=None):
        model = _seeded(lambda: tvm.get_model(name, weights=None))
        return _load_state(model, weights, name).eval()

    def example():
        import torch

        from models.registry import _normalise

        g = torch.Generator().manual_seed(0)
        return _normalise(torch.rand(1, 3, size, size, generator=g))

    def calibration(n, calib_dir):
        import torch

        from models.registry import _batches, _image_calibration, _normalise

        if calib_dir is not None:
            return _image_calibration(n, calib_dir)
        g = torch.Generator().manual_seed(0)
        return _batches(_normalise(torch.rand(n, 3, size, size, generator=g)), _IMAGE_BATCH)

    from models.registry import ModelRecipe

    return ModelRecipe(f"torchvision:{name}", f"torchvision {name} ({size}x{size} classifier, random weights "
                       f"unless --weights)", build, example, calibration,
                       weights_description="random initialisation (seed 0; torchvision weights=None)",
                       random_weights=True, synthetic_calibration=True,
                       calibration_source="synthetic images (uniform random pixels, ImageNet normalisation, seed 0)")


# ------------------------------------------------------------------------------------------ callables
def _import_target(spec: str, where: str):
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where)
        if not path.is_file():
            raise UsageError(f"--model {spec!r}: file {where} not found")
        mod_name = "hwq_user_model_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        if mod_name in sys.modules:
            return sys.modules[mod_name]
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - the user's file failed to import
            del sys.modules[mod_name]
            raise UsageError(f"--model {spec!r}: importing {where} failed ({type(err).__name__}: "
                             f"{(str(err).splitlines() or [''])[0][:160]})") from None
        return module
    try:
        return importlib.import_module(where)
    except ImportError as err:
        raise UsageError(f"--model {spec!r}: cannot import module {where!r} ({err})") from None
    except Exception as err:  # noqa: BLE001
        raise UsageError(f"--model {spec!r}: importing {where} failed ({type(err).__name__}: "
                         f"{(str(err).splitlines() or [''])[0][:160]})") from None


def _callable(spec: str, where: str, attr: str):
    import torch

    module = _import_target(spec, where)
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise UsageError(f"--model {spec!r}: {where} has no callable {attr!r}")
    try:
        made = _seeded(fn)
    except Exception as err:  # noqa: BLE001 - the user's builder failed
        raise UsageError(f"--model {spec!r}: {attr}() failed ({type(err).__name__}: "
                         f"{(str(err).splitlines() or [''])[0][:160]})") from None
    calib = None
    if isinstance(made, (tuple, list)) and len(made) == 2 and isinstance(made[0], torch.nn.Module):
        model, ex = made
        model_fn = lambda: model  # noqa: E731
    elif hasattr(made, "example_input") and (hasattr(made, "build") or hasattr(made, "model")):
        model_fn = (lambda: made.build()) if hasattr(made, "build") else (lambda: made.model)
        ex = made.example_input() if callable(made.example_input) else made.example_input
        model = _seeded(model_fn)
        if callable(getattr(made, "calibration", None)):
            calib = made.calibration
    elif isinstance(made, torch.nn.Module):
        raise UsageError(f"--model {spec!r}: {attr}() returned a bare module; return (module, example_input) "
                         f"or a recipe object with build() and example_input()")
    else:
        raise UsageError(f"--model {spec!r}: {attr}() returned {type(made).__name__}; return (module, "
                         f"example_input) or a recipe object with build(), example_input() and calibration(n)")
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"--model {spec!r}: the model is {type(model).__name__}, not a torch.nn.Module")
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def build(weights=None):
        m = model_fn() if calib is not None else model
        m.load_state_dict(state)  # every build starts from the builder's weights
        return _load_state(m, weights, spec).eval()

    calibration = None
    if calib is not None:
        def calibration(n, calib_dir):
            if calib_dir is not None:
                raise UsageError(f"{spec} calibrates with its recipe's calibration(n); drop --calib")
            return list(calib(n))
    return _recipe(spec, f"user model {spec}", build, lambda: ex, calibration,
                   weights_description=f"the weights {attr}() returns")


# ------------------------------------------------------------------------------------------ torch.export
def _exported(path: Path):
    import torch

    try:
        ep = torch.export.load(str(path))
    except Exception as err:  # noqa: BLE001 - not a torch.export archive
        raise UsageError(f"--model {str(path)!r} is not a program saved with torch.export.save "
                         f"({type(err).__name__}: {(str(err).splitlines() or [''])[0][:160]})") from None
    stored = getattr(ep, "example_inputs", None)
    if not stored:
        raise UsageError(f"--model {str(path)!r} holds no example inputs; export with torch.export.export(model, "
                         f"args) and save with torch.export.save")
    args, kwargs = stored
    if kwargs:
        raise UsageError(f"--model {str(path)!r}: keyword example inputs ({', '.join(kwargs)}) are not supported; "
                         f"export with positional args")
    ex = args[0] if len(args) == 1 else tuple(args)
    module = modules_from_export(ep)
    state = {k: v.clone() for k, v in module.state_dict().items()}

    def build(weights=None):
        module.load_state_dict(state)
        return _load_state(module, weights, str(path)).eval()

    user = set(ep.graph_signature.user_inputs)
    vals = [n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder" and n.name in user]
    dynamic = bool(vals) and all(getattr(v, "shape", None) is not None and len(v.shape) > 0
                                 and not isinstance(v.shape[0], int) for v in vals)

    first = next((v for v in vals if getattr(v, "shape", None) is not None and len(v.shape) > 0), None)
    static_batch = int(first.shape[0]) if first is not None and isinstance(first.shape[0], int) else None

    def calibration(n, calib_dir):
        if calib_dir is not None:
            raise UsageError(f"{path} calibrates on synthetic data of its example inputs' shape; drop --calib")
        if not dynamic and static_batch is not None:
            # a static program runs exactly its batch: hwq explore's sensitivity uses all n samples as one batch
            if n != static_batch:
                raise UsageError(f"{path} was exported with a static batch size of {static_batch}; hwq explore "
                                 f"calibrates on all samples as one batch: pass --calib-samples {static_batch} "
                                 f"(or export with dynamic_shapes={{'x': {{0: torch.export.Dim('batch')}}}})")
            return _synthetic_calibration(ex, n, None, per=static_batch)
        return _synthetic_calibration(ex, n, None)

    return _recipe(str(path), f"torch.export program {path.name}", build, lambda: ex, calibration,
                   weights_description=f"the weights saved in {path.name}",
                   calibration_source="synthetic data of the example inputs' shape (seed 0)", synthetic=True)


def modules_from_export(ep):
    """``ep.module()`` with each aten ``conv1d``/``conv2d``/``linear`` call on parameters replaced by a
    call of an ``nn.Conv*d``/``nn.Linear`` holding those parameters, at the parameter owner's path
    (``features.0.0.weight`` -> module ``features.0.0``), so plans can name and quantize it."""
    import torch
    from torch import nn

    import types

    gm = ep.module()
    # The exported graph is fixed (BatchNorm, dropout as exported); its train()/eval() raise by default,
    # but hwq's pipeline toggles the mode of every model, so make them the plain flag setters.
    gm.train = types.MethodType(nn.Module.train, gm)
    gm.eval = types.MethodType(nn.Module.eval, gm)
    aten = torch.ops.aten
    convs = {aten.conv1d.default: nn.Conv1d, aten.conv2d.default: nn.Conv2d}
    made: dict[str, nn.Module] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or (node.target not in convs and node.target is not aten.linear.default):
            continue
        args = list(node.args)
        w = args[1] if len(args) > 1 else None
        b = args[2] if len(args) > 2 else None
        if getattr(w, "op", None) != "get_attr" or (b is not None and getattr(b, "op", None) != "get_attr"):
            continue
        owner, _, leaf = str(w.target).rpartition(".")
        if not owner or leaf != "weight":
            continue
        parent = gm.get_submodule(owner)
        extra = [n for n, _ in parent.named_parameters(recurse=False) if n not in ("weight", "bias")]
        if extra or list(parent.children()) or (b is not None and str(b.target) != f"{owner}.bias"):
            continue
        weight = gm.get_parameter(str(w.target))
        bias = gm.get_parameter(str(b.target)) if b is not None else None
        if owner not in made:
            if node.target is aten.linear.default:
                mod = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
            else:
                get = lambda i, d: args[i] if len(args) > i else d  # noqa: E731
                stride, padding, dilation, groups = get(3, 1), get(4, 0), get(5, 1), get(6, 1)
                mod = convs[node.target](weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]),
                                         stride=stride, padding=padding, dilation=dilation, groups=groups,
                                         bias=bias is not None, device="meta")
            mod.weight = weight
            if bias is not None:
                mod.bias = bias
            made[owner] = mod
            grand, _, attr = owner.rpartition(".")
            setattr(gm.get_submodule(grand) if grand else gm, attr, mod)
        with gm.graph.inserting_before(node):
            call = gm.graph.call_module(owner, (args[0],))
        call.meta.update(node.meta)
        node.replace_all_uses_with(call)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


# ------------------------------------------------------------------------------------------ Hugging Face
def _hf_folder(path: Path):
    import os

    if not (path / "config.json").is_file():
        raise UsageError(f"--model {str(path)!r} is a folder without config.json; give a Hugging Face model folder "
                         f"(config.json + *.safetensors)")
    if not any(path.glob("*.safetensors")):
        raise UsageError(f"--model {str(path)!r} holds no *.safetensors weights")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    tokenizer = None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception:  # noqa: BLE001 - no tokenizer in the folder: random token ids
        tokenizer = None
    cache: dict[str, Any] = {}

    def load():
        if "model" not in cache:
            from transformers import AutoModel
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            try:
                cache["model"] = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
            except Exception as err:  # noqa: BLE001 - config/weights transformers cannot load offline
                raise UsageError(f"--model {str(path)!r}: transformers cannot load it offline ({type(err).__name__}: "
                                 f"{(str(err).splitlines() or [''])[0][:160]})") from None
            cache["state"] = {k: v.clone() for k, v in cache["model"].state_dict().items()}
        return cache["model"]

    def build(weights=None):
        m = load()
        m.load_state_dict(cache["state"])
        return _load_state(m, weights, str(path)).eval()

    def vocab():
        import json

        return int(json.loads((path / "config.json").read_text()).get("vocab_size", 1000))

    def example():
        import torch

        if tokenizer is not None:
            from models.minilm import SENTENCES

            ids: list[int] = []
            for sent in tokenizer(list(SENTENCES[:40]), add_special_tokens=False)["input_ids"]:
                ids.extend(sent)
            return torch.tensor([ids[:HF_TOKENS]], dtype=torch.long)
        g = torch.Generator().manual_seed(0)
        return torch.randint(0, vocab(), (1, HF_TOKENS), generator=g)

    calibration = None
    source = None
    if tokenizer is not None:
        def calibration(n, calib_dir):
            from models.minilm import MAX_TOKENS, SENTENCES

            if calib_dir is not None:
                raise UsageError(f"{path} calibrates on the fixed sentences of models/minilm.py; drop --calib")
            sents = [SENTENCES[i % len(SENTENCES)] for i in range(n)]
            return [tokenizer(sents[i:i + 64], padding=True, truncation=True, max_length=MAX_TOKENS,
                              return_tensors="pt")["input_ids"] for i in range(0, n, 64)]

        source = "token ids of the fixed sentences in models/minilm.py (real text, the folder's tokenizer)"
    return _recipe(str(path), f"Hugging Face model folder {path.name}", build, example, calibration,
                   weights_description=f"the safetensors weights in {path}", calibration_source=source)
