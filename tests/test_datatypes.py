"""The datatype table: codes, terms and specials are consistent, and no grid is written elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hwq.datatypes import DATATYPES, MIXTURES, resolve

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("hwq", "models", "sim")


@pytest.mark.parametrize("name", sorted(DATATYPES))
def test_decode_encode_terms_round_trip(name: str) -> None:
    dt = DATATYPES[name]
    assert len(dt.decode) == 2 ** dt.bits
    assert list(dt.grid) == sorted(set(dt.grid)) and set(dt.grid) <= set(dt.decode)
    for v in dt.grid:
        assert dt.decode[dt.encode(v)] == v
    for code, v in enumerate(dt.decode):
        assert dt.decode[dt.encode(v)] == v
        terms = dt.terms(v)
        assert len(terms) <= dt.term_slots, (name, v, terms)
        assert sum((-1) ** neg * 2 ** shift for neg, shift in terms) == v, (name, v, terms)
    table = dt.term_slot_table()
    assert all(len(row) == dt.term_slots for row in table)
    for code, row in enumerate(table):
        assert sum((-1) ** t[0] * 2 ** t[1] for t in row if t is not None) == dt.decode[code]


def test_int_grids_are_symmetric_and_never_emit_most_negative() -> None:
    for name, dt in DATATYPES.items():
        if dt.family == "int":
            assert dt.grid == tuple(-v for v in reversed(dt.grid)) and -(2 ** (dt.bits - 1)) not in dt.grid


@pytest.mark.parametrize("mixture", ["bitmod3", "bitmod4"])
def test_bitmod_specials_replace_negative_zero(mixture: str) -> None:
    mix = MIXTURES[mixture]
    base = DATATYPES[f"fp{mix.bits}"]
    neg_zero = 1 << (mix.bits - 1)
    assert base.decode[neg_zero] == 0 and base.special is None
    mags = sorted({abs(v) for v in base.grid})
    for member in mix.members:
        dt = DATATYPES[member]
        assert dt.special is not None and dt.decode[neg_zero] == dt.special
        assert set(dt.grid) == set(base.grid) | {dt.special} and dt.special not in base.grid
        assert list(dt.decode[:neg_zero]) == list(base.decode[:neg_zero])  # only the -0 pattern changes
        assert dt.frac_bits == base.frac_bits
        if "_er_" in member:  # extra resolution: falls between two existing magnitudes
            assert mags[0] < abs(dt.special) < mags[-1]
        else:  # extra asymmetry: beyond the largest magnitude
            assert abs(dt.special) > mags[-1]
        assert (dt.special > 0) == member.endswith("_pos")


def test_mixtures_are_consistent() -> None:
    for mix in MIXTURES.values():
        dts = [DATATYPES[m] for m in mix.members]
        assert {d.bits for d in dts} == {mix.bits} and len({d.frac_bits for d in dts}) == 1
        assert len(mix.members) <= 2 ** mix.selector_bits
        assert resolve(mix.name[:-1], mix.bits) is mix


# ----------------------------------------------------------------------------------------
# No grid literal outside hwq/datatypes.py
# ----------------------------------------------------------------------------------------
def _forbidden() -> dict[frozenset, str]:
    """Value sets of the FP/FLINT/BitMoD grids (integer and real units, full and magnitudes)."""
    out: dict[frozenset, str] = {}
    for name, dt in DATATYPES.items():
        if dt.family not in ("fp", "flint", "bitmod"):
            continue
        scale = 2.0 ** -dt.frac_bits
        mags = sorted({abs(v) for v in dt.grid})
        for vals in (dt.grid, mags, [m for m in mags if m]):
            if len(set(vals)) < 4:
                continue
            out[frozenset(vals)] = name
            out[frozenset(v * scale for v in vals)] = name
    return out


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    return None


def grid_literals(source: str, forbidden: dict[frozenset, str]) -> list[tuple[int, str]]:
    """(line, datatype) of every tuple/list/set literal of numbers equal (as a set) to a table grid."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 4:
            nums = [_number(e) for e in node.elts]
            if None not in nums and frozenset(nums) in forbidden:
                hits.append((node.lineno, forbidden[frozenset(nums)]))
    return hits


def test_scanner_catches_a_grid_literal() -> None:
    fb = _forbidden()
    fp4 = DATATYPES["fp4"]
    mags = sorted({abs(v) for v in fp4.grid})
    literal = "x = (" + ", ".join(str(m) for m in mags) + ")\ny = [" + ", ".join(str(m / 2) for m in mags) + "]\n"
    assert [line for line, _ in grid_literals(literal, fb)] == [1, 2]
    assert grid_literals("z = (0, 1, 2, 3)\n", fb) == []


def test_no_grid_literal_outside_the_table() -> None:
    fb = _forbidden()
    offenders = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == ROOT / "hwq" / "datatypes.py" or ".venv" in path.parts:
                continue
            for line, name in grid_literals(path.read_text(encoding="utf-8"), fb):
                offenders.append(f"{path.relative_to(ROOT)}:{line} writes the {name} grid")
    assert not offenders, "read grids from hwq.datatypes instead:\n" + "\n".join(offenders)


def test_report_splice_touches_only_the_minilm_markers() -> None:
    from hwq.reports.datatypes_minilm import BEGIN, END, QFX_BEGIN, QFX_END, splice

    fresh = splice(None, "A")
    assert BEGIN in fresh and END in fresh and QFX_BEGIN in fresh and QFX_END in fresh
    other = fresh.replace(f"{QFX_BEGIN}\n{QFX_END}", f"{QFX_BEGIN}\nqfx text\n{QFX_END}")
    again = splice(other, "B")
    assert "qfx text" in again and "\nB\n" in again and "\nA\n" not in again
    assert splice(again, "B") == again
