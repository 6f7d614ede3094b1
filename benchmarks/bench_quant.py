"""Speed of the weight quantizer on real weights: BitMoD 4-bit vs INT 4-bit (baseline, same run).

Run: ``.venv/bin/python benchmarks/bench_quant.py [--repeats N]``. Quantizes every encoder
linear weight of all-MiniLM-L6-v2 (36 matrices) at
group 128 and prints the best-of-N wall time of each format and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _seconds(weights: list, fmt: str, bits: int) -> float:
    from hwq.quant import quantize_weight_codes

    t0 = time.perf_counter()
    for w in weights:
        quantize_weight_codes(w, fmt, bits, group_size=128)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per format, interleaved (best is kept)")
    args = parser.parse_args(argv)
    import torch

    from models.minilm import linear_layer_names, load_minilm

    torch.set_grad_enabled(False)
    model = load_minilm()
    mods = dict(model.named_modules())
    weights = [mods[n].weight.detach() for n in linear_layer_names(model)]
    n_weights = sum(w.numel() for w in weights)
    _seconds(weights[:2], "int", 4), _seconds(weights[:2], "bitmod", 4)  # warm-up (lazy tables, allocator)
    base = mix = float("inf")
    for _ in range(args.repeats):  # interleaved, so load from other processes hits both alike
        base = min(base, _seconds(weights, "int", 4))
        mix = min(mix, _seconds(weights, "bitmod", 4))
    print(f"MiniLM-L6 encoder linear weights: {len(weights)} matrices, {n_weights / 1e6:.2f} M weights, group 128, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats}")
    print(f"int4   (baseline): {base:.3f} s  ({n_weights / base / 1e6:.1f} M weights/s)")
    print(f"bitmod4          : {mix:.3f} s  ({n_weights / mix / 1e6:.1f} M weights/s)")
    print(f"ratio bitmod4 / int4: {mix / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
