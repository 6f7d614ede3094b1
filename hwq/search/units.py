"""Parse budgets with SI units: ``2mJ``, ``2 mJ``, ``2000uJ``, ``0.002J``, ``5ms``, ``8MB``.

Every parser returns a plain SI float (joules, seconds, bytes). Malformed text raises
:class:`hwq.errors.UsageError` (exit code 2) with a message that shows valid examples.
"""

from __future__ import annotations

import math
import re

from hwq.errors import UsageError

#: SI prefixes accepted before J and s ("u", "µ" and "μ" all mean micro).
SI_PREFIXES: dict[str, float] = {
    "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9,
    "m": 1e-3, "u": 1e-6, "\u00b5": 1e-6, "\u03bc": 1e-6, "n": 1e-9, "p": 1e-12,
}

#: Size units in bytes: decimal (kB, MB, GB) and binary (KiB, MiB, GiB); ``b``/``bit`` are bits.
SIZE_UNITS: dict[str, float] = {
    "B": 1.0, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9,
    "KiB": 1024.0, "MiB": 1024.0 ** 2, "GiB": 1024.0 ** 3,
    "b": 1 / 8, "bit": 1 / 8, "kb": 1e3 / 8, "Mb": 1e6 / 8, "Gb": 1e9 / 8,
}

_NUMBER = r"(?P<num>[+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
_PATTERN = re.compile(rf"^\s*{_NUMBER}\s*(?P<unit>[A-Za-z\u00b5\u03bc]*)\s*$")

_EXAMPLES = {
    "J": "2mJ, 2 mJ, 2000uJ, 0.002J",
    "s": "5ms, 5 ms, 5000us, 0.005s",
    "B": "8MB, 8 MiB, 500kB, 64Mb",
}


def _split(text: str, what: str, unit: str) -> tuple[float, str]:
    m = _PATTERN.match(str(text))
    if not m and re.match(r"^\s*-\s*(?:\d|\.\d)", str(text)):
        raise UsageError(f"{what} {text!r} is negative; give a positive number and a unit, e.g. {_EXAMPLES[unit]}")
    if not m:
        raise UsageError(f"malformed {what} {text!r}: write a positive number and a unit, e.g. {_EXAMPLES[unit]}")
    value = float(m.group("num"))
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what} {text!r} must be a positive finite number, e.g. {_EXAMPLES[unit]}")
    return value, m.group("unit")


def _parse_si(text: str, unit: str, what: str) -> float:
    value, suffix = _split(text, what, unit)
    if not suffix.endswith(unit) or suffix[: -len(unit)] not in SI_PREFIXES:
        raise UsageError(f"malformed {what} {text!r}: unit must be {unit} with an optional SI prefix "
                         f"(p n u m k M G), e.g. {_EXAMPLES[unit]}")
    return _finite(value * SI_PREFIXES[suffix[: -len(unit)]], text, what, unit)


def _finite(si: float, text: str, what: str, unit: str) -> float:
    """The value in SI units must stay a finite, non-zero float (``1e308GJ`` overflows to inf)."""
    if not math.isfinite(si) or si <= 0:
        raise UsageError(f"{what} {text!r} is out of range (it is {si:g} {unit} in SI units); "
                         f"give a finite positive value, e.g. {_EXAMPLES[unit]}")
    return si


def parse_energy(text: str) -> float:
    """Energy budget text -> joules (``"2mJ"`` -> 0.002)."""
    return _parse_si(text, "J", "energy budget")


def parse_time(text: str) -> float:
    """Latency budget text -> seconds (``"5ms"`` -> 0.005)."""
    return _parse_si(text, "s", "latency budget")


def parse_size(text: str) -> float:
    """Model-size budget text -> bytes (``"8MB"`` -> 8e6, ``"8MiB"`` -> 8388608, ``"64Mb"`` -> 8e6)."""
    value, suffix = _split(text, "model size", "B")
    if suffix not in SIZE_UNITS:
        raise UsageError(f"malformed model size {text!r}: unit must be one of {', '.join(SIZE_UNITS)}, "
                         f"e.g. {_EXAMPLES['B']}")
    return _finite(value * SIZE_UNITS[suffix], text, "model size", "B")


def format_si(value: float, unit: str, digits: int = 4) -> str:
    """``0.002, "J"`` -> ``"2mJ"``: the shortest SI form with ``digits`` significant digits, no spaces."""
    if value == 0:
        return f"0{unit}"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0), ("m", 1e-3), ("u", 1e-6),
                          ("n", 1e-9), ("p", 1e-12)):
        if abs(value) >= scale * (1 - 1e-12):
            break
    text = f"{value / scale:.{digits}g}"
    return f"{text}{prefix}{unit}"
