"""Train the digits CNN and write ``models/checkpoints/digits_cnn.pt`` (state dict, ~60 KB).

Usage: ``python -m models.train_digits [--epochs 40] [--seed 0] [--out PATH]`` (CPU, < 60 s).
Adam (lr 3e-3, cosine decay), batch 64, light random-shift augmentation; prints test accuracy.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from models.digits_cnn import CHECKPOINT, DigitsCNN, evaluate, load_digits_split


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random +-1 pixel translation per batch (zero padded)."""
    dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
    return torch.roll(F.pad(x, (1, 1, 1, 1)), shifts=(dy, dx), dims=(2, 3))[..., 1:-1, 1:-1]


def train(epochs: int = 40, seed: int = 0, lr: float = 3e-3, batch_size: int = 64) -> DigitsCNN:
    """A trained :class:`DigitsCNN` (deterministic for a given seed)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_tr, y_tr, _, _ = load_digits_split()
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y_tr), generator=gen)
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model(_shift(x_tr[idx], gen)), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def save_atomic(model: torch.nn.Module, path: Path) -> None:
    """Write the state dict to ``path`` via a temporary file and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(model.state_dict(), tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=CHECKPOINT)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    model = train(args.epochs, args.seed)
    save_atomic(model, args.out)
    print(f"test accuracy {evaluate(model):.4f}, train {evaluate(model, 'train'):.4f}, "
          f"{sum(p.numel() for p in model.parameters())} parameters, {time.time() - t0:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
