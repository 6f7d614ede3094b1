"""Seeded stimulus for the hardware testbenches, with expected values from :mod:`hwq.golden`.

The testbenches (Amaranth unit tests and cocotb ``sim/tb_*.py``) only drive and compare;
every expected number is computed here by the golden model (:mod:`hwq.golden`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwq.datatypes import DATATYPES, Mixture, resolve
from hwq.hw.array_driver import LayerImage, pack_layer
from hwq.hw.config import ArrayConfig
from hwq.golden import decode_codes, dequant_accumulate, group_psums


def pe_groups(members: Sequence[str], *, lanes: int, act_bits: int, beats: int, seed: int,
              random_groups: int = 2) -> list[dict]:
    """Groups for a standalone PE: for every member, groups covering all its codes (special
    values included) against extreme and random activations, plus ``random_groups`` random ones.

    Each group: ``member`` index, ``x`` and ``codes`` ``[beats, lanes]``, ``expected`` psum.
    """
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    per = beats * lanes
    out = []
    for mi, name in enumerate(members):
        dt = DATATYPES[name]
        all_codes = np.arange(1 << dt.bits)
        chunks = [all_codes[i:i + per] for i in range(0, len(all_codes), per)]
        for ci, chunk in enumerate(chunks):
            codes = np.resize(chunk, per)
            if ci == 0:
                x = np.where(np.arange(per) % 2 == 0, lo, hi)  # extreme activations
            else:
                x = rng.integers(lo, hi + 1, size=per)
            out.append(_group(mi, name, x, codes, beats, lanes))
        for _ in range(random_groups):
            out.append(_group(mi, name, rng.integers(lo, hi + 1, size=per),
                              rng.integers(0, 1 << dt.bits, size=per), beats, lanes))
    return out


def _group(mi: int, name: str, x, codes, beats: int, lanes: int) -> dict:
    x = np.asarray(x, dtype=np.int64).reshape(1, -1)
    codes = np.asarray(codes, dtype=np.int64).reshape(1, -1)
    k = codes.shape[1]
    values = decode_codes(codes, np.zeros((1, 1), dtype=np.int64), k, [name])
    psum = int(group_psums(x, values, k)[0, 0, 0])
    return {"member": mi, "x": x.reshape(beats, lanes).tolist(), "codes": codes.reshape(beats, lanes).tolist(),
            "expected": psum}


def dequant_groups(*, psum_bits: int, scale_bits: int, n_outputs: int, max_groups: int, seed: int) -> list[dict]:
    """Sequences of (psum, scale) groups with extreme values first; ``expected`` = golden sum."""
    rng = np.random.default_rng(seed)
    plo, phi = -(1 << (psum_bits - 1)), (1 << (psum_bits - 1)) - 1
    smax = (1 << scale_bits) - 1
    seqs = [([plo, phi, plo], [smax, smax, 0]), ([phi], [1]), ([plo], [smax]), ([0, -1], [smax, smax])]
    while len(seqs) < n_outputs:
        g = int(rng.integers(1, max_groups + 1))
        seqs.append((rng.integers(plo, phi + 1, size=g).tolist(), rng.integers(0, smax + 1, size=g).tolist()))
    out = []
    for psums, scales in seqs:
        p = np.asarray(psums, dtype=np.int64).reshape(1, 1, -1)
        s = np.asarray(scales, dtype=np.int64).reshape(1, -1)
        out.append({"psums": list(map(int, psums)), "scales": list(map(int, scales)),
                    "expected": int(dequant_accumulate(p, s)[0, 0])})
    return out


def format_members(cfg: ArrayConfig, fmt_index: int) -> list[str]:
    """Member datatypes of ``cfg.formats[fmt_index]`` by selector."""
    entry = resolve(*cfg.formats[fmt_index])
    return list(entry.members) if isinstance(entry, Mixture) else [entry.name]


def random_layer(cfg: ArrayConfig, m: int, k: int, n: int, fmt_index: int, seed: int,
                 group_size: int | None = None, *, m_tile: int | None = None) -> tuple[LayerImage, np.ndarray]:
    """A random quantized layer on the grid of format ``fmt_index``: buffer image (run in M tiles of
    ``m_tile`` rows; None: one M tile) and golden ``Y [M, N]``."""
    rng = np.random.default_rng(seed)
    gs = group_size or cfg.group_size
    members = format_members(cfg, fmt_index)
    lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    x = rng.integers(lo, hi + 1, size=(m, k))
    x[0, :] = lo  # extreme row
    sel = rng.integers(0, len(members), size=(n, k // gs))
    scale = rng.integers(0, 1 << cfg.scale_bits, size=(n, k // gs))
    scale[0, :] = (1 << cfg.scale_bits) - 1  # extreme scales
    codes = np.zeros((n, k), dtype=np.int64)
    for nn in range(n):
        for g in range(k // gs):
            grid = DATATYPES[members[sel[nn, g]]].grid
            vals = rng.choice(grid, size=gs)
            codes[nn, g * gs:(g + 1) * gs] = [DATATYPES[members[sel[nn, g]]].encode(int(v)) for v in vals]
    return layer_from_codes(cfg, x, codes, sel, scale, gs, fmt_index, m_tile=m_tile)


def layer_from_codes(cfg: ArrayConfig, x_int, codes, selectors, scale_int, group_size: int,
                     fmt_index: int, *, m_tile: int | None = None) -> tuple[LayerImage, np.ndarray]:
    """Buffer image and golden output of a layer given as codes (QuantizedWeight fields)."""
    members = format_members(cfg, fmt_index)
    values = decode_codes(codes, selectors, group_size, members)
    expected = dequant_accumulate(group_psums(x_int, values, group_size), scale_int)
    return pack_layer(cfg, x_int, codes, selectors, scale_int, group_size, fmt_index, m_tile=m_tile), expected


def fixed_channels(cfg, *, beats: int, n_random: int, seed: int) -> list[dict]:
    """Channels for :class:`hwq.hw.fixed_datapath.FixedDatapath`: codes, and the expected output
    code from the quantizer's ``ap_fixed`` cast (:func:`hwq.quant.fixed.fixed_point_codes`) of the
    exact real result (float64 is exact here: every operand is a short dyadic rational).

    Includes exact rounding ties (BN scale 0, odd BN shifts) and overflowing channels.
    """
    import torch

    from hwq.quant.fixed import fixed_point_codes

    rng = np.random.default_rng(seed)

    def rand_codes(fmt, size):
        return rng.integers(fmt.min_code, fmt.max_code + 1, size=size)

    def khot_codes(fmt, size):
        from hwq.quant.khot import khot_fixed_codes

        raw = torch.as_tensor(rand_codes(fmt, size).astype(np.float64) * 2.0 ** -fmt.frac_bits)
        kf = type(fmt)(fmt.width, fmt.int_bits, fmt.signed, k_hot=cfg.khot)
        return khot_fixed_codes(raw, kf).numpy()

    chans = []
    for i in range(n_random + 8):
        wgen = khot_codes if cfg.khot else rand_codes
        x = rand_codes(cfg.x_fmt, (beats, cfg.lanes))
        w = wgen(cfg.w_fmt, (beats, cfg.lanes))
        bn = int(wgen(cfg.bn_fmt, ())) if i >= 8 else 0
        sh = int(rand_codes(cfg.shift_fmt, ())) if i >= 8 else (2 * i + 1) * (1 if i % 2 else -1)
        res = int(rand_codes(cfg.res_fmt, ())) if cfg.res_fmt is not None else 0
        chans.append({"x": x.tolist(), "w": np.asarray(w).tolist(), "bn_scale": bn, "bn_shift": sh, "residual": res})
    for ch in chans:
        x = np.asarray(ch["x"], dtype=np.float64) * 2.0 ** -cfg.x_fmt.frac_bits
        w = np.asarray(ch["w"], dtype=np.float64) * 2.0 ** -cfg.w_fmt.frac_bits
        y = float((x * w).sum()) * ch["bn_scale"] * 2.0 ** -cfg.bn_fmt.frac_bits \
            + ch["bn_shift"] * 2.0 ** -cfg.shift_fmt.frac_bits
        if cfg.res_fmt is not None:
            y += ch["residual"] * 2.0 ** -cfg.res_fmt.frac_bits
        if cfg.relu:
            y = max(y, 0.0)
        o = cfg.out_fmt
        ch["expected"] = int(fixed_point_codes(torch.tensor([y], dtype=torch.float64), o.width, o.int_bits,
                                               signed=o.signed, rounding=o.rounding, overflow=o.overflow)[0])
    return chans


def khot_term_values(codes, k: int) -> list:
    """``codes`` as ``k`` terms each (``hwq.quant.khot.naf_terms``): nested lists of
    {nonzero, neg, shift} dicts, the layout of the K-hot datapath's weight/BN-scale ports."""
    import torch

    from hwq.quant.khot import naf_terms

    arr = np.asarray(codes, dtype=np.int64)
    signs, shifts = naf_terms(torch.as_tensor(arr.reshape(-1)), k)
    out = [[{"nonzero": int(s != 0), "neg": int(s < 0), "shift": int(sh) if s != 0 else 0}
            for s, sh in zip(srow.tolist(), shrow.tolist())] for srow, shrow in zip(signs, shifts)]
    return np.array(out, dtype=object).reshape(arr.shape + (k,)).tolist() if arr.ndim else out[0]
