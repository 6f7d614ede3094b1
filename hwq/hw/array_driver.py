"""Host side of the PE array: pack a layer into buffer words, unpack the output stream.

Pure Python/numpy (no simulator): the cocotb testbench ``sim/tb_array.py``, the Amaranth
unit tests and :func:`hwq.hw.array_sim.run_array_layer` all use these, so the buffer
format is defined once (see :mod:`hwq.hw.array` for what each word means).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from hwq.hw.config import ArrayConfig


@dataclass(frozen=True)
class LayerImage:
    """Everything one array run needs: buffer words (unsigned ints) and the run config.

    ``m_tile``: rows per M tile (``cfg.m_tile`` of the run; ``m`` or 0 is one M tile of all rows).
    """

    x_words: list[int]
    w_words: list[int]
    m: int
    k: int
    n: int
    k_tiles: int
    n_tiles: int
    fmt: int
    m_tile: int = 0

    @property
    def m_tile_rows(self) -> int:
        """Rows per full M tile (``m`` for one M tile)."""
        return self.m if self.m_tile <= 0 or self.m_tile >= self.m else self.m_tile

    @property
    def m_tiles(self) -> int:
        """Number of M tiles of the run (the last one ragged)."""
        return math.ceil(self.m / self.m_tile_rows)

    def to_json(self) -> dict:
        d = asdict(self)
        d["x_words"] = [str(v) for v in self.x_words]  # may exceed 64 bits
        d["w_words"] = [str(v) for v in self.w_words]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "LayerImage":
        d = dict(d)
        d["x_words"] = [int(v) for v in d["x_words"]]
        d["w_words"] = [int(v) for v in d["w_words"]]
        return cls(**d)


def _pack(values, width: int) -> int:
    word, mask = 0, (1 << width) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * width)
    return word


def pack_layer(cfg: ArrayConfig, x_int, codes, selectors, scale_int, group_size: int,
               fmt_index: int = 0, *, m_tile: int | None = None) -> LayerImage:
    """Buffer image of ``Y = X[M, K] . W[N, K]^T`` with per-group selectors/scales ``[N, G]``.

    ``codes`` are the weight codes of format ``cfg.formats[fmt_index]`` (``selectors`` index its
    mixture members, 0 for single formats); ``group_size`` must be the array's (or, for a
    per-row scale, ``K``: then every tile of a column uses the row's scale). ``m_tile``: rows per
    M tile (at most ``cfg.out_depth``; None: one M tile, then ``M <= cfg.out_depth``). The
    activation buffer holds all ``k_tiles * M`` words of the layer either way.
    """
    x = np.asarray(x_int, dtype=np.int64)
    w = np.asarray(codes, dtype=np.int64)
    sel = np.asarray(selectors, dtype=np.int64)
    sc = np.asarray(scale_int, dtype=np.int64)
    m, k = x.shape
    n, k2 = w.shape
    if k != k2:
        raise ValueError(f"x has K={k} but weights K={k2}")
    if m_tile is not None and m_tile < 1:
        raise ValueError(f"m_tile must be >= 1, got {m_tile}")
    rows_per_mt = m if m_tile is None else min(m_tile, m)
    if rows_per_mt > cfg.out_depth:
        raise ValueError(f"M tile of {rows_per_mt} rows exceeds the accumulator memory ({cfg.out_depth} rows); "
                         "give a smaller m_tile")
    if not 0 <= fmt_index < len(cfg.formats):
        raise ValueError(f"fmt_index {fmt_index} out of range for {len(cfg.formats)} formats")
    if group_size != k and group_size != cfg.group_size:
        raise ValueError(f"group_size {group_size} is neither the array's ({cfg.group_size}) nor K={k}")
    if (sc < 0).any() or (sc >= (1 << cfg.scale_bits)).any():
        raise ValueError(f"scale_int must be unsigned {cfg.scale_bits}-bit")
    kt_n, nt_n = math.ceil(k / cfg.tile_k), math.ceil(n / cfg.cols)
    if kt_n * m > cfg.x_depth or kt_n * nt_n * cfg.rows > cfg.w_depth:
        raise ValueError(f"layer M={m} K={k} N={n} does not fit the buffers "
                         f"(x_depth={cfg.x_depth}, w_depth={cfg.w_depth})")
    kp, np_ = kt_n * cfg.tile_k, nt_n * cfg.cols
    xp = np.zeros((m, kp), dtype=np.int64)
    xp[:, :k] = x
    wp = np.zeros((np_, kp), dtype=np.int64)
    wp[:n, :k] = w
    x_words = [_pack(xp[mi, kt * cfg.tile_k:(kt + 1) * cfg.tile_k], cfg.act_bits)
               for kt in range(kt_n) for mi in range(m)]
    cb, sb, scb = cfg.code_bits, cfg.selector_bits, cfg.scale_bits
    col_w = cfg.lanes * cb + sb + scb
    w_words = []
    for nt in range(nt_n):
        for kt in range(kt_n):
            for r in range(cfg.rows):
                k0 = kt * cfg.tile_k + r * cfg.lanes
                g = k0 // group_size
                word = 0
                for c in range(cfg.cols):
                    nn = nt * cfg.cols + c
                    col = _pack(wp[nn, k0:k0 + cfg.lanes], cb)
                    if nn < n and k0 < k:
                        col |= (int(sel[nn, g]) << (cfg.lanes * cb)) | (int(sc[nn, g]) << (cfg.lanes * cb + sb))
                    word |= col << (c * col_w)
                w_words.append(word)
    return LayerImage(x_words, w_words, m, k, n, kt_n, nt_n, fmt_index, rows_per_mt)


def unpack_outputs(cfg: ArrayConfig, image: LayerImage, out_words: list[int]) -> np.ndarray:
    """``Y [M, N]`` (int64) from the output stream words, in order (nt-major, then m: the M tiles of
    an n tile leave one after another, each in row order)."""
    expected = image.n_tiles * image.m
    if len(out_words) != expected:
        raise ValueError(f"expected {expected} output words, got {len(out_words)}")
    y = np.zeros((image.m, image.n_tiles * cfg.cols), dtype=np.int64)
    mask, half = (1 << cfg.acc_bits) - 1, 1 << (cfg.acc_bits - 1)
    for i, word in enumerate(out_words):
        nt, mi = divmod(i, image.m)
        for c in range(cfg.cols):
            v = (int(word) >> (c * cfg.acc_bits)) & mask
            y[mi, nt * cfg.cols + c] = v - (1 << cfg.acc_bits) if v & half else v
    return y[:, :image.n]


def expected_cycles(cfg: ArrayConfig, image: LayerImage) -> int:
    """What :func:`hwq.timing.layer_compute_cycles` predicts for this run."""
    from hwq.timing import layer_compute_cycles

    return layer_compute_cycles(image.m, image.k, image.n, rows=cfg.rows, cols=cfg.cols, lanes=cfg.lanes,
                                term_slots=cfg.term_slots(image.fmt), bits_per_cycle=cfg.bpc,
                                m_tile=image.m_tile_rows)


def expected_psum_accesses(cfg: ArrayConfig, image: LayerImage) -> tuple[int, int]:
    """``(reads, writes)`` of ``o_mem`` rows that :func:`hwq.timing.psum_row_accesses` predicts for this run."""
    from hwq.timing import psum_row_accesses

    return psum_row_accesses(image.m, image.k_tiles, image.n_tiles, elide=cfg.psum_elide)


def cfg_word(cfg: ArrayConfig, image: LayerImage) -> int:
    """The ``cfg`` port value (:func:`hwq.hw.array.run_layout`) that starts ``image``'s run."""
    from hwq.hw.array import run_layout

    layout = run_layout(cfg)
    fields = {"m": image.m, "k_tiles": image.k_tiles, "n_tiles": image.n_tiles, "fmt": image.fmt,
              "m_tile": image.m_tile_rows}
    return int(layout.const(fields).as_value().value)
