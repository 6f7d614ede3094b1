"""Model recipes by name: how to build each model, its example input and calibration data.

``get_recipe(name) -> ModelRecipe``; ``MODEL_NAMES`` lists the names. Nothing here downloads:

* ``resnet18``, ``resnet50``, ``mobilenet_v2`` (torchvision): ``build()`` loads the ImageNet
  weights only when the file is already in the local torch hub cache
  (``torch.hub.get_dir()/checkpoints``), else a deterministic random initialisation (seed 0);
  ``build(path)`` loads a state dict file; ``build("random")`` forces random weights.
  Example input ``1 x 3 x 224 x 224``. ``calibration(n)`` gives ``n`` synthetic images
  (uniform pixels, ImageNet normalisation, seed 0) unless ``calib_dir`` names a folder of
  images in ImageFolder layout (``root/<class>/<image>``, torchvision's loader) or of
  ``*.pt``/``*.npy`` tensors.
* ``minilm``: the real all-MiniLM-L6-v2 (``models.minilm.load_minilm``, offline); example input
  is 128 token ids of the fixed sentences; calibration batches are token ids of ``SENTENCES``.
* ``digits_cnn``: the small residual CNN on scikit-learn digits (``models.digits_cnn``), from its
  committed checkpoint when present.

``calibration(n)`` returns a list of input batches (tensors) holding ``n`` samples in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from hwq.errors import UsageError

#: Tokens in the MiniLM example input (the workload is specialised to this length).
MINILM_TOKENS = 128
_IMAGE_BATCH = 8


@dataclass(frozen=True)
class ModelRecipe:
    """How to build and feed one model (see the module docstring)."""

    name: str
    description: str
    _build: Callable[[Any], Any]
    _example: Callable[[], Any]
    _calibration: Callable[[int, Any], list]
    #: Bring-your-own models (``models.resolve``): what the weights are, whether they are a random
    #: initialisation, whether ``calibration`` is synthetic data of the example input's shape, and a
    #: description of the calibration data (None: the registry's own wording).
    weights_description: str = ""
    random_weights: bool = False
    synthetic_calibration: bool = False
    calibration_source: str | None = None

    def build(self, weights: Any = None):
        """The ``nn.Module`` in eval mode (``weights``: None = cached or default, a path, or "random")."""
        return self._build(weights)

    def example_input(self):
        """One example input (tensor) for tracing and shape propagation."""
        return self._example()

    def calibration(self, n: int, calib_dir: str | Path | None = None) -> list:
        """Input batches holding ``n`` samples in all (from ``calib_dir`` when given)."""
        if n < 1:
            raise UsageError(f"calibration needs at least 1 sample, got {n}")
        return self._calibration(n, calib_dir)


# ---------------------------------------------------------------------------------------
# torchvision image classifiers
# ---------------------------------------------------------------------------------------
_TV = {
    "resnet18": ("resnet18", "ResNet18_Weights", "ResNet-18 (torchvision), 224x224 ImageNet classifier"),
    "resnet50": ("resnet50", "ResNet50_Weights", "ResNet-50 (torchvision), 224x224 ImageNet classifier"),
    "mobilenet_v2": ("mobilenet_v2", "MobileNet_V2_Weights",
                     "MobileNetV2 (torchvision, depthwise convolutions), 224x224 ImageNet classifier"),
}


def cached_weight_file(name: str) -> Path | None:
    """Path of the torchvision ImageNet weights of ``name`` if already in the torch hub cache."""
    import torch
    import torchvision.models as tvm

    url = getattr(tvm, _TV[name][1]).DEFAULT.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    return path if path.is_file() else None


def _load_state(model, path: Path) -> None:
    import torch

    if not Path(path).is_file():
        raise UsageError(f"weights file {path} not found; give a state-dict file (.pt/.pth) or omit --weights")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise UsageError(f"weights file {path} does not match the model: {str(err).splitlines()[0]}") from None


def _tv_build(name: str, weights: Any):
    import torch
    import torchvision.models as tvm

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = getattr(tvm, _TV[name][0])(weights=None)
    if weights is None:
        cached = cached_weight_file(name)
        if cached is not None:
            _load_state(model, cached)
    elif str(weights) != "random":
        _load_state(model, Path(weights))
    return model.eval()


def _image_example():
    import torch

    g = torch.Generator().manual_seed(0)
    return _normalise(torch.rand(1, 3, 224, 224, generator=g))


def _normalise(x):
    import torch

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std


def _batches(x, batch: int) -> list:
    return [x[i:i + batch] for i in range(0, len(x), batch)]


def _tensor_files(root: Path, n: int) -> list:
    import numpy as np
    import torch

    xs = []
    for f in sorted(p for p in root.rglob("*") if p.suffix in (".pt", ".npy") and p.is_file()):
        try:
            t = (torch.load(f, map_location="cpu", weights_only=True) if f.suffix == ".pt"
                 else torch.from_numpy(np.load(f, allow_pickle=False)))
        except Exception as err:  # noqa: BLE001 - pickles, truncated files, object arrays: a bad calibration file
            first = (str(err).splitlines() or [type(err).__name__])[0][:120]
            raise UsageError(f"calibration file {f} is not a plain tensor ({first}); save it with torch.save(tensor) "
                             f"or numpy.save(array) of numbers") from None
        if not isinstance(t, torch.Tensor) or not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int64)):
            raise UsageError(f"calibration file {f} holds {type(t).__name__ if not isinstance(t, torch.Tensor) else t.dtype}, "
                             f"not a tensor of numbers")
        if t.dim() < 3:
            raise UsageError(f"calibration file {f} has shape {list(t.shape)}; images need [C, H, W] or [N, C, H, W]")
        if not bool(torch.isfinite(t.float()).all()):
            raise UsageError(f"calibration file {f} holds NaN or infinite values")
        xs.append(t if t.dim() > 3 else t.unsqueeze(0))
        if sum(len(x) for x in xs) >= n:
            break
    return xs


def _image_calibration(n: int, calib_dir: Any) -> list:
    import torch

    if calib_dir is None:
        g = torch.Generator().manual_seed(0)
        return _batches(_normalise(torch.rand(n, 3, 224, 224, generator=g)), _IMAGE_BATCH)
    root = Path(calib_dir)
    if root.is_file():
        raise UsageError(f"--calib {str(root)!r} is a file, not a folder; pass a folder of *.pt/*.npy tensors "
                         f"or an ImageFolder")
    if not root.is_dir():
        raise UsageError(f"calibration folder {root} does not exist")
    tensors = _tensor_files(root, n)
    if tensors:
        return _batches(torch.cat([t.float() for t in tensors])[:n], _IMAGE_BATCH)
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    try:
        folder = datasets.ImageFolder(str(root), transform=tf)
    except (FileNotFoundError, RuntimeError) as err:
        raise UsageError(f"calibration folder {root} is not an ImageFolder (root/<class>/<image>.jpg) and "
                         f"holds no *.pt/*.npy tensors: {str(err).splitlines()[0]}") from None
    # ImageFolder lists samples sorted by class then file name: take an even spread of n.
    step = max(1, len(folder) // n)
    x = torch.stack([folder[i][0] for i in range(0, len(folder), step)][:n])
    return _batches(x, _IMAGE_BATCH)


# ---------------------------------------------------------------------------------------
# MiniLM
# ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _tokenizer():
    from transformers import AutoTokenizer

    from models.minilm import model_dir

    return AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)


def _minilm_build(weights: Any):
    from models.minilm import load_minilm

    if weights is not None:
        raise UsageError("minilm always uses the packaged all-MiniLM-L6-v2 weights; drop --weights")
    return load_minilm()


def _minilm_example():
    import torch

    from models.minilm import SENTENCES

    ids: list[int] = []
    for sent_ids in _tokenizer()(list(SENTENCES[:40]), add_special_tokens=False)["input_ids"]:
        ids.extend(sent_ids)
    ids = ids[:MINILM_TOKENS]
    return torch.tensor([ids], dtype=torch.long)


def _minilm_calibration(n: int, calib_dir: Any) -> list:
    from models.minilm import MAX_TOKENS, SENTENCES

    if calib_dir is not None:
        raise UsageError("minilm calibrates on its fixed sentences; drop --calib")
    sents = [SENTENCES[i % len(SENTENCES)] for i in range(n)]
    tok = _tokenizer()
    out = []
    for i in range(0, n, 64):
        enc = tok(sents[i:i + 64], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        out.append(enc["input_ids"])
    return out


# ---------------------------------------------------------------------------------------
# Digits CNN
# ---------------------------------------------------------------------------------------
def _digits_build(weights: Any):
    from models import digits_cnn as d

    if weights is not None and str(weights) != "random":
        return d.load_checkpoint(Path(weights)).eval()
    if weights is None and d.CHECKPOINT.is_file():
        return d.load_checkpoint().eval()
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return d.DigitsCNN().eval()


def _digits_example():
    from models.digits_cnn import example_input

    return example_input(1)


def _digits_calibration(n: int, calib_dir: Any) -> list:
    import torch

    from models.digits_cnn import calibration_batches

    if calib_dir is not None:
        raise UsageError("digits_cnn calibrates on the scikit-learn digits training split; drop --calib")
    bs = min(n, 64)
    x = torch.cat(calibration_batches(-(-n // bs), bs))[:n]
    return _batches(x, bs)


# ---------------------------------------------------------------------------------------
_RECIPES: dict[str, ModelRecipe] = {
    **{name: ModelRecipe(name, desc, (lambda w, _n=name: _tv_build(_n, w)), _image_example, _image_calibration)
       for name, (_, _, desc) in _TV.items()},
    "minilm": ModelRecipe("minilm", "all-MiniLM-L6-v2 sentence encoder (6 BERT layers, 384 hidden), "
                          f"{MINILM_TOKENS} tokens", _minilm_build, _minilm_example, _minilm_calibration),
    "digits_cnn": ModelRecipe("digits_cnn", "small residual CNN on scikit-learn 8x8 digits", _digits_build,
                              _digits_example, _digits_calibration),
}

#: Every registered model name.
MODEL_NAMES: tuple[str, ...] = tuple(_RECIPES)


def get_recipe(name: str) -> ModelRecipe:
    """The recipe called ``name``, or of any other ``--model`` form (``torchvision:<name>``,
    ``file.py:build``, ``package.module:build``, a ``.pt2``, a Hugging Face folder: ``models.resolve``);
    ``UsageError`` listing the known names and forms otherwise. Resolved recipes are cached per process."""
    try:
        return _RECIPES[name]
    except (KeyError, TypeError):
        pass
    return _resolved(str(name))


@lru_cache(maxsize=16)
def _resolved(name: str) -> ModelRecipe:
    from models.resolve import resolve

    return resolve(name)
