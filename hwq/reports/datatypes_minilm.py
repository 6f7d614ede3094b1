"""MiniLM weight-datatype study: per-layer MSE/SQNR and sentence-embedding cosine per format.

Regenerate with::

    python -m hwq.reports.datatypes_minilm            # writes reports/datatypes.md (MiniLM section)
                                                      # and reports/datatypes_minilm.png

Only the text between ``<!-- minilm:begin -->`` and ``<!-- minilm:end -->`` of
``reports/datatypes.md`` is rewritten (the QFX section has its own markers).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwq.atomic import save_figure, write_text

BEGIN, END = "<!-- minilm:begin -->", "<!-- minilm:end -->"
QFX_BEGIN, QFX_END = "<!-- qfx:begin -->", "<!-- qfx:end -->"
COMMAND = "python -m hwq.reports.datatypes_minilm"
#: (format, bits) studied; mx only has a 4-bit (MXFP4) variant at these widths.
FORMATS: tuple[tuple[str, int], ...] = (("int", 3), ("int_asym", 3), ("fp", 3), ("ant", 3), ("bitmod", 3),
                                        ("int", 4), ("int_asym", 4), ("fp", 4), ("ant", 4), ("bitmod", 4),
                                        ("mx", 4))
GROUP_SIZE = 128
#: Formats also measured with BitMoD's reference float per-group scales (``scales="float"``).
FLOAT_SCALE_FORMATS: tuple[str, ...] = ("int", "fp", "ant", "bitmod")


@dataclass
class Study:
    """Results: ``mse[fmt_key][layer]``, ``sqnr_db[fmt_key][layer]``, ``cosine[fmt_key]``."""

    layers: list[str]
    n_sentences: int
    mse: dict[str, list[float]] = field(default_factory=dict)
    sqnr_db: dict[str, list[float]] = field(default_factory=dict)
    cosine: dict[str, float] = field(default_factory=dict)
    #: the same with float per-group scales (BitMoD reference mode), for FLOAT_SCALE_FORMATS
    mse_float: dict[str, list[float]] = field(default_factory=dict)
    cosine_float: dict[str, float] = field(default_factory=dict)
    #: fraction of weights whose integer-scale value differs from the float-scale (reference) one
    differ_float: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def key(fmt: str, bits: int) -> str:
    return f"{fmt}{bits}"


def run_study(formats: tuple[tuple[str, int], ...] = FORMATS, group_size: int = GROUP_SIZE) -> Study:
    """Quantize every encoder linear weight of all-MiniLM-L6-v2 per format; measure errors and cosine."""
    import torch

    from hwq.quant import LayerPrecision, quantize_model, weight_error
    from models.minilm import SENTENCES, embed, embedding_cosine, linear_layer_names, load_minilm

    t0 = time.perf_counter()
    torch.set_grad_enabled(False)
    model = load_minilm()
    layers = linear_layer_names(model)
    ref = embed(model, SENTENCES)
    study = Study(layers, len(SENTENCES))
    mods = dict(model.named_modules())
    for fmt, bits in formats:
        k = key(fmt, bits)
        plan = {name: LayerPrecision(fmt, bits, None, group_size) for name in layers}
        qmodel = quantize_model(model, plan)
        study.cosine[k] = embedding_cosine(qmodel, ref, SENTENCES)
        qmods = dict(qmodel.named_modules())
        study.mse[k], study.sqnr_db[k] = [], []
        for name in layers:  # the weights the embeddings just used (cached in the modules)
            mse, sqnr = weight_error(mods[name].weight, qmods[name].quantized_weight())
            study.mse[k].append(mse)
            study.sqnr_db[k].append(sqnr)
        if fmt in FLOAT_SCALE_FORMATS:
            _float_scale_variant(study, model, mods, qmods, layers, ref, fmt, bits, group_size)
    study.seconds = time.perf_counter() - t0
    return study


def _float_scale_variant(study: Study, model, mods: dict, qmods: dict, layers: list[str], ref, fmt: str, bits: int,
                         group_size: int) -> None:
    """Weights quantized with float per-group scales (BitMoD's reference quantizer): MSE, cosine, differences."""
    import copy

    import torch

    from hwq.quant import quantize_weight, weight_error
    from models.minilm import SENTENCES, embedding_cosine

    k = key(fmt, bits)
    fmodel = copy.deepcopy(model)
    fmods = dict(fmodel.named_modules())
    study.mse_float[k] = []
    differ = total = 0
    for name in layers:
        w = mods[name].weight.detach()
        wf = quantize_weight(w, fmt, bits, group_size=group_size, scales="float")
        fmods[name].weight.data.copy_(wf)
        study.mse_float[k].append(weight_error(w, wf)[0])
        differ += int((wf != qmods[name].quantized_weight().to(wf.dtype)).sum())
        total += w.numel()
    with torch.no_grad():
        study.cosine_float[k] = embedding_cosine(fmodel, ref, SENTENCES)
    study.differ_float[k] = differ / total


def _mean(v: list[float]) -> float:
    return sum(v) / len(v)


def _claim(study: Study, bits: int) -> str:
    """Whether the BitMoD mixture beats INT and ANT at ``bits``, from the numbers."""
    b, i, a = key("bitmod", bits), key("int", bits), key("ant", bits)
    wins = sum(1 for x, y, z in zip(study.sqnr_db[b], study.sqnr_db[i], study.sqnr_db[a]) if x > y and x > z)
    n = len(study.layers)
    sq = {k: _mean(study.sqnr_db[k]) for k in (b, i, a)}
    cos = {k: study.cosine[k] for k in (b, i, a)}
    holds_sqnr = sq[b] > sq[i] and sq[b] > sq[a]
    holds_cos = cos[b] > cos[i] and cos[b] > cos[a]
    verdict = "holds" if holds_sqnr and holds_cos and wins == n else (
        "holds on average" if holds_sqnr and holds_cos else "does not hold")
    return (f"**{bits}-bit: the claim {verdict}.** Mean SQNR bitmod{bits} {sq[b]:.2f} dB vs int{bits} "
            f"{sq[i]:.2f} dB and ant{bits} {sq[a]:.2f} dB; bitmod{bits} has the highest SQNR of the three on "
            f"{wins}/{n} layers; embedding cosine {cos[b]:.4f} vs {cos[i]:.4f} (int) and {cos[a]:.4f} (ant).")


def render_markdown(study: Study, plot_name: str) -> str:
    """The MiniLM section (between the markers)."""
    from hwq.datatypes import GROUP_META_BITS, MIXTURES

    keys = list(study.mse)
    lines = [
        "## MiniLM (all-MiniLM-L6-v2): weight datatypes",
        "",
        f"Regenerate: `{COMMAND}` (CPU; this run took {math.ceil(study.seconds)} s wall). Weights of all "
        f"{len(study.layers)} encoder linear layers quantized (group {GROUP_SIZE} along the input axis; MX: "
        "shared power-of-two exponent per 32 values), activations in float. Scales are the hardware ones: "
        f"an unsigned integer per group ({GROUP_META_BITS} bits single formats, {MIXTURES['bitmod4'].scale_bits} bits "
        f"BitMoD, {MIXTURES['ant4'].scale_bits} bits ANT) times a float per "
        "row; int_asym also stores a zero point per group (bits more metadata than the others). "
        "SQNR = 10 log10(mean w^2 / MSE). Cosine = mean cosine similarity of the mean-pooled, "
        f"normalised sentence embeddings against FP32 on {study.n_sentences} fixed sentences "
        "(`models/minilm.py: SENTENCES`), all layers quantized at once.",
        "",
        "| format | mean MSE | mean SQNR dB | min SQNR dB | max SQNR dB | embedding cosine |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k in keys:
        s = study.sqnr_db[k]
        lines.append(f"| {k} | {_mean(study.mse[k]):.3e} | {_mean(s):.2f} | {min(s):.2f} | {max(s):.2f} | "
                     f"{study.cosine[k]:.4f} |")
    fkeys = [k for k in keys if k in study.mse_float]
    if fkeys:
        lines += ["", "### Cost of integer scales (hardware) vs BitMoD's reference float scales", "",
                  "The table above uses the hardware's scales (unsigned integer per group times a float per row). "
                  "BitMoD's reference quantizer keeps a float absmax scale per group "
                  "(`quantize_weight(..., scales=\"float\")`; it matches an independent float32 reference "
                  "implementation on every MiniLM weight: `tests/test_bitmod_reference.py`). Same layers, same "
                  "sentences; MSE is the mean over layers. Cost = integer-scale minus float-scale figure "
                  "(MSE as a relative change, cosine as a difference; positive MSE / negative cosine means "
                  "the integer scales cost quality).", "",
                  "| format | MSE float scales | MSE integer scales | integer-scale MSE cost | cosine float scales | "
                  "cosine integer scales | integer-scale cosine cost | weights that differ |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for k in fkeys:
            mf, mi = _mean(study.mse_float[k]), _mean(study.mse[k])
            cf, ci = study.cosine_float[k], study.cosine[k]
            lines.append(f"| {k} | {mf:.4e} | {mi:.4e} | {100 * (mi / mf - 1):+.2f} % | {cf:.4f} | {ci:.4f} | "
                         f"{ci - cf:+.4f} | {100 * study.differ_float[k]:.1f} % |")
    lines += ["", "BitMoD's claim (the per-group mixture beats INT and ANT at equal bits):", ""]
    for bits in sorted({int(k[-1]) for k in keys}):
        if all(key(f, bits) in study.sqnr_db for f in ("bitmod", "int", "ant")):
            lines.append(f"- {_claim(study, bits)}")
    lines += ["", f"![SQNR and cosine per format]({plot_name})", "",
              "<details><summary>Per-layer SQNR (dB)</summary>", "",
              "| layer | " + " | ".join(keys) + " |", "| --- |" + " ---: |" * len(keys)]
    for li, name in enumerate(study.layers):
        short = (name.replace("encoder.layer.", "L").replace(".attention.self.", ".")
                 .replace(".attention.output.dense", ".attn_out").replace(".intermediate.dense", ".ffn_in")
                 .replace(".output.dense", ".ffn_out"))
        lines.append(f"| {short} | " + " | ".join(f"{study.sqnr_db[k][li]:.2f}" for k in keys) + " |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def plot(study: Study, path: Path) -> None:
    """Bar charts: mean SQNR per format, and embedding cosine per format (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(study.mse)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    colors = ["tab:red" if k.startswith("bitmod") else "tab:blue" if k.endswith("3") else "tab:green" for k in keys]
    ax1.bar(keys, [_mean(study.sqnr_db[k]) for k in keys], color=colors)
    ax1.set_ylabel("mean SQNR over layers (dB)")
    ax1.set_title(f"MiniLM-L6 linear weights, group {GROUP_SIZE}")
    ax2.bar(keys, [1 - study.cosine[k] for k in keys], color=colors)
    ax2.set_yscale("log")
    ax2.set_ylabel("1 - embedding cosine vs FP32 (log)")
    ax2.set_title(f"{study.n_sentences} sentences, all layers quantized")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)


def splice(existing: str | None, section: str) -> str:
    """Put ``section`` between the MiniLM markers of ``existing`` (creating the file skeleton if needed)."""
    if not existing or BEGIN not in existing or END not in existing:
        head = existing.rstrip() + "\n\n" if existing else (
            "# Weight datatypes and fixed point\n\nGenerated sections; each names the command that regenerates it.\n\n")
        existing = head + f"{BEGIN}\n{END}\n"
        if QFX_BEGIN not in existing:
            existing += f"\n{QFX_BEGIN}\n{QFX_END}\n"
    a = existing.index(BEGIN) + len(BEGIN)
    b = existing.index(END)
    return existing[:a] + "\n" + section.rstrip() + "\n" + existing[b:]


def write_report(study: Study, report: Path) -> None:
    """Write the plot and splice the section into ``report`` atomically."""
    report.parent.mkdir(parents=True, exist_ok=True)
    png = report.with_name("datatypes_minilm.png")
    plot(study, png)
    text = splice(report.read_text(encoding="utf-8") if report.exists() else None, render_markdown(study, png.name))
    write_text(report, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default="reports/datatypes.md", help="markdown file to update")
    args = parser.parse_args(argv)
    study = run_study()
    write_report(study, Path(args.report))
    print(f"wrote {args.report} and {Path(args.report).with_name('datatypes_minilm.png')} in {study.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
