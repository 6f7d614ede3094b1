"""Calibration data from a user's ImageFolder (torchvision's loader) and its error path."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hwq.errors import UsageError
from models.registry import get_recipe


def _image_folder(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (240, 250, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


def test_imagefolder_calibration_gives_normalised_224_batches(tmp_path: Path) -> None:
    batches = get_recipe("resnet18").calibration(4, _image_folder(tmp_path / "imgs"))
    x = np.concatenate([b.numpy() for b in batches])
    assert x.shape == (4, 3, 224, 224)
    assert -3.0 < x.min() < 0.0 < x.max() < 3.0  # ImageNet-normalised, not raw [0, 1] pixels


def test_folder_without_images_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "class0").mkdir(parents=True)
    with pytest.raises(UsageError, match="ImageFolder"):
        get_recipe("resnet18").calibration(2, tmp_path / "empty")
