"""hwq.timing: the M-tiled cycle formula and the partial-sum access counts (the contract the RTL
co-simulations in test_hw_cosim / test_layer_cosim measure)."""

from __future__ import annotations

import math

import pytest

from hwq.timing import layer_compute_cycles, psum_row_accesses, tile_compute_cycles, tiles

KW = dict(rows=2, cols=3, lanes=4, term_slots=2, bits_per_cycle=2)


def test_one_m_tile_is_the_old_formula() -> None:
    for m, k, n in ((1, 1, 1), (7, 20, 5), (16, 8, 3)):
        old = math.ceil(k / 8) * math.ceil(n / 3) * tile_compute_cycles(m, 2, 2, 2)
        assert layer_compute_cycles(m, k, n, **KW) == old
        assert layer_compute_cycles(m, k, n, **KW, m_tile=m) == old
        assert layer_compute_cycles(m, k, n, **KW, m_tile=m + 5) == old


def test_m_tiles_cost_one_load_and_drain_each() -> None:
    # 10 rows in M tiles of 4: (4, 4, 2), per (n, k) step
    k_tiles, n_tiles = tiles(20, 5, rows=2, cols=3, lanes=4)
    assert (k_tiles, n_tiles) == (3, 2)
    want = k_tiles * n_tiles * (2 * tile_compute_cycles(4, 2, 2, 2) + tile_compute_cycles(2, 2, 2, 2))
    assert layer_compute_cycles(10, 20, 5, **KW, m_tile=4) == want
    # = the sum of one-M-tile runs (what the cost model's m-tiled mappings add up)
    runs = 2 * layer_compute_cycles(4, 20, 5, **KW) + layer_compute_cycles(2, 20, 5, **KW)
    assert layer_compute_cycles(10, 20, 5, **KW, m_tile=4) == runs
    # each extra M tile adds exactly rows + I + pipeline cycles per (n, k) step
    one = layer_compute_cycles(8, 20, 5, **KW)
    two = layer_compute_cycles(8, 20, 5, **KW, m_tile=4)
    assert two - one == k_tiles * n_tiles * (tile_compute_cycles(4, 2, 2, 2) * 2 - tile_compute_cycles(8, 2, 2, 2))
    assert two > one
    with pytest.raises(ValueError):
        layer_compute_cycles(8, 20, 5, **KW, m_tile=0)


def test_psum_row_accesses() -> None:
    assert psum_row_accesses(10, 3, 2, elide=False) == (60, 60)
    assert psum_row_accesses(10, 3, 2, elide=True) == (40, 40)
    assert psum_row_accesses(7, 1, 4, elide=True) == (0, 0)  # one K tile never touches the memory
    assert psum_row_accesses(7, 1, 4, elide=False) == (28, 28)
    with pytest.raises(ValueError):
        psum_row_accesses(7, 0, 4, elide=True)
