"""A whole network inferred on the PE-array RTL (``hwq sim --network digits_cnn``).

The digits CNN (:mod:`models.digits_cnn`) runs layer after layer: every convolution and the
linear head is a GEMM on the generated array (streaming testbench, :mod:`hwq.verify.stream`),
one array run per image and layer, as the cost model counts them. Between GEMMs the integer
activations go through the requantization path of the golden model; the array has no block
for these, so they run in numpy (:data:`ELEMENTWISE_IN_GOLDEN`).

Integer network (the "golden model"; a GEMM is ``hwq.golden.linear_int``):

* activations: signed ``act_bits`` codes with a power-of-two scale per GEMM input, calibrated
  by absmax on the recipe's calibration images (float model);
* weights: ``hwq.quant.quantize_weight_codes`` at the layer's precision (plan or arch default),
  groups of the arch's group size when it divides the row, else one group per output row;
* after a GEMM: ``acc * 2**-frac_bits * row_scale`` (dequantized weight) ``* 2**e_in`` then the
  folded BatchNorm ``a * y + b`` become one fixed-point multiplier and bias per channel
  (``REQUANT_SHIFT`` fractional bits) and :func:`hwq.golden.requantize` casts to the next
  input's codes (round half to even, saturate); ReLU clamps codes at 0;
* residual: the block's second BN output is requantized to the stem activation's scale
  (``RESIDUAL_BITS`` wide), added to the stem codes as integers, ReLU, then requantized to the
  head's input scale; max-pool on codes; head logits ``acc * weight scale * 2**e + bias``; argmax.

The RTL path is the same, with each GEMM's outputs taken from the simulator instead of
``linear_int``; every GEMM output is compared with the golden model's (bit for bit), and the
predicted class per image.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwq.errors import UsageError

#: Element-wise operations executed by the golden model (numpy) between the array's GEMMs.
ELEMENTWISE_IN_GOLDEN = (
    "input quantization (power-of-two scale, 8-bit codes)",
    "im2col lowering of each convolution (zero padding)",
    "BatchNorm (folded into the per-channel requantization multiplier and bias)",
    "requantization to the next layer's codes (hwq.golden.requantize: RND_CONV, SAT)",
    "ReLU (on codes)",
    "residual add (integer codes at the stem's scale)",
    "max-pool 2x2 (on codes) and flatten",
    "linear-head bias and argmax",
)

REQUANT_SHIFT = 24  # fractional bits of the requantization multipliers and biases
RESIDUAL_BITS = 16  # width of the block-output codes that feed the residual add

GEMM_LAYERS = ("stem_conv", "block_conv1", "block_conv2", "fc")
BN_OF = {"stem_conv": "stem_bn", "block_conv1": "block_bn1", "block_conv2": "block_bn2"}


@dataclass
class LayerStats:
    name: str
    m: int
    k: int
    n: int
    precision: str
    runs: int
    outputs: int
    mismatches: int
    measured_cycles: int
    predicted_cycles: int
    cost_model_cycles: int
    sim_s: float
    sim_cycles: int
    build_s: float
    build_cached: bool


@dataclass
class NetworkResult:
    network: str
    arch: str
    simulator: str
    images: int
    class_agreement: int  # images whose RTL class equals the golden model's
    rtl_accuracy: float
    golden_accuracy: float
    fake_quant_accuracy: float
    float_accuracy: float
    measured_cycles: int
    predicted_cycles: int  # hwq.timing over the runs
    cost_model_cycles: int  # hwq.cost.evaluate compute cycles per image x images
    cost_model_cycles_per_image: int
    layers: list[LayerStats]
    act_exponents: dict[str, int]
    elementwise_in_golden: tuple[str, ...] = ELEMENTWISE_IN_GOLDEN
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return sum(s.mismatches for s in self.layers)

    @property
    def ok(self) -> bool:
        return (self.class_agreement == self.images and self.mismatches == 0
                and self.measured_cycles == self.predicted_cycles == self.cost_model_cycles)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(ok=self.ok, mismatches=self.mismatches)
        return d


# ---- the integer network -----------------------------------------------------------------------
def _exponent(amax: float, act_bits: int) -> int:
    qmax = (1 << (act_bits - 1)) - 1
    return math.ceil(math.log2(amax / qmax)) if amax > 0 else 0


def _quantize_input(x: np.ndarray, exponent: int, act_bits: int) -> np.ndarray:
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return np.clip(np.rint(x.astype(np.float64) * 2.0 ** -exponent), lo, hi).astype(np.int64)


def _im2col(x: np.ndarray, module: Any) -> np.ndarray:
    """Rows ``[B*H*W, C*kh*kw]`` (``hwq.verify.lower.lower_to_gemm``'s layout) of integer input ``x``."""
    import torch

    from hwq.verify.lower import lower_to_gemm

    return lower_to_gemm(module, torch.from_numpy(x)).numpy().astype(np.int64)


@dataclass
class _Gemm:
    name: str
    module: Any
    qw: Any
    precision: Any
    group_size: int
    a: np.ndarray  # per-channel affine after the GEMM (folded BN or 1)
    b: np.ndarray


class DigitsIntegerNetwork:
    """The integer digits CNN; :meth:`forward` takes a GEMM function (golden or RTL)."""

    def __init__(self, spec: Any, plan: Path | None = None, act_bits: int | None = None) -> None:
        import torch

        from hwq.quant import quantize_weight_codes
        from hwq.verify.precision import resolve_precision
        from models.digits_cnn import calibration_batches, load_checkpoint

        self.spec = spec
        self.model = load_checkpoint()
        mods = dict(self.model.named_modules())
        self.gemms: dict[str, _Gemm] = {}
        for name in GEMM_LAYERS:
            prec = resolve_precision(spec, name, plan)
            mod = mods[name]
            w = mod.weight.detach().reshape(mod.weight.shape[0], -1)
            k = w.shape[1]
            gs = prec.group_size if prec.group_size and k % prec.group_size == 0 else k
            try:
                qw = quantize_weight_codes(w, prec.fmt, prec.bits, group_size=gs)
            except ValueError as err:
                raise UsageError(f"cannot quantize digits_cnn:{name} as {prec}: {err}") from None
            if name in BN_OF:
                bn = mods[BN_OF[name]]
                a = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
                b = (bn.bias.detach().double() - bn.running_mean.double() * torch.from_numpy(a)).numpy()
            else:
                a = np.ones(w.shape[0])
                b = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros(w.shape[0])
            self.gemms[name] = _Gemm(name, mod, qw, prec, gs, a, b)
        self.act_bits = act_bits or max(g.precision.act_bits for g in self.gemms.values())
        # Power-of-two input scales from the float model on the calibration images.
        amax: dict[str, float] = {}
        hooks = []

        def hook(name: str) -> Callable:
            def f(_m: Any, args: tuple) -> None:
                amax[name] = max(amax.get(name, 0.0), float(args[0].detach().abs().max()))
            return f

        for name in GEMM_LAYERS:
            hooks.append(mods[name].register_forward_pre_hook(hook(name)))
        with torch.no_grad():
            for batch in calibration_batches():
                self.model(batch)
        for h in hooks:
            h.remove()
        self.exponents = {name: _exponent(amax[name], self.act_bits) for name in GEMM_LAYERS}

    def _requant(self, g: _Gemm, acc: np.ndarray, e_in: int, e_out: int, width: int, relu: bool) -> np.ndarray:
        """Codes at scale ``2**e_out`` of ``relu?(a * dequant(acc) + b)`` (per output channel)."""
        from hwq.datatypes import FixedFormat
        from hwq.golden import requantize

        qw = g.qw
        row = np.asarray(qw.row_scale, dtype=np.float64) * 2.0 ** -int(qw.frac_bits)
        mult = np.rint(row * 2.0 ** e_in * g.a * 2.0 ** (REQUANT_SHIFT - e_out)).astype(np.int64)
        bias = np.rint(g.b * 2.0 ** (REQUANT_SHIFT - e_out)).astype(np.int64)
        fmt = FixedFormat(width, width, True, rounding="RND_CONV", overflow="SAT")
        codes = requantize(acc * mult + bias, 1, REQUANT_SHIFT, fmt)
        return np.maximum(codes, 0) if relu else codes

    def forward(self, images: np.ndarray, gemm: Callable[[str, np.ndarray, int], np.ndarray]
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Class scores ``[B, 10]`` of ``images [B, 1, 8, 8]`` and each GEMM's integer output.

        ``gemm(name, x_rows [M, K] int64, rows_per_image) -> acc [M, N] int64``.
        """
        e = self.exponents
        b = images.shape[0]
        accs: dict[str, np.ndarray] = {}
        g = self.gemms

        def conv(name: str, x_codes: np.ndarray) -> np.ndarray:
            rows = _im2col(x_codes, g[name].module)
            acc = gemm(name, rows, rows.shape[0] // b)
            accs[name] = acc
            return acc

        x0 = _quantize_input(images, e["stem_conv"], self.act_bits)
        hw = images.shape[2] * images.shape[3]

        def nchw(codes: np.ndarray) -> np.ndarray:  # [B*H*W, C] -> [B, C, H, W]
            return codes.reshape(b, images.shape[2], images.shape[3], -1).transpose(0, 3, 1, 2).copy()

        s_acc = conv("stem_conv", x0)
        s = self._requant(g["stem_conv"], s_acc, e["stem_conv"], e["block_conv1"], self.act_bits, relu=True)
        y_acc = conv("block_conv1", nchw(s))
        y = self._requant(g["block_conv1"], y_acc, e["block_conv1"], e["block_conv2"], self.act_bits, relu=True)
        z_acc = conv("block_conv2", nchw(y))
        # residual at the stem output's scale (block_conv1's input exponent), then ReLU
        z = self._requant(g["block_conv2"], z_acc, e["block_conv2"], e["block_conv1"], RESIDUAL_BITS, relu=False)
        r = np.maximum(s + z, 0)
        from hwq.datatypes import FixedFormat
        from hwq.golden import requantize

        shift = e["fc"] - e["block_conv1"]  # r * 2**e_b1 -> codes at 2**e_fc
        fmt = FixedFormat(self.act_bits, self.act_bits, True, rounding="RND_CONV", overflow="SAT")
        h = requantize(r, 1, shift, fmt) if shift >= 0 else np.clip(r << -shift, fmt.min_code, fmt.max_code)
        h = nchw(h)  # [B, C, 8, 8]
        pooled = h.reshape(b, h.shape[1], h.shape[2] // 2, 2, h.shape[3] // 2, 2).max(axis=(3, 5))
        flat = pooled.reshape(b, -1)
        f_acc = gemm("fc", flat, 1)
        accs["fc"] = f_acc
        qw = g["fc"].qw
        logits = f_acc * (np.asarray(qw.row_scale, dtype=np.float64) * 2.0 ** (e["fc"] - int(qw.frac_bits))) + g["fc"].b
        del hw
        return logits, accs

    def golden_gemm(self, name: str, x_rows: np.ndarray, rows_per_image: int) -> np.ndarray:
        from hwq.golden import linear_int

        return linear_int(x_rows, self.gemms[name].qw)


# ---- on the RTL --------------------------------------------------------------------------------
def _array_config(spec: Any, net: DigitsIntegerNetwork, rows_per_image: dict[str, int]) -> Any:
    from hwq.hw.config import array_config_from_spec

    a = spec.array
    x_words = w_words = m = 1
    for name, g in net.gemms.items():
        n, k = np.asarray(g.qw.codes).shape
        kt_l, nt_l = math.ceil(k / (a.rows * a.lanes)), math.ceil(n / a.cols)
        m = max(m, rows_per_image[name])
        x_words = max(x_words, kt_l * rows_per_image[name])
        w_words = max(w_words, kt_l * nt_l * a.rows)
    group_sizes = {g.group_size for g in net.gemms.values() if g.group_size != np.asarray(g.qw.codes).shape[1]}
    if len(group_sizes) > 1:
        raise UsageError(f"the digits layers need array group sizes {sorted(group_sizes)}; one array runs one")
    gs = group_sizes.pop() if group_sizes else spec.arithmetic.group_size
    from hwq.hw.config import spec_dataflow
    from hwq.verify.stream import shared_build_config

    out_buffer = spec_dataflow(spec) == "output_buffer"
    depths = dict(x_depth=max(64, x_words), w_depth=max(64, w_words))
    if out_buffer:
        depths["out_depth"] = max(32, m)
    try:
        return shared_build_config(array_config_from_spec(spec, group_size=gs, **depths), round_out_depth=out_buffer)
    except ValueError as err:
        raise UsageError(f"arch {spec.name!r} cannot run the digits CNN on its PE array: {err}") from None


def run_digits_network(arch: str | Path = "bitmod", *, simulator: str = "verilator", plan: Path | None = None,
                       n_images: int | None = None, build_dir: Path | None = None,
                       progress: Callable[[str], None] | None = None) -> NetworkResult:
    """Classify the digits test images with every GEMM on the array RTL; compare with the golden model."""
    import torch

    from hwq.cost import Choice, evaluate
    from hwq.hw.array_driver import expected_cycles, pack_layer, unpack_outputs
    from hwq.quant import LayerPrecision, calibrate, quantize_model
    from hwq.spec import load_spec
    from hwq.verify.stream import run_stream
    from hwq.workload import capture
    from models.digits_cnn import calibration_batches, evaluate as evaluate_model, load_checkpoint, load_digits_split

    t_start = time.perf_counter()
    say = progress or (lambda _s: None)
    spec = load_spec(arch)
    net = DigitsIntegerNetwork(spec, plan)
    _, _, x_test, y_test = load_digits_split()
    if n_images is not None:
        x_test, y_test = x_test[:n_images], y_test[:n_images]
    images = x_test.numpy()
    labels = y_test.numpy()
    b = images.shape[0]
    rows_per_image = {"stem_conv": images.shape[2] * images.shape[3], "block_conv1": images.shape[2] * images.shape[3],
                      "block_conv2": images.shape[2] * images.shape[3], "fc": 1}

    # Cost model: per-image compute cycles of each layer at its precision, and its M tiling.
    wl = capture(load_checkpoint(), torch.zeros(1, 1, images.shape[2], images.shape[3]))
    names = [lay.name for lay in wl.layers]
    cost_layer: dict[str, tuple[int, int]] = {}
    for name, g in net.gemms.items():
        p = g.precision
        table = evaluate(wl, spec, [Choice(p.fmt, p.bits, p.act_bits)])
        i = names.index(name)
        cost_layer[name] = (int(table.compute_cycles[i, 0]), int(table.m_tile_rows[i, 0]))
    cfg = _array_config(spec, net, rows_per_image)

    stats: list[LayerStats] = []
    golden_accs: dict[str, np.ndarray] = {}

    def rtl_gemm(name: str, x_rows: np.ndarray, rpi: int) -> np.ndarray:
        g = net.gemms[name]
        qw = g.qw
        codes, sel, sc = (np.asarray(qw.codes), np.asarray(qw.selectors), np.asarray(qw.scale_int))
        fmt = cfg.formats.index((qw.fmt, int(qw.bits)))
        m_tile = min(cost_layer[name][1], rpi)
        kw = {"m_tile": m_tile} if m_tile < rpi else {}
        imgs = []
        for i in range(x_rows.shape[0] // rpi):
            img = pack_layer(cfg, x_rows[i * rpi:(i + 1) * rpi], codes, sel, sc, g.group_size, fmt, **kw)
            if imgs:
                img = dataclasses.replace(img, w_words=imgs[0].w_words)  # one weight image for every run
            imgs.append(img)
        say(f"{name}: {len(imgs)} runs of M={rpi} K={codes.shape[1]} N={codes.shape[0]} on {simulator} ...")
        res = run_stream(cfg, imgs, simulator=simulator, build_dir=build_dir)
        acc = np.concatenate([unpack_outputs(cfg, img, r.out_words) for img, r in zip(imgs, res.runs)])
        gold = net.golden_gemm(name, x_rows, rpi)
        golden_accs[name] = gold
        p = g.precision
        group = f"g{g.group_size}" if g.group_size != codes.shape[1] else f"g{g.group_size} (one group per row)"
        st = LayerStats(name, rpi, codes.shape[1], codes.shape[0], f"{p.fmt}{p.bits}/a{p.act_bits} {group}", len(imgs),
                        int(gold.size),
                        int((acc != gold).sum()), sum(r.cycles for r in res.runs),
                        sum(expected_cycles(cfg, img) for img in imgs), cost_layer[name][0] * len(imgs),
                        round(res.sim_s, 3), res.sim_cycles, round(res.build.build_s, 1), res.build.cached)
        say(f"  {st.mismatches} mismatches of {st.outputs}; cycles measured {st.measured_cycles}, hwq.timing "
            f"{st.predicted_cycles}, hwq.cost {st.cost_model_cycles}; sim {st.sim_s:.2f} s "
            f"({st.sim_cycles / max(st.sim_s, 1e-9):,.0f} cycles/s), build {st.build_s} s"
            f"{' (cached)' if st.build_cached else ''}")
        stats.append(st)
        return acc

    rtl_logits, _ = net.forward(images, rtl_gemm)
    gold_logits, gold_acc2 = net.forward(images, net.golden_gemm)
    rtl_cls, gold_cls = rtl_logits.argmax(1), gold_logits.argmax(1)

    # Fake-quant reference: the same precisions in hwq.quant's fake-quant modules.
    fq_plan = {name: LayerPrecision(g.precision.fmt, g.precision.bits, g.precision.act_bits,
                                    g.group_size if g.group_size != np.asarray(g.qw.codes).shape[1] else None)
               for name, g in net.gemms.items()}
    fq = calibrate(quantize_model(load_checkpoint(), fq_plan), calibration_batches())
    with torch.no_grad():
        fq_acc = float((fq(x_test).argmax(1).numpy() == labels).mean())
    per_image_cost = sum(c for c, _ in cost_layer.values())
    return NetworkResult(
        network="digits_cnn", arch=spec.name, simulator=simulator, images=b,
        class_agreement=int((rtl_cls == gold_cls).sum()), rtl_accuracy=float((rtl_cls == labels).mean()),
        golden_accuracy=float((gold_cls == labels).mean()), fake_quant_accuracy=fq_acc,
        float_accuracy=float(evaluate_model(load_checkpoint())) if n_images is None else
        float((load_checkpoint()(x_test).argmax(1).numpy() == labels).mean()),
        measured_cycles=sum(s.measured_cycles for s in stats), predicted_cycles=sum(s.predicted_cycles for s in stats),
        cost_model_cycles=per_image_cost * b, cost_model_cycles_per_image=per_image_cost, layers=stats,
        act_exponents=dict(net.exponents), wall_s=round(time.perf_counter() - t_start, 2))


def markdown_report(r: NetworkResult) -> str:
    """The report ``hwq sim --network`` writes (RTL accuracy beside fake-quant and float)."""
    lines = [
        f"# {r.network} on the {r.arch} PE-array RTL ({r.simulator})", "",
        "Generated by `hwq sim --network " + r.network + f" --arch {r.arch} --simulator {r.simulator}` "
        "(hwq.verify.network). Every convolution and the linear head ran on the generated array RTL "
        "(streaming testbench, one array run per image and layer); element-wise operations ran in the "
        "golden model (numpy).", "",
        "| | top-1 accuracy |", "| --- | --- |",
        f"| RTL (integer network on the array) | {r.rtl_accuracy:.4f} |",
        f"| golden model (same integer network, hwq.golden GEMMs) | {r.golden_accuracy:.4f} |",
        f"| fake-quant (hwq.quant modules, same precisions) | {r.fake_quant_accuracy:.4f} |",
        f"| float checkpoint | {r.float_accuracy:.4f} |", "",
        f"- images: {r.images}; RTL class equal to the golden model's: {r.class_agreement}/{r.images}",
        f"- GEMM outputs compared bit for bit: {sum(s.outputs for s in r.layers)}, mismatches: {r.mismatches}",
        f"- cycles: measured {r.measured_cycles}, hwq.timing {r.predicted_cycles}, `hwq cost` "
        f"{r.cost_model_cycles} ({r.cost_model_cycles_per_image} per image x {r.images})",
        f"- wall time {r.wall_s} s", "",
        "| layer | precision | M per run | K | N | runs | mismatches | cycles measured | hwq.timing | hwq.cost | "
        "sim s | sim cycles/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in r.layers:
        lines.append(f"| {s.name} | {s.precision} | {s.m} | {s.k} | {s.n} | {s.runs} | {s.mismatches} | "
                     f"{s.measured_cycles} | {s.predicted_cycles} | {s.cost_model_cycles} | {s.sim_s} | "
                     f"{s.sim_cycles / max(s.sim_s, 1e-9):,.0f} |")
    lines += ["", "Element-wise operations in the golden model (the array has no block for them):", ""]
    lines += [f"- {op}" for op in r.elementwise_in_golden]
    lines += ["", f"Activation exponents (input scale 2**e per GEMM): {r.act_exponents}", ""]
    return "\n".join(lines)
