"""A small residual CNN for scikit-learn's 8x8 handwritten digits (the QFX fixed-point study model).

Architecture (about 15k parameters, ``torch.fx`` traceable)::

    stem:  conv3x3(1->24, no bias) - BN - ReLU
    block: conv3x3(24->24) - BN - ReLU - conv3x3(24->24) - BN ; add(stem, block) (explicit ``Add``) ; ReLU
    head:  maxpool 2x2 -> flatten (24*4*4) -> linear(384->10)

Data: ``sklearn.datasets.load_digits`` (1797 images, bundled with scikit-learn, no download),
pixel values 0..16 scaled to [0, 1], shape ``[N, 1, 8, 8]``; a stratified 70/30 split with a
fixed seed (1257 train / 540 test).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from hwq.quant.modules import Add

CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "digits_cnn.pt"
SPLIT_SEED = 0
TEST_FRACTION = 0.3

__all__ = ["DigitsCNN", "load_digits_split", "load_checkpoint", "evaluate", "calibration_batches", "CHECKPOINT",
           "example_input"]


class DigitsCNN(nn.Module):
    """conv-BN-ReLU stem, one residual block (two conv-BN, explicit ``Add``), max-pool, linear head."""

    def __init__(self, channels: int = 24, num_classes: int = 10) -> None:
        super().__init__()
        c = channels
        self.stem_conv = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(c)
        self.stem_relu = nn.ReLU()
        self.block_conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.block_bn1 = nn.BatchNorm2d(c)
        self.block_relu1 = nn.ReLU()
        self.block_conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.block_bn2 = nn.BatchNorm2d(c)
        self.add = Add()
        self.block_relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(c * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem_relu(self.stem_bn(self.stem_conv(x)))
        y = self.block_relu1(self.block_bn1(self.block_conv1(s)))
        y = self.block_bn2(self.block_conv2(y))
        y = self.block_relu2(self.add(s, y))
        return self.fc(torch.flatten(self.pool(y), 1))


@lru_cache(maxsize=1)
def _split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    idx = list(range(len(y)))
    tr, te = train_test_split(idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=data.target)
    tr_t, te_t = torch.tensor(tr), torch.tensor(te)
    return x[tr_t], y[tr_t], x[te_t], y[te_t]


def load_digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train [N,1,8,8] in [0,1], y_train, x_test, y_test)``, fixed stratified split (seed 0)."""
    return tuple(t.clone() for t in _split())  # type: ignore[return-value]


def load_checkpoint(path: str | Path = CHECKPOINT) -> DigitsCNN:
    """The committed trained model (eval mode). Regenerate with ``python -m models.train_digits``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python -m models.train_digits` to create it")
    model = DigitsCNN()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, split: str = "test") -> float:
    """Top-1 accuracy (0..1) of ``model`` on the ``"test"`` (default) or ``"train"`` split."""
    x_tr, y_tr, x_te, y_te = _split()
    x, y = (x_te, y_te) if split == "test" else (x_tr, y_tr)
    was_training = model.training
    model.eval()
    pred = model(x).argmax(1)
    model.train(was_training)
    return float((pred == y).float().mean())


def calibration_batches(n: int = 4, batch_size: int = 64) -> list[torch.Tensor]:
    """``n`` input batches (first training images, deterministic) for post-training calibration."""
    x_tr = _split()[0]
    return [x_tr[i * batch_size:(i + 1) * batch_size].clone() for i in range(n) if i * batch_size < len(x_tr)]


def example_input(batch: int = 1) -> torch.Tensor:
    """A ``[batch, 1, 8, 8]`` input (first training images)."""
    return _split()[0][:batch].clone()
