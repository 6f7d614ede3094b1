"""hwq.atomic: all-or-nothing file and folder writes, umask permissions, no temp files left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hwq.atomic import atomic_dir, atomic_path, save_figure, write_bytes, write_text


class Boom(Exception):
    pass


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o022
    os.umask(old)


def test_write_text_and_bytes_replace_and_leave_nothing_else(tmp_path: Path) -> None:
    dest = tmp_path / "r.md"
    write_text(dest, "old\n")
    write_text(dest, "new \u00b5s\n")
    assert dest.read_text(encoding="utf-8") == "new \u00b5s\n"
    write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "r.md"]


def test_write_creates_missing_parent(tmp_path: Path) -> None:
    write_text(tmp_path / "a" / "b" / "c.txt", "x")
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "x"


def test_failure_inside_block_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "plan.json"
    dest.write_text("old")
    with pytest.raises(Boom):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            assert tmp.parent == dest.parent and tmp != dest
            raise Boom
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_failure_without_old_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(Boom):
        with atomic_path(tmp_path / "new.txt"):
            raise Boom
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_file_permissions_follow_umask_not_0600(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "f.txt") == 0o666 & ~mask


def test_atomic_path_suffix_kept_on_temp(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "w.safetensors", suffix=".safetensors.tmp") as tmp:
        assert tmp.name.endswith(".safetensors.tmp")
        tmp.write_bytes(b"x")
    assert (tmp_path / "w.safetensors").read_bytes() == b"x"


def test_save_figure_png(tmp_path: Path, umask_022: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    save_figure(fig, tmp_path / "p.png", dpi=20)
    plt.close(fig)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _mode(tmp_path / "p.png") == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


def test_atomic_dir_replaces_folder_whole(tmp_path: Path, umask_022: int) -> None:
    dest = tmp_path / "rtl"
    dest.mkdir()
    (dest / "stale.v").write_text("old")
    (dest / "keep.v").write_text("old")
    with atomic_dir(dest) as tmp:
        assert tmp.parent == tmp_path and tmp != dest
        (tmp / "keep.v").write_text("new")
        assert (dest / "stale.v").exists()  # readers still see the old folder while writing
    assert sorted(p.name for p in dest.iterdir()) == ["keep.v"]
    assert (dest / "keep.v").read_text() == "new"
    assert _mode(dest) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["rtl"]


def test_atomic_dir_failure_keeps_old_folder(tmp_path: Path) -> None:
    dest = tmp_path / "rtl"
    dest.mkdir()
    (dest / "a.v").write_text("old")
    with pytest.raises(Boom):
        with atomic_dir(dest) as tmp:
            (tmp / "a.v").write_text("half")
            raise Boom
    assert [p.name for p in dest.iterdir()] == ["a.v"]
    assert (dest / "a.v").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["rtl"]


def test_atomic_dir_creates_new_folder(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "sub" / "out") as tmp:
        (tmp / "x").write_text("1")
    assert (tmp_path / "sub" / "out" / "x").read_text() == "1"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["out"]
