"""rtl/<preset>/ must be exactly what `hwq rtl` generates today (deterministic, not stale)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwq.hw.presets import write_rtl
from hwq.spec import PRESETS, load_spec

RTL = Path(__file__).resolve().parents[1] / "rtl"


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_rtl_folder_is_fresh(preset: str, tmp_path: Path) -> None:
    out = tmp_path / preset
    files = write_rtl(load_spec(preset), out)
    for name in files:
        committed = RTL / preset / name
        assert committed.exists(), f"rtl/{preset}/{name} missing; run `hwq rtl --arch {preset} --out rtl/{preset}`"
        assert committed.read_bytes() == (out / name).read_bytes(), (
            f"rtl/{preset}/{name} is stale; run `hwq rtl --arch {preset} --out rtl/{preset}`")
