"""One input check per kind of argument, shared by every command.

Each function takes what the user typed and returns the parsed value, or raises
:class:`hwq.errors.UsageError` with one line that names the argument, the problem and the
fix. Commands call these first, before any heavy step (model build, sweep, synthesis), so a
bad input costs no time and changes nothing on disk. A new command gets the same checks by
calling the same functions.

Kinds: budgets and units (:func:`energy`, :func:`latency`, :func:`size`), counts
(:func:`int_at_least`), model names (:func:`model`), accelerator specs (:func:`spec`),
design spaces (:func:`space`), plan files (:func:`plan_file`), text files in general
(:func:`text_file`), safetensors inputs (:func:`safetensors_input`, :func:`finite_tensors`),
output paths (:func:`output_file`, :func:`output_dir`, :func:`work_dir`, policy in
:mod:`hwq.paths`), calibration folders (:func:`calib_dir`) and the sensitivity cache
(:func:`cache_dir`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hwq.errors import UsageError


# ------------------------------------------------------------------------------ numbers
def energy(text: str, flag: str = "--budget") -> float:
    """Energy text (``2mJ``) -> joules; positive and finite after the prefix is applied."""
    from hwq.search.units import parse_energy

    return parse_energy(text)


def latency(text: str, flag: str = "--latency") -> float:
    """Latency text (``5ms``) -> seconds."""
    from hwq.search.units import parse_time

    return parse_time(text)


def size(text: str, flag: str = "--max-size") -> float:
    """Size text (``8MB``) -> bytes."""
    from hwq.search.units import parse_size

    return parse_size(text)


def int_at_least(value: int | None, flag: str, lo: int, hi: int | None = None, *, why: str = "") -> int | None:
    """``value`` (None passes through) within ``[lo, hi]``."""
    if value is None:
        return None
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise UsageError(f"{flag} must be {rng}, got {value}{'; ' + why if why else ''}")
    return value


def finite_float(value: float | None, flag: str, *, lo: float = 0.0, lo_open: bool = True,
                 hi: float | None = None) -> float | None:
    """``value`` (None passes through) finite and above ``lo`` (``>=`` when ``lo_open`` is False),
    at most ``hi``; argparse's ``float`` accepts ``nan`` and ``inf``, so every float flag goes here."""
    if value is None:
        return None
    import math

    low_ok = value > lo if lo_open else value >= lo
    if not math.isfinite(value) or not low_ok or (hi is not None and value > hi):
        rng = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
        raise UsageError(f"{flag} must be a finite number {rng}, got {value:g}")
    return value


def flags_apply(args: Any, names: tuple[str, ...], why: str) -> None:
    """Raise :class:`UsageError` naming the flags of ``names`` (argparse dests) that were given
    although they do not apply (``why``: e.g. "with --network" -> "--rows only applies with
    --network"): never silently ignored."""
    given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) not in (None, False)]
    if given:
        one = len(given) == 1
        raise UsageError(f"{', '.join(given)} only appl{'ies' if one else 'y'} {why}; drop {'it' if one else 'them'}")


def path_arg(text: str) -> Path:
    """argparse ``type`` for a path: ``Path("")`` would silently mean the current folder."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path")
    return Path(text)


# ------------------------------------------------------------------------------ names
def model(name: str):
    """The recipe of a registered model or any other ``--model`` form (``torchvision:NAME``,
    ``file.py:build``, ``package.module:build``, a ``.pt2``, a Hugging Face folder; ``models.resolve``);
    ``UsageError`` listing the known names and forms otherwise."""
    from models.registry import get_recipe

    text = str(name)
    p = Path(text)
    if ":" not in text and p.is_file():  # a file given as the model: only a torch.export archive is one
        import zipfile

        if p.suffix not in (".pt2", ".py"):
            raise UsageError(f"--model {text!r} is a file but not a torch.export .pt2 program; give a .pt2 "
                             f"(torch.export.save), path/to/file.py:build, a Hugging Face folder or a model name")
        if p.suffix == ".pt2" and not zipfile.is_zipfile(p):  # torch.export.load would log its own traceback first
            raise UsageError(f"--model {text!r} is not a program saved with torch.export.save (not a zip "
                             f"archive); save one with torch.export.save(torch.export.export(m, (x,)), PATH)")
    return get_recipe(name)


# ------------------------------------------------------------------------------ input files
def input_path(path: str | os.PathLike[str], flag: str, what: str) -> Path:
    """``path`` must be an existing, readable regular file (a folder is named as such)."""
    text = os.fspath(path)
    if not text.strip():
        raise UsageError(f"{flag} is empty; give the path of {what}")
    p = Path(text)
    if p.is_dir():
        raise UsageError(f"{flag} {text!r} is a folder, not a file; give the path of {what}")
    if not p.exists() and p.is_symlink():
        raise UsageError(f"{flag} {text!r} is a broken or looping symbolic link; give the path of {what}")
    if not p.exists():
        raise UsageError(f"{flag} {text!r} does not exist; give the path of {what}")
    if not p.is_file():
        raise UsageError(f"{flag} {text!r} is not a regular file; give the path of {what}")
    if not os.access(p, os.R_OK):
        raise UsageError(f"{flag} {text!r} is not readable (permission denied)")
    return p


def text_file(path: str | os.PathLike[str], flag: str, what: str) -> str:
    """The UTF-8 text of ``path``; binary, non-UTF-8 or empty files are refused."""
    p = input_path(path, flag, what)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise UsageError(f"{flag} {str(p)!r} cannot be read ({err.strerror})") from None
    if b"\0" in data:
        raise UsageError(f"{flag} {str(p)!r} is a binary file, not {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{flag} {str(p)!r} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                         f"{err.start}); give {what}") from None
    if not text.strip():
        raise UsageError(f"{flag} {str(p)!r} is empty; give {what}")
    return text


def yaml_mapping(path: str | os.PathLike[str], flag: str, what: str) -> dict:
    """The YAML mapping in ``path`` (text checks of :func:`text_file`, then YAML syntax, then a mapping)."""
    import yaml

    text = text_file(path, flag, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{flag} {os.fspath(path)!r}: malformed YAML{where} "
                         f"({getattr(err, 'problem', None) or 'syntax error'}); fix the syntax") from None
    if not isinstance(data, dict):
        got = "nothing (only comments)" if data is None else f"a {type(data).__name__}"
        raise UsageError(f"{flag} {os.fspath(path)!r} holds {got}, not {what} (a YAML mapping of fields)")
    return data


def _looks_like_path(arg: str) -> bool:
    p = Path(arg)
    return p.exists() or p.is_symlink() or p.suffix in (".yaml", ".yml") or os.sep in arg


def spec(arg: str | None, flag: str = "--arch"):
    """An accelerator spec from a preset name or a YAML file (the file is checked first)."""
    from hwq.spec import PRESETS, load_spec

    if arg is not None and str(arg) not in PRESETS and _looks_like_path(str(arg)):
        p = Path(str(arg))
        yaml_mapping(p, flag, "an accelerator spec")
        if p.suffix not in (".yaml", ".yml"):
            raise UsageError(f"{flag} {str(arg)!r}: a spec file must end in .yaml or .yml")
    return load_spec(arg)


def space(arg: str, flag: str = "--space"):
    """A co-design space from a shipped name, ``default`` or a YAML file (the file is checked first)."""
    from hwq.codesign.space import load_space

    if Path(arg).exists() or Path(arg).is_symlink():
        yaml_mapping(arg, flag, "a design space")
    return load_space(arg)


def plan_file(path: str | os.PathLike[str], flag: str = "--plan") -> dict:
    """A plan.json (``hwq explore``'s) as a dict with a ``layers`` list."""
    text = text_file(path, flag, "a plan.json written by hwq explore")
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{flag} {os.fspath(path)!r} is not valid JSON (line {err.lineno}: {err.msg})") from None
    layers = plan.get("layers") if isinstance(plan, dict) else None
    if not isinstance(layers, list) or not all(isinstance(l, dict) and "name" in l for l in layers):
        raise UsageError(f"{flag} {os.fspath(path)!r} is not a plan: it needs a \"layers\" list of "
                         f"{{\"name\", \"format\", \"bits\", \"act_bits\"}} entries (hwq explore writes one)")
    return plan


def plan_fits_model(plan: dict, model: Any, model_name: str, flag: str = "--plan") -> None:
    """Every layer a plan names must be a module of ``model`` (a plan of another model is named as such)."""
    if not isinstance(plan.get("layers"), list):
        return  # a hwq.qfx/1 plan: its tensors are checked by the exporter
    names = {n for n, _ in model.named_modules()}
    missing = [str(l.get("name")) for l in plan["layers"] if isinstance(l, dict) and l.get("name") not in names]
    if missing:
        written = (plan.get("inputs") or {}).get("model")
        hint = f" (it was written for {written})" if written and written != model_name else ""
        raise UsageError(f"{flag} names {len(missing)} layer(s) {model_name} does not have, e.g. "
                         f"{', '.join(sorted(missing)[:3])}{hint}; give a plan of {model_name}")


def json_file(path: str | os.PathLike[str], flag: str, what: str) -> Any:
    """The JSON value in ``path`` (text checks of :func:`text_file`, then JSON syntax)."""
    text = text_file(path, flag, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{flag} {os.fspath(path)!r} is not valid JSON (line {err.lineno}: {err.msg}); "
                         f"give {what}") from None


def safetensors_input(path: str | os.PathLike[str], flag: str = "input") -> dict[str, Any]:
    """Every tensor of a safetensors file (a torch dict); unreadable files are named as such."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = input_path(path, flag, "a .safetensors file")
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0][:160]
        raise UsageError(f"{flag} {os.fspath(path)!r} is not a readable safetensors file ({first})") from None


def finite_tensors(tensors: dict[str, Any], flag: str = "input") -> None:
    """Every floating tensor must hold at least one element and only finite values."""
    import torch

    for name, t in tensors.items():
        if not t.is_floating_point():
            continue
        if t.numel() == 0:
            raise UsageError(f"{flag}: tensor {name!r} has no elements (shape {list(t.shape)}); "
                             f"remove it from the file")
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            n_nan = int(torch.isnan(t).sum())
            raise UsageError(f"{flag}: tensor {name!r} holds {n_nan} NaN and {int(bad.sum()) - n_nan} infinite "
                             f"values; hwq quantizes finite weights only")


# ------------------------------------------------------------------------------ output paths
def output_file(path: str | os.PathLike[str], flag: str) -> Path:
    """An output file: creatable, not a folder (:func:`hwq.paths.check_output_file`)."""
    from hwq.paths import check_output_file

    return check_output_file(path, flag)


def output_dir(path: str | os.PathLike[str], flag: str, kind: str) -> Path:
    """A folder hwq builds whole (:func:`hwq.paths.check_output_dir`; ``kind`` in :data:`hwq.paths.KINDS`)."""
    from hwq.paths import check_output_dir

    return check_output_dir(path, flag, kind)


def work_dir(path: str | os.PathLike[str], flag: str) -> Path:
    """A folder hwq writes into (:func:`hwq.paths.check_work_dir`)."""
    from hwq.paths import check_work_dir

    return check_work_dir(path, flag)


# ------------------------------------------------------------------------------ folders read
def calib_dir(path: str | os.PathLike[str] | None, flag: str = "--calib") -> Path | None:
    """A calibration folder: exists, is a folder (a file is named as such), readable."""
    if path is None:
        return None
    text = os.fspath(path)
    p = Path(text)
    if not text.strip():
        raise UsageError(f"{flag} is empty; give a folder of *.pt/*.npy tensors or an ImageFolder")
    if p.is_file():
        raise UsageError(f"{flag} {text!r} is a file, not a folder; put it in a folder of *.pt/*.npy tensors "
                         f"(or an ImageFolder) and pass the folder")
    if not p.is_dir():
        raise UsageError(f"{flag} {text!r} does not exist; give a folder of *.pt/*.npy tensors or an ImageFolder")
    if not os.access(p, os.R_OK | os.X_OK):
        raise UsageError(f"{flag} {text!r} is not readable (permission denied)")
    return p


def cache_dir(use_cache: bool = True) -> Path | None:
    """The sensitivity cache folder (``$HWQ_CACHE_DIR`` or ``.hwq_cache``) must be a folder when it exists."""
    if not use_cache:
        return None
    from hwq.search.sensitivity import cache_dir as sens_dir

    d = sens_dir()
    for p in (d.parent, d):
        if (p.exists() or p.is_symlink()) and not p.is_dir():
            raise UsageError(f"sensitivity cache {str(p)!r} is a file, not a folder; remove it, set "
                             f"HWQ_CACHE_DIR to a folder, or pass --no-cache")
    return d
