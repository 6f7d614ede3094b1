"""Cut a small GEMM tile out of a lowered layer for co-simulation.

A tile is ``x_int [m, k]`` against weights ``[n, k]`` with their group metadata. Its
window starts at reduction index 0 and output channel 0 of the layer (group aligned) and
may end mid-group: the golden model then sees the tile zero-padded to whole groups, which
leaves every output unchanged because the padded activations are 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GemmTile:
    """Integer operands of one co-simulated tile (numpy int64 arrays).

    Attributes:
        x_int: ``[m, k]`` signed activation codes.
        row_index: ``[m]`` which GEMM rows (output pixels / tokens) of the layer they are.
        codes: ``[n, k]`` weight codes (bit patterns).
        selectors: ``[n, G]`` mixture member per group (``G = ceil(k / group_size)``).
        scale_int: ``[n, G]`` unsigned per-group integer scales.
        zero_point: ``[n, G]`` asymmetric-INT zero points (zeros otherwise).
        group_size: weights per group along k.
        datatypes: member datatype names by selector.
        fmt, bits, scale_bits: the weight format of the layer.
    """

    x_int: np.ndarray
    row_index: np.ndarray
    codes: np.ndarray
    selectors: np.ndarray
    scale_int: np.ndarray
    zero_point: np.ndarray
    group_size: int
    datatypes: tuple[str, ...]
    fmt: str
    bits: int
    scale_bits: int

    @property
    def per_row(self) -> bool:
        """One group (and scale) per output row covering the whole tile."""
        return self.scale_int.shape[1] == 1 and self.group_size == self.k

    @property
    def m(self) -> int:
        return int(self.x_int.shape[0])

    @property
    def k(self) -> int:
        return int(self.x_int.shape[1])

    @property
    def n(self) -> int:
        return int(self.codes.shape[0])

    def padded(self) -> tuple[np.ndarray, Any]:
        """``(x_int [m, G*gs], QuantizedWeight [n, G*gs])`` zero-padded to whole groups (for ``hwq.golden``)."""
        import torch

        from hwq.datatypes import DATATYPES
        from hwq.quant.weights import QuantizedWeight

        gs = self.group_size
        k_pad = self.scale_int.shape[1] * gs
        x = np.zeros((self.m, k_pad), dtype=np.int64)
        x[:, : self.k] = self.x_int
        zero_code = DATATYPES[self.datatypes[0]].encode(0) if self.fmt != "int_asym" else 0
        codes = np.full((self.n, k_pad), zero_code, dtype=np.int64)
        codes[:, : self.k] = self.codes
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        qw = QuantizedWeight(t(codes), t(self.selectors), t(self.scale_int), torch.ones(self.n, dtype=torch.float64),
                             t(self.zero_point), self.fmt, self.bits, gs, self.datatypes, (self.n, k_pad),
                             self.scale_bits)
        return x, qw

    def expected(self) -> np.ndarray:
        """Golden integer outputs ``[m, n]`` (``hwq.golden.linear_int``: decode, group psums, dequantize)."""
        from hwq.golden import linear_int

        x, qw = self.padded()
        return linear_int(x, qw)

    def weight_values(self) -> np.ndarray:
        """Decoded integer weight values ``[n, k]`` (for mismatch reports)."""
        from hwq.golden import decode_codes

        x, qw = self.padded()
        zp = np.asarray(qw.zero_point) if self.fmt == "int_asym" else None
        vals = decode_codes(np.asarray(qw.codes), np.asarray(qw.selectors), self.group_size, self.datatypes, zp)
        return vals[:, : self.k]


def pick_rows(x_int: np.ndarray, m: int) -> np.ndarray:
    """Indices of ``m`` rows spread evenly over ``x_int``, preferring rows with nonzero entries."""
    nonzero = np.flatnonzero(np.abs(x_int).sum(axis=1) > 0)
    pool = nonzero if nonzero.size >= m else np.arange(x_int.shape[0])
    m = min(m, pool.size)
    return pool[np.linspace(0, pool.size - 1, m).round().astype(np.int64)]


def pick_rows_per_image(x_int: np.ndarray, images: int, m: int) -> np.ndarray:
    """``m`` rows of each of ``images`` equal consecutive blocks of ``x_int`` (one block per image of a
    batch; :func:`pick_rows` within each), image-major: a batch tile's M rows."""
    per = x_int.shape[0] // images
    return np.concatenate([i * per + pick_rows(x_int[i * per:(i + 1) * per], m) for i in range(images)])


def cut_tile(x_rows: Any, qw: Any, *, m: int, k: int, n: int, images: int = 1) -> GemmTile:
    """The tile of ``m`` rows of ``x_rows`` ``[M, K]`` (int codes), reduction ``[0, k)``, outputs ``[0, n)``.

    ``qw`` is the layer's :class:`hwq.quant.QuantizedWeight` (conv weights flattened to
    ``[N, K]``). ``k`` and ``n`` are clipped to the layer. ``images > 1``: ``x_rows`` holds that many
    images' GEMM rows one after another and the tile takes ``m`` rows of each (``images * m`` in all).
    """
    codes_all = np.asarray(qw.codes)
    n_all, k_all = codes_all.shape
    k, n = min(k, k_all), min(n, n_all)
    x_win = np.asarray(x_rows)[:, :k].astype(np.int64)
    rows = pick_rows(x_win, m) if images == 1 else pick_rows_per_image(x_win, images, m)
    group_size = int(qw.group_size)
    if np.asarray(qw.scale_int).shape[1] == 1:
        group_size = k  # one group per row: the tile's row is its one group
    g = math.ceil(k / group_size)
    return GemmTile(
        x_int=np.ascontiguousarray(x_win[rows]),
        row_index=rows,
        codes=np.ascontiguousarray(codes_all[:n, :k]).astype(np.int64),
        selectors=np.asarray(qw.selectors)[:n, :g].astype(np.int64),
        scale_int=np.asarray(qw.scale_int)[:n, :g].astype(np.int64),
        zero_point=np.asarray(qw.zero_point)[:n, :g].astype(np.int64),
        group_size=group_size,
        datatypes=tuple(qw.datatypes),
        fmt=qw.fmt,
        bits=int(qw.bits),
        scale_bits=int(qw.scale_bits),
    )
