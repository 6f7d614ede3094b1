"""Budget parsing: SI units in, SI floats out; malformed text is a UsageError (exit 2)."""

from __future__ import annotations

import pytest

from hwq.errors import UsageError
from hwq.search.units import format_si, parse_energy, parse_size, parse_time


@pytest.mark.parametrize("text, joules", [
    ("2mJ", 2e-3), ("2 mJ", 2e-3), ("2000uJ", 2e-3), ("2000\u00b5J", 2e-3), ("0.002J", 2e-3),
    ("1.5e-3J", 1.5e-3), (" 3nJ ", 3e-9), ("500pJ", 5e-10), ("1kJ", 1e3), (".5mJ", 5e-4),
])
def test_energy(text, joules):
    assert parse_energy(text) == pytest.approx(joules, rel=1e-12)


@pytest.mark.parametrize("text, seconds", [("5ms", 5e-3), ("5 ms", 5e-3), ("5000us", 5e-3), ("0.1s", 0.1),
                                           ("20ns", 2e-8)])
def test_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize("text, nbytes", [("8MB", 8e6), ("8 MB", 8e6), ("8MiB", 8 * 2**20), ("500kB", 5e5),
                                          ("64Mb", 8e6), ("1GB", 1e9), ("100B", 100.0)])
def test_size(text, nbytes):
    assert parse_size(text) == pytest.approx(nbytes, rel=1e-12)


@pytest.mark.parametrize("text", ["", "mJ", "2", "2 m J", "2mj", "2xJ", "-2mJ", "0mJ", "2mJJ", "2ms", "abc",
                                  "1e999J", "nanJ"])
def test_malformed_energy(text):
    with pytest.raises(UsageError, match="energy budget"):
        parse_energy(text)


@pytest.mark.parametrize("text", ["5", "5mJ", "5 sec", "-1ms"])
def test_malformed_time(text):
    with pytest.raises(UsageError):
        parse_time(text)


@pytest.mark.parametrize("text", ["8", "8M", "8 megabytes", "8mB"])
def test_malformed_size(text):
    with pytest.raises(UsageError):
        parse_size(text)


@pytest.mark.parametrize("value, unit, text", [(2e-3, "J", "2mJ"), (1.5e-6, "J", "1.5uJ"), (0.1, "s", "100ms"),
                                               (3.0, "J", "3J"), (2.5e9, "J", "2.5GJ")])
def test_format_si_roundtrip(value, unit, text):
    assert format_si(value, unit) == text
    if unit == "J":
        assert parse_energy(text) == pytest.approx(value)
