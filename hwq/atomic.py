"""Atomic file and folder writes: a reader sees the old file or the whole new one, never half.

Every report, plan and generated artifact hwq writes goes through here. Temporary files are
created next to their destination (same file system, so ``os.replace`` is atomic) and get
the permissions a plain ``open(..., "w")`` would give (``0o666`` minus the umask), not
``mkstemp``'s ``0o600``. Temp names follow :mod:`hwq.paths` (``.NAME.hwq-tmp-PID-XXXX``), so a
later run removes those a killed run left (:func:`hwq.paths.clean_stale`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from hwq.paths import clean_stale, make_tmp_dir, tmp_prefix, write_marker


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on normal exit it replaces ``dest``, else it is removed.

    ``suffix`` keeps an extension on the temporary name for writers that look at it
    (matplotlib, safetensors).
    """
    dest = Path(dest)
    if dest.is_dir():
        from hwq.errors import UsageError

        raise UsageError(f"{dest} is a folder; hwq never replaces a folder with a file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(dest)
    fd, tmp_name = tempfile.mkstemp(prefix=tmp_prefix(dest), suffix=suffix or ".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def save_figure(fig: Any, dest: str | os.PathLike[str], **savefig_kwargs: Any) -> None:
    """Save a matplotlib figure to ``dest`` atomically (format from ``dest``'s extension)."""
    dest = Path(dest)
    with atomic_path(dest, suffix=dest.suffix) as tmp:
        fig.savefig(tmp, **savefig_kwargs)


@contextmanager
def atomic_dir(dest: str | os.PathLike[str], *, marker: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``dest``; on normal exit it replaces ``dest`` whole.

    An existing ``dest`` is moved aside and deleted only after the new folder is in place; on
    an exception the temporary folder is removed and ``dest`` is left as it was. ``marker``
    (a command, e.g. ``"hwq rtl"``): write :data:`hwq.paths.MARKER` listing the folder's files,
    so a later run recognises the folder as hwq's (:func:`hwq.paths.check_output_dir`).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(dest)
    tmp = make_tmp_dir(dest)
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if marker:
            write_marker(tmp, marker)
        old = None
        if dest.exists() or dest.is_symlink():
            if not dest.is_dir() or dest.is_symlink():
                from hwq.errors import UsageError

                raise UsageError(f"{dest} exists and is not a folder (a file or a link); hwq never replaces "
                                 f"it with a folder")
            old = make_tmp_dir(dest)
            os.replace(dest, old / dest.name)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
