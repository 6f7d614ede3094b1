"""Output-path policy: what hwq may replace, what it never touches, and where its temp folders go.

The rules (the README's "Output paths" section says the same):

* An output **file** (``quantize -o``, ``synth``'s ``resources.json``) is written atomically
  (:mod:`hwq.atomic`); it may replace an existing regular file, never a folder.
* An output **folder** (``explore --out``, ``rtl --out``, ``codesign``'s ``chosen/``) is built
  under a temp folder beside it and renamed into place. An existing regular file (or anything
  that is not a folder) is never replaced by a folder. An existing folder is replaced only when
  it is hwq's own output: empty, or recognised by the marker file :data:`MARKER` that hwq writes
  into every folder it builds (JSON naming the command and the files), or, for folders written
  before the marker existed, by the command's signature file (``blocks.json`` of ``hwq rtl``,
  ``plan.json`` with schema ``hwq.plan/1`` of ``hwq explore``); and in every case only when each
  entry in it is a name that command writes (or the marker lists). Anything else is refused
  before any work starts, naming a file that would be lost.
* A folder hwq writes **into** (``codesign --out``, which a rerun resumes; ``sim --build-dir``;
  ``export --to hls4ml``'s folder) is never replaced whole; ``codesign --out`` must be new, empty
  or an earlier codesign folder; the others new, empty or carrying :data:`MARKER`, which hwq
  writes into them before anything else (:func:`check_work_dir`, :func:`claim_work_dir`).
* Temp folders and files are named ``.NAME.hwq-tmp-PID-XXXX`` beside their destination NAME;
  work folders in the system temp folder ``.hwq-LABEL.hwq-tmp-PID-XXXX`` (:func:`scratch_dir`).
  A run that ends normally, fails, or gets SIGTERM/SIGINT removes its own; one killed with
  SIGKILL leaves it, and the next run that writes NAME (:func:`clean_stale`), or uses that folder
  (:func:`clean_stale_in`: the sensitivity cache, a codesign folder) or that LABEL, removes every
  such entry whose PID is no longer running; also the PID-named temp files of older versions
  (``.NAME.tmpPID``, ``KEY.tmpPID.npz``) and the ``.NAME.tmp*`` / ``.NAME.old*`` folders they
  left, when every entry in them is a name hwq writes.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from hwq.errors import UsageError

#: Marker file hwq writes into every output folder it builds.
MARKER = ".hwq-output"

#: Infix of hwq's temp entries: ``.NAME.hwq-tmp-PID-XXXX``.
TMP_TAG = ".hwq-tmp-"


@dataclass(frozen=True)
class FolderKind:
    """What one command writes into an output folder.

    Attributes:
        command: e.g. ``"hwq rtl"`` (recorded in the marker).
        names: glob patterns of the entries the command writes.
        signature: recognises a folder written before the marker existed (None: only the marker counts).
    """

    command: str
    names: tuple[str, ...]
    signature: Callable[[Path], bool] | None = None


def _json_file(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _rtl_signature(folder: Path) -> bool:
    info = _json_file(folder / "blocks.json")
    return isinstance(info, dict) and isinstance(info.get("blocks"), dict)


def _explore_signature(folder: Path) -> bool:
    plan = _json_file(folder / "plan.json")
    return isinstance(plan, dict) and plan.get("schema") == "hwq.plan/1"


def _codesign_signature(folder: Path) -> bool:
    return (folder / "results.jsonl").is_file() or (folder / "summary.json").is_file()


KINDS: dict[str, FolderKind] = {
    "rtl": FolderKind("hwq rtl", ("*.v", "synth.ys", "blocks.json", "README.md", "resources.json", "resources.md",
                                  ".synth_*"), _rtl_signature),
    "explore": FolderKind("hwq explore", ("plan.json", "plan.csv", "report.md", "timings.json", "*.png"),
                          _explore_signature),
    "codesign": FolderKind("hwq codesign", ("results.jsonl", "stages.jsonl", "summary.json", "timings.json",
                                            "pareto.png", "chosen", ".chosen.*", ".summary.json.tmp*",
                                            ".results.jsonl.*"), _codesign_signature),
    "chosen": FolderKind("hwq codesign", ("spec.yaml", "slice_spec.yaml", "plan.json", "rtl", "synth.json",
                                          "sim.json", "artifacts.json"), None),
}


# ------------------------------------------------------------------------------ checks
def _q(text: str) -> str:
    """``repr`` of a path for a message, long ones shortened to their ends."""
    return repr(text) if len(text) <= 100 else repr(f"{text[:60]}...{text[-24:]}")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and not p.is_symlink():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_creatable(path: str | os.PathLike[str], flag: str) -> Path:
    """Check that ``path`` can be created or written by this user: a non-empty name, no component a
    file, each name short enough, the nearest existing folder writable. Returns the path (absolute)."""
    text = os.fspath(path)
    if not text.strip():
        raise UsageError(f"{flag} is empty; give a path")
    if "\0" in text:
        raise UsageError(f"{flag} {_q(text)} contains a NUL byte; give a plain path")
    p = Path(os.path.abspath(text))
    if p == Path(p.anchor):
        raise UsageError(f"{flag} {_q(text)} is the file-system root; give a folder below it")
    for part in p.parts:  # before any stat: a too-long name makes stat itself fail
        if len(os.fsencode(part)) > 255:
            raise UsageError(f"{flag} {_q(text)}: the name {part[:24]}... is {len(os.fsencode(part))} bytes long; "
                             f"file systems allow 255")
    anc = _nearest_existing(p)
    if anc == p:  # the path itself exists: what matters here is its folder (callers judge the path)
        anc = p.parent
    if not anc.is_dir():
        raise UsageError(f"{flag} {_q(text)}: {anc} is a file, not a folder, so nothing can be created under it")
    limit = _name_max(anc)
    for part in p.relative_to(anc).parts:
        if len(os.fsencode(part)) > limit:
            raise UsageError(f"{flag} {_q(text)}: the name {part[:24]}... is {len(os.fsencode(part))} bytes long; "
                             f"this file system allows {limit}")
    writable = anc
    if _is_pseudo_fs(writable) or not os.access(writable, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {_q(text)}: {writable} is not writable; choose a folder you can write to")
    return p


def _is_pseudo_fs(folder: Path) -> bool:
    """/proc and /sys accept no new entries even for root."""
    parts = folder.resolve().parts
    return len(parts) > 1 and parts[1] in ("proc", "sys")


def check_output_file(path: str | os.PathLike[str], flag: str) -> Path:
    """An output file may replace a regular file, never a folder; its folder must exist and be writable."""
    text = os.fspath(path)
    p = check_creatable(text, flag)
    if p.is_dir():
        raise UsageError(f"{flag} {_q(text)} is a folder; give a file name (hwq never replaces a folder with a file)")
    if p.exists() and not p.is_file():
        raise UsageError(f"{flag} {_q(text)} exists and is not a regular file; give another name")
    if not p.parent.is_dir():
        raise UsageError(f"{flag} {_q(text)}: folder {str(p.parent)!r} does not exist; create it or choose another path")
    return p


def _marker_files(folder: Path) -> set[str] | None:
    data = _json_file(folder / MARKER)
    if isinstance(data, dict) and isinstance(data.get("files"), list):
        return {str(f) for f in data["files"]}
    return None


def _foreign_entries(folder: Path, kind: FolderKind, listed: Iterable[str]) -> list[str]:
    listed = set(listed)
    out = []
    for entry in sorted(os.listdir(folder)):
        if entry == MARKER or entry in listed or TMP_TAG in entry:
            continue
        if any(fnmatch.fnmatchcase(entry, pat) for pat in kind.names):
            continue
        out.append(entry)
    return out


def check_output_dir(path: str | os.PathLike[str], flag: str, kind: str) -> Path:
    """Raise :class:`UsageError` unless ``path`` may be (re)built as a ``kind`` output folder (module docstring)."""
    text = os.fspath(path)
    p = check_creatable(text, flag)
    fk = KINDS[kind]
    if p.is_symlink() and not p.exists():
        raise UsageError(f"{flag} {_q(text)} is a dangling symbolic link; remove it or choose another folder")
    if not p.exists():
        return p
    if not p.is_dir():
        raise UsageError(f"{flag} {_q(text)} is an existing file; hwq never replaces a file with a folder: "
                         f"choose another {flag}")
    try:
        entries = os.listdir(p)
    except OSError as err:
        raise UsageError(f"{flag} {_q(text)} cannot be read ({err.strerror}); choose another folder") from None
    if not entries:
        return p
    listed = _marker_files(p)
    if listed is None and not (fk.signature and fk.signature(p)):
        raise UsageError(f"{flag} {_q(text)} is a folder hwq did not write (no {MARKER} marker; it holds "
                         f"{sorted(entries)[0]!r}); choose a new or empty folder")
    foreign = _foreign_entries(p, fk, listed or ())
    if foreign:
        raise UsageError(f"{flag} {_q(text)} holds {foreign[0]!r}, which {fk.command} did not write and would "
                         f"lose; move it away or choose another folder")
    return p


def check_work_dir(path: str | os.PathLike[str], flag: str) -> Path:
    """A folder hwq writes into and never replaces whole (``sim --build-dir``, ``export --to hls4ml``):
    not a file, creatable, and, when it exists, empty or carrying :data:`MARKER` (hwq wrote it:
    :func:`claim_work_dir`). A folder of the user's is never written into."""
    text = os.fspath(path)
    p = check_creatable(text, flag)
    if p.is_symlink() and not p.exists():
        raise UsageError(f"{flag} {_q(text)} is a dangling symbolic link; remove it or choose another folder")
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {_q(text)} is an existing file, not a folder; choose another {flag}")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {_q(text)} is not writable; choose a folder you can write to")
        try:
            entries = sorted(os.listdir(p))
        except OSError as err:
            raise UsageError(f"{flag} {_q(text)} cannot be read ({err.strerror}); choose another folder") from None
        if entries and MARKER not in entries:
            raise UsageError(f"{flag} {_q(text)} is a folder hwq did not write (no {MARKER} marker; it holds "
                             f"{entries[0]!r}); choose a new or empty folder")
    return p


def claim_work_dir(path: str | os.PathLike[str], command: str) -> Path:
    """Create the work folder ``path`` (checked by :func:`check_work_dir`) and write :data:`MARKER`
    into it first, so a later run recognises it; temp entries of killed runs in it are removed."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    if not (p / MARKER).exists():
        (p / MARKER).write_text(json.dumps({"written_by": command, "kind": "work folder", "files": []}, indent=1)
                                + "\n", encoding="utf-8")
    clean_stale_in(p)
    return p


# ------------------------------------------------------------------------------ temp entries
def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stem(dest: Path) -> str:
    return dest.name[:64]  # long names keep temp names within NAME_MAX


def tmp_prefix(dest: str | os.PathLike[str]) -> str:
    """Prefix of this process's temp entries for ``dest``: ``.NAME.hwq-tmp-PID-`` (NAME cut at 64 characters)."""
    return f".{_stem(Path(dest))}{TMP_TAG}{os.getpid()}-"


def clean_stale(dest: str | os.PathLike[str]) -> list[str]:
    """Remove temp entries beside ``dest`` left by hwq runs that were killed; return their names."""
    dest = Path(dest)
    parent = dest.parent
    removed: list[str] = []
    try:
        entries = os.listdir(parent)
    except OSError:
        return removed
    own = f".{_stem(dest)}{TMP_TAG}"
    legacy = (f".{dest.name}.tmp", f".{dest.name}.old")
    for entry in entries:
        path = parent / entry
        if entry.startswith(own):
            pid_text = entry[len(own):].split("-", 1)[0]
            if not pid_text.isdigit() or _pid_alive(int(pid_text)):
                continue
        elif entry.startswith(legacy) and path.is_dir() and not path.is_symlink():
            # Left by an older hwq (report.py's .NAME.tmpXXXX, atomic_dir's .NAME.old.XXXX): only
            # when nothing in it is foreign to hwq's outputs.
            inner = path / dest.name if (path / dest.name).is_dir() else path
            try:
                names = os.listdir(inner)
            except OSError:
                continue
            if not all(any(fnmatch.fnmatchcase(n, pat) for k in KINDS.values() for pat in k.names) or n == MARKER
                       for n in names):
                continue
        else:
            continue
        if _remove(path):
            removed.append(entry)
    return removed


def _remove(path: Path) -> bool:
    """Delete ``path`` (a folder with its contents, or a file or link); False when that fails."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        return False
    return True


#: Temp names of hwq versions before :data:`TMP_TAG`, each carrying the writer's PID (group 1):
#: ``.NAME.tmpPID`` (codesign's JSON and plots), ``KEY.tmpPID.npz`` (the sensitivity cache),
#: ``NAME.tmp`` has no PID and is not matched.
_LEGACY_PID_TEMPS = (re.compile(r"^\..+\.tmp(\d+)(\.[A-Za-z0-9]+)?$"), re.compile(r"^[0-9a-f]{8,}\.tmp(\d+)\.npz$"))
_OWN_TEMP = re.compile(r"^\..*" + re.escape(TMP_TAG) + r"(\d+)-")


def clean_stale_in(folder: str | os.PathLike[str]) -> list[str]:
    """Remove every temp entry in ``folder`` that a killed hwq run left, whatever its destination:
    ``.NAME.hwq-tmp-PID-XXXX`` and the PID-named temp files of older versions
    (:data:`_LEGACY_PID_TEMPS`), when that PID is no longer running. Returns the names removed.

    For folders hwq writes many files into under names it cannot list in advance (the sensitivity
    cache, a ``codesign --out`` folder, ``sim --build-dir``)."""
    folder = Path(folder)
    removed: list[str] = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        path = folder / entry
        m = _OWN_TEMP.match(entry)
        if m is None:
            m = next((r.match(entry) for r in _LEGACY_PID_TEMPS if r.match(entry)), None)
            if m is None or path.is_dir():  # legacy PID names were only ever files
                continue
        if _pid_alive(int(m.group(1))):
            continue
        if _remove(path):
            removed.append(entry)
    return removed


def make_tmp_dir(dest: Path) -> Path:
    """A fresh temp folder beside ``dest`` named by this process (see :func:`clean_stale`)."""
    try:
        return Path(tempfile.mkdtemp(prefix=tmp_prefix(dest), dir=dest.parent))
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise UsageError(f"output folder name {dest.name[:24]}... is too long for this file system") from None
        raise


@contextmanager
def claimed_work_dir(path: str | os.PathLike[str] | None, command: str) -> Iterator[Path | None]:
    """:func:`claim_work_dir` for the duration of a run (``path`` None: nothing). If the run fails
    and this call created the folder, and it still holds nothing but the marker, it is removed:
    a failed run leaves no new empty folder behind."""
    if path is None:
        yield None
        return
    p = Path(path)
    created = not p.exists()
    claim_work_dir(p, command)
    try:
        yield p
    except BaseException:
        try:
            if created and os.listdir(p) == [MARKER]:
                shutil.rmtree(p)
        except OSError:
            pass
        raise


def make_scratch_dir(label: str) -> Path:
    """A fresh work folder in the system temp folder (``$TMPDIR``), named by this process
    (``.hwq-LABEL.hwq-tmp-PID-XXXX``); the caller removes it, or keeps it for a log after a
    failure. Each call first removes the folders of the same ``label`` whose PID is no longer
    running (a killed run's, or a failed run's kept log), so none accumulate."""
    dest = Path(tempfile.gettempdir()) / f"hwq-{label}"
    clean_stale(dest)
    return make_tmp_dir(dest)


@contextmanager
def scratch_dir(label: str) -> Iterator[Path]:
    """:func:`make_scratch_dir`, removed on the way out (normal exit, error, SIGTERM/SIGINT)."""
    folder = make_scratch_dir(label)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_marker(folder: Path, command: str) -> None:
    """Write :data:`MARKER` into ``folder`` listing every entry in it (call it last)."""
    files = sorted(e for e in os.listdir(folder) if e != MARKER)
    (folder / MARKER).write_text(json.dumps({"written_by": command, "files": files}, indent=1) + "\n",
                                 encoding="utf-8")
