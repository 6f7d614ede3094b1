"""Workload capture: the compute layers, element-wise ops and dataflow of a PyTorch model, via torch.fx.

``capture(model, example_input)`` traces ``model`` with ``torch.fx.symbolic_trace`` and
propagates shapes with ``torch.fx.passes.shape_prop.ShapeProp``. Models with Python control
flow on tensor shapes (Hugging Face BERT) do not trace symbolically; for those a
:class:`ConcreteTracer` traces while running the model on the example input, so every
shape is a concrete number (the graph is specialised to that input, e.g. 128 tokens).

Every matrix product becomes one :class:`Layer`, lowered to GEMM dimensions:

* ``Conv{1,2}d``: ``m`` = batch x output pixels, ``k`` = in_channels/groups x kernel elements,
  ``n`` = out_channels. A grouped (or depthwise) convolution is ``groups`` independent
  ``[m, k] x [k, n/groups]`` products; ``macs = m * k * n``.
* ``Linear``: ``m`` = tokens (all leading dimensions), ``k`` = in_features, ``n`` = out_features.
* ``torch.matmul`` / ``bmm`` / ``@`` between activations: ``batch`` independent
  ``[m, k] x [k, n]`` products (batch = broadcast leading dimensions, e.g. heads). The right
  operand plays the stationary "weight" role but is an activation (``weights = 0``,
  ``stationary_is_activation = True``). ``F.scaled_dot_product_attention`` is two such
  layers, ``<node>.qk`` (Q K^T) and ``<node>.av`` (P V). ``addmm`` / ``baddbmm`` are their product.
* ``nn.MultiheadAttention``: ``<name>.in_proj`` (one ``[tokens, E] x [E, 3E]`` GEMM for self-attention;
  ``.q_proj``/``.kv_proj`` or ``.q_proj``/``.k_proj``/``.v_proj`` otherwise), ``<name>.qk`` and
  ``<name>.av`` per head with ``<name>.softmax`` between them, and ``<name>.out_proj``.

A ``torch.export`` program's module (aten ops; ``models.resolve`` loads ``.pt2`` files) is captured
from its own graph. A product with no GEMM lowering here (ConvTranspose, Conv3d, RNNs, einsum,
bilinear...) raises ``UsageError`` naming the op and its module path: it is never costed as an
element-wise op.

Counts are elements (not bits): ``weights`` (stationary weight elements, bias excluded),
``in_elems`` (streamed input activation), ``in_read_elems`` (the input elements the layer
actually reads: a strided convolution whose kernel is smaller than its stride, e.g. a 1x1
stride-2 downsample, skips the rest), ``stationary_elems`` (weight or right operand),
``out_elems``. ``Workload.order`` lists every op (layers and element-wise ops) in execution
order; ``Workload.with_batch(n)`` is the same model run on ``n`` inputs at once. Layer ``name`` is the module's qualified name (``model.named_modules()``) for
modules and the fx node name for functional products.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

#: fx call targets that only reshape or select (no arithmetic): dataflow passes through them.
_PASS_METHODS = {"view", "reshape", "transpose", "permute", "contiguous", "flatten", "unsqueeze", "squeeze",
                 "expand", "size", "dim", "to", "type", "float", "clone", "detach", "chunk", "split",
                 "__getitem__", "t"}
_PASS_FUNCTION_NAMES = {"flatten", "reshape", "transpose", "permute", "getitem", "unsqueeze", "squeeze",
                        "cat", "stack", "chunk", "split", "getattr", "t"}
_ADD_NAMES = {"add", "iadd", "add_"}
_MATMUL_NAMES = {"matmul", "bmm", "mm"}
#: aten ops (``torch.export`` graphs) that only reshape, select or copy: dataflow passes through them.
_PASS_ATEN = {"view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "unsqueeze", "squeeze",
              "flatten", "unflatten", "contiguous", "clone", "alias", "slice", "select", "split", "split_with_sizes",
              "chunk", "unbind", "cat", "stack", "detach", "_to_copy", "to", "type_as", "lift_fresh_copy",
              "dropout", "_assert_tensor_metadata", "sym_size", "sym_numel", "copy", "_assert_scalar",
              "channel_shuffle", "native_channel_shuffle", "pixel_shuffle", "pixel_unshuffle"}
#: Products (or whole blocks) with weights or several operands that no branch below lowers to a GEMM:
#: costing them as element-wise ops would hide their MACs, so capture refuses them by name.
_UNSUPPORTED_FUNCTIONS = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv3d", "einsum",
                          "bilinear", "tensordot", "multi_head_attention_forward", "convolution", "_convolution",
                          "addbmm", "lstm", "gru", "rnn_tanh", "rnn_relu", "embedding_bag", "_native_multi_head_attention",
                          "_transformer_encoder_layer_fwd", "cudnn_convolution", "addmv", "mv", "dot", "kron",
                          "chain_matmul", "linalg_multi_dot", "multi_dot"}


@dataclass(frozen=True)
class Layer:
    """One matrix product lowered to ``batch * groups`` GEMMs ``[m, k] x [k, n/groups]``.

    Attributes (elements unless stated): ``name``, ``kind`` ("conv" | "linear" | "matmul"),
    ``m``, ``k``, ``n``, ``groups``, ``batch``, ``macs`` (multiply-accumulates), ``weights``,
    ``in_elems``, ``out_elems``, ``stationary_elems``, ``kernel`` and ``stride`` (conv only),
    ``stationary_is_activation``, ``node`` (fx node name), ``scope`` (enclosing module path).
    """

    name: str
    kind: str
    m: int
    k: int
    n: int
    groups: int
    batch: int
    macs: int
    weights: int
    in_elems: int
    out_elems: int
    stationary_elems: int
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    bias: int = 0
    stationary_is_activation: bool = False
    node: str = ""
    scope: str = ""
    in_read_elems: int = 0

    @property
    def has_weights(self) -> bool:
        """Whether the stationary operand is a weight tensor (quantizable by a precision plan)."""
        return not self.stationary_is_activation

    @property
    def read_elems(self) -> int:
        """Input elements the layer reads (``in_read_elems``, or all of ``in_elems`` when unset)."""
        return self.in_read_elems or self.in_elems

    def with_batch(self, n: int) -> "Layer":
        """This layer on ``n`` inputs: GEMM rows grow ``n``-fold for weight layers (every weight
        loaded serves all ``n``), independent products (``batch``) for activation x activation ones."""
        if n == 1:
            return self
        grow = dict(macs=self.macs * n, in_elems=self.in_elems * n, out_elems=self.out_elems * n,
                    in_read_elems=self.in_read_elems * n)
        if self.stationary_is_activation:
            return replace(self, batch=self.batch * n, stationary_elems=self.stationary_elems * n, **grow)
        return replace(self, m=self.m * n, **grow)


@dataclass(frozen=True)
class ElementwiseOp:
    """A non-GEMM op (residual add, BatchNorm, activation, pooling, softmax...): ``elems`` output
    elements, ``in_elems`` input elements (all tensor inputs), ``window`` input elements combined
    per output element (pooling kernels; 1 otherwise)."""

    name: str
    kind: str
    elems: int
    in_elems: int
    node: str = ""
    window: int = 1

    def with_batch(self, n: int) -> "ElementwiseOp":
        """This op on ``n`` inputs."""
        return self if n == 1 else replace(self, elems=self.elems * n, in_elems=self.in_elems * n)


@dataclass
class Workload:
    """Captured model: ``layers`` (GEMMs, in execution order), ``elementwise``, dataflow ``edges``.

    ``edges`` are ``(producer, consumer)`` op names (layers and element-wise ops; reshapes are
    looked through; ``"input"`` is the model input). ``shared_input_groups``: layers reading
    the same tensor. ``residual_groups``: for each residual add, the compute layers that end the
    branches feeding it (groups of two or more).
    """

    layers: list[Layer]
    elementwise: list[ElementwiseOp]
    edges: list[tuple[str, str]]
    shared_input_groups: list[tuple[str, ...]] = field(default_factory=list)
    residual_groups: list[tuple[str, ...]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    input_elems: int = 0
    batch: int = 1

    def with_batch(self, n: int) -> "Workload":
        """The same model on a batch of ``n`` inputs (``n`` times this workload's batch)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"batch must be a positive integer, got {n!r}")
        if n == 1:
            return self
        return Workload([l.with_batch(n) for l in self.layers], [e.with_batch(n) for e in self.elementwise],
                        list(self.edges), list(self.shared_input_groups), list(self.residual_groups),
                        list(self.order), self.input_elems * n, self.batch * n)

    @property
    def macs(self) -> int:
        """Total multiply-accumulates."""
        return sum(l.macs for l in self.layers)

    @property
    def weights(self) -> int:
        """Total stationary weight elements (bias excluded)."""
        return sum(l.weights for l in self.layers)

    @property
    def layer_names(self) -> list[str]:
        """Names of the compute layers, in order."""
        return [l.name for l in self.layers]

    def layer(self, name: str) -> Layer:
        """The layer called ``name`` (KeyError if none)."""
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    def count(self, kind: str) -> int:
        """Number of compute layers of ``kind``."""
        return sum(1 for l in self.layers if l.kind == kind)

    def summary(self) -> str:
        """One line: layer counts, MACs and weights."""
        kinds = {k: self.count(k) for k in ("conv", "linear", "matmul") if self.count(k)}
        parts = ", ".join(f"{v} {k}" for k, v in kinds.items())
        return f"{len(self.layers)} layers ({parts}), {self.macs:,} MACs, {self.weights:,} weights"


# ---------------------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------------------
def _import_fx():
    import torch
    import torch.fx as fx

    return torch, fx


def _make_concrete_tracer():
    """Build the :class:`ConcreteTracer` class (torch imported lazily)."""
    torch, fx = _import_fx()
    from torch.fx.node import map_aggregate

    class _ValueProxy(fx.Proxy):
        """A proxy that also carries the concrete value, so shape queries return numbers."""

        _value: Any = None

        @property
        def shape(self):  # noqa: D401
            return self._value.shape

        def size(self, dim=None):
            return self._value.size() if dim is None else self._value.size(dim)

        def dim(self):
            return self._value.dim()

        @property
        def ndim(self):
            return self._value.ndim

        @property
        def dtype(self):
            return self._value.dtype

        @property
        def device(self):
            return self._value.device

        def __len__(self):
            return len(self._value)

        def __bool__(self):
            return bool(self._value)

        def __iter__(self):
            return iter([self[i] for i in range(len(self._value))])

    class ConcreteTracer(fx.Tracer):
        """fx tracer that runs every traced op on real values, specialising the graph to the input."""

        def __init__(self, inputs: Sequence[Any]):
            super().__init__()
            self._inputs = list(inputs)
            self._eval = False

        def call_module(self, m, forward, args, kwargs):
            if self._eval:
                return forward(*args, **kwargs)
            return super().call_module(m, forward, args, kwargs)

        def getattr(self, attr, attr_val, parameter_proxy_cache):
            if self._eval:
                return attr_val
            return super().getattr(attr, attr_val, parameter_proxy_cache)

        def proxy(self, node):
            return _ValueProxy(node, self)

        def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
            p = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
            unwrap = lambda a: a._value if isinstance(a, _ValueProxy) else a  # noqa: E731
            a, kw = map_aggregate(args, unwrap), map_aggregate(kwargs, unwrap)
            self._eval = True
            try:
                with torch.no_grad():
                    if kind == "placeholder":
                        val = self._inputs.pop(0) if self._inputs else None
                    elif kind == "get_attr":
                        val = self.root
                        for part in str(target).split("."):
                            val = getattr(val, part)
                    elif kind == "call_function":
                        val = target(*a, **kw)
                    elif kind == "call_method":
                        val = getattr(a[0], target)(*a[1:], **kw)
                    elif kind == "call_module":
                        val = self.root.get_submodule(target)(*a, **kw)
                    else:
                        val = None
            finally:
                self._eval = False
            p._value = val
            p.node.meta["value"] = val
            return p

    return ConcreteTracer


def _as_tuple(example_input: Any) -> tuple:
    return tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)


def _meta_shape_prop(gm, inputs: tuple) -> None:
    """ShapeProp on meta tensors: parameters and inputs are swapped for shape-only copies, so no
    arithmetic runs and the model's own weights are left untouched."""
    torch, _ = _import_fx()
    from torch.fx.passes.shape_prop import ShapeProp

    class _Prop(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.gm = inner

        def forward(self, *xs):
            return ShapeProp(self.gm).propagate(*xs)

    prop = _Prop(gm)
    state = {f"gm.{k}": torch.empty_like(v, device="meta")
             for k, v in list(gm.named_parameters()) + list(gm.named_buffers())}
    meta_inputs = tuple(torch.empty_like(x, device="meta") if isinstance(x, torch.Tensor) else x for x in inputs)
    with torch.no_grad():
        torch.func.functional_call(prop, state, meta_inputs)


def _is_export_graph(gm) -> bool:
    """Whether ``gm``'s graph calls aten operators (a ``torch.export`` program's ``.module()``)."""
    return any(n.op == "call_function" and _is_aten(n) for n in gm.graph.nodes)


def trace(model: Any, example_input: Any):
    """Trace ``model`` into an fx ``GraphModule`` whose nodes carry output shapes.

    Returns ``(graph_module, prefix)``: ``prefix`` is stripped from module targets to get the
    model's own qualified names (non-empty when a wrapper root was needed).
    """
    torch, fx = _import_fx()
    from torch.fx.passes.shape_prop import ShapeProp

    inputs = _as_tuple(example_input)
    if isinstance(model, fx.GraphModule) and _is_export_graph(model):
        # A torch.export program's module (aten ops, pytree-flattened inputs): its graph is already the
        # dataflow; re-tracing its generated forward would only add the pytree plumbing.
        with torch.no_grad():
            ShapeProp(model).propagate(*inputs)
        return model, ""
    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - fall back to concrete tracing (HF models)
        gm = None
    if gm is not None:
        try:
            _meta_shape_prop(gm, inputs)
        except Exception:  # noqa: BLE001 - an op without meta support: propagate on real values
            with torch.no_grad():
                ShapeProp(gm).propagate(*inputs)
        return gm, ""

    # A wrapper root with one explicit positional argument per input (fx makes one placeholder each).
    names = ", ".join(f"x{i}" for i in range(len(inputs)))
    namespace: dict[str, Any] = {}
    exec(f"def forward(self, {names}):\n    return self.model({names})\n", namespace)  # noqa: S102
    _Root = type("_Root", (torch.nn.Module,), {"forward": namespace["forward"]})
    root = _Root()
    root.model = model
    tracer = _make_concrete_tracer()(inputs)
    graph = tracer.trace(root)
    gm = fx.GraphModule(root, graph)
    return gm, "model."


# ---------------------------------------------------------------------------------------
# Graph -> workload
# ---------------------------------------------------------------------------------------
def _value(node) -> Any:
    """Concrete value or shape metadata of an fx node's output (None if unknown)."""
    if "value" in node.meta:
        return node.meta["value"]
    return node.meta.get("tensor_meta")


def _shape(node) -> tuple[int, ...] | None:
    v = _value(node)
    shape = getattr(v, "shape", None)
    return tuple(int(s) for s in shape) if shape is not None else None


def _numel(shape: Iterable[int] | None) -> int:
    return int(math.prod(shape)) if shape is not None else 0


def _target_name(node) -> str:
    t = node.target
    if isinstance(t, str):
        return t
    packet = getattr(t, "overloadpacket", None)  # aten.conv2d.default (torch.export graphs) -> "conv2d"
    if packet is not None:
        return getattr(packet, "__name__", str(t))
    return getattr(t, "__name__", str(t))


def _is_aten(node) -> bool:
    return getattr(node.target, "overloadpacket", None) is not None


def _is_tensor_node(a) -> bool:
    import torch.fx as fx

    return isinstance(a, fx.Node) and _shape(a) is not None


def _output_node_args(gm) -> list:
    """Tensor nodes the graph's output depends on (HF outputs: ``last_hidden_state`` only)."""
    import torch.fx as fx

    out = next(n for n in gm.graph.nodes if n.op == "output")
    val = out.args[0]
    if isinstance(val, dict) and "last_hidden_state" in val:
        val = val["last_hidden_state"]
    found: list = []
    fx.node.map_arg(val, found.append)
    return found


def _live_nodes(gm) -> set:
    """Nodes the chosen outputs depend on (dead branches such as an unused pooler are dropped)."""
    import torch.fx as fx

    live: set = set()
    stack = _output_node_args(gm)
    while stack:
        n = stack.pop()
        if n in live:
            continue
        live.add(n)
        fx.node.map_arg((n.args, n.kwargs), stack.append)
    return live


def capture(model: Any, example_input: Any) -> "Workload":
    """Trace ``model`` on ``example_input`` (tensor or tuple) and return its :class:`Workload`."""
    torch, fx = _import_fx()
    nn = torch.nn
    gm, prefix = trace(model, example_input)
    live = _live_nodes(gm)

    def qual(target: str) -> str:
        return target[len(prefix):] if prefix and target.startswith(prefix) else target

    def scope_of(node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return ""
        path = list(stack.values())[-1]
        path = path[0] if isinstance(path, tuple) else path
        return qual(str(path))

    layers: list[Layer] = []
    elementwise: list[ElementwiseOp] = []
    # fx node -> name of the op that produced the tensor it holds (reshapes look through).
    producer: dict[Any, str] = {}
    edges: list[tuple[str, str]] = []
    inputs_of: dict[str, list[str]] = {}

    def sources(node) -> list[str]:
        found: list[str] = []
        fx.node.map_arg((node.args, node.kwargs), lambda a: found.append(producer.get(a, "")))
        return [s for s in dict.fromkeys(found) if s]

    used: dict[str, int] = {}

    def unique(name: str) -> str:
        """Module names reused by several calls (e.g. one ReLU module) get ``#2``, ``#3``... suffixes."""
        used[name] = used.get(name, 0) + 1
        return name if used[name] == 1 else f"{name}#{used[name]}"

    order: list[str] = []
    input_elems = 0

    def add_op(name: str, node, srcs: list[str]) -> None:
        order.append(name)
        inputs_of[name] = srcs
        for s in srcs:
            edges.append((s, name))
        producer[node] = name

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            producer[node] = "input"
            if node in live:
                input_elems += _numel(_shape(node))
            continue
        if node.op in ("output", "get_attr") or node not in live:
            continue
        out_shape = _shape(node)
        tname = _target_name(node)
        srcs = sources(node)

        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            name = qual(str(node.target))
            if not isinstance(mod, (nn.Dropout, nn.Identity, nn.Flatten)):
                name = unique(name)
            in_shape = _shape(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and out_shape is not None:
                w = mod.weight
                out_ch, k_per_group = int(w.shape[0]), int(math.prod(w.shape[1:]))
                m = out_shape[0] * _numel(out_shape[2:])
                layers.append(Layer(name, "conv", m, k_per_group, out_ch, int(mod.groups), 1,
                                    m * k_per_group * out_ch, int(w.numel()), _numel(in_shape), _numel(out_shape),
                                    int(w.numel()), tuple(int(s) for s in mod.kernel_size),
                                    tuple(int(s) for s in mod.stride),
                                    int(mod.bias.numel()) if mod.bias is not None else 0,
                                    False, node.name, name,
                                    _conv_read_elems(in_shape, out_shape, mod.kernel_size, mod.stride)))
                add_op(name, node, srcs)
                continue
            if isinstance(mod, nn.Linear) and out_shape is not None:
                m = _numel(out_shape[:-1])
                k, n = int(mod.in_features), int(mod.out_features)
                layers.append(Layer(name, "linear", m, k, n, 1, 1, m * k * n, k * n, _numel(in_shape),
                                    _numel(out_shape), k * n, (), (),
                                    int(mod.bias.numel()) if mod.bias is not None else 0, False, node.name, name))
                add_op(name, node, srcs)
                continue
            if isinstance(mod, (nn.Dropout, nn.Identity, nn.Flatten)):
                if srcs:
                    producer[node] = srcs[0]
                continue
            if isinstance(mod, nn.MultiheadAttention):
                _mha_layers(mod, name, node, gm, layers, elementwise, add_op, producer)
                continue
            _refuse_unknown_module(mod, name, node)
            ks = getattr(mod, "kernel_size", 1) if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d,
                                                                  nn.AvgPool2d)) else 1
            window = int(math.prod(ks)) if isinstance(ks, (tuple, list)) else int(ks) ** max(len(in_shape or ()) - 2, 1)
            elementwise.append(ElementwiseOp(name, type(mod).__name__.lower(), _numel(out_shape),
                                             _numel(in_shape), node.name, window))
            add_op(name, node, srcs)
            continue

        # call_function / call_method
        if node.op == "call_function" and tname in _UNSUPPORTED_FUNCTIONS:
            _refuse(tname, node, scope_of(node))
        # addmm / baddbmm (input + mat1 @ mat2): the product is the layer; the add rides on it (no extra pass)
        node_args = node.args[1:] if tname in ("addmm", "baddbmm") else node.args
        if tname in _MATMUL_NAMES or tname in ("addmm", "baddbmm") or node.target is operator.matmul:
            a, b = node_args[0], node_args[1]
            sa, sb = _shape(a), _shape(b)
            if sa is None or sb is None or len(sa) < 1 or len(sb) < 1:
                _refuse(tname, node, scope_of(node), "operand shapes unknown")
            if len(sa) < 2 or len(sb) < 2:  # matrix-vector products: the vector is a one-column matrix
                sa = sa if len(sa) >= 2 else (1,) + tuple(sa)
                sb = sb if len(sb) >= 2 else tuple(sb) + (1,)
            m, k, n = sa[-2], sa[-1], sb[-1]
            batch = _numel(out_shape[:-2]) if out_shape else 1
            stationary_act = not (isinstance(b, fx.Node) and b.op == "get_attr")
            w = 0 if stationary_act else _numel(sb)
            layers.append(Layer(node.name, "matmul", m, k, n, 1, batch, batch * m * k * n, w, _numel(sa),
                                _numel(out_shape), _numel(sb), (), (), 0, stationary_act, node.name,
                                scope_of(node)))
            add_op(node.name, node, srcs)
            continue
        if tname in ("linear", "conv1d", "conv2d") and node.op == "call_function":
            layer = _functional_layer(node, tname, out_shape, qual)
            if layer is None:
                _refuse(tname, node, scope_of(node), "its weight is not a parameter of the model")
            if layer.name in used:  # one weight used by several calls
                layer = replace(layer, name=unique(layer.name))
            else:
                unique(layer.name)
            layers.append(layer)
            add_op(layer.name, node, srcs)
            continue
        if tname == "scaled_dot_product_attention":
            q, kk, v = node.args[0], node.args[1], node.args[2]
            sq, sk, sv = _shape(q), _shape(kk), _shape(v)
            batch = _numel(sq[:-2])
            t, d, s, dv = sq[-2], sq[-1], sk[-2], sv[-1]
            scope = scope_of(node)
            qk, av = f"{node.name}.qk", f"{node.name}.av"
            layers.append(Layer(qk, "matmul", t, d, s, 1, batch, batch * t * d * s, 0, _numel(sq),
                                batch * t * s, _numel(sk), (), (), 0, True, node.name, scope))
            src_q, src_k, src_v = (producer.get(x, "") for x in (q, kk, v))
            add_op(qk, node, [x for x in dict.fromkeys([src_q, src_k]) if x])
            sm = f"{node.name}.softmax"
            elementwise.append(ElementwiseOp(sm, "softmax", batch * t * s, batch * t * s, node.name))
            add_op(sm, node, [qk])
            layers.append(Layer(av, "matmul", t, s, dv, 1, batch, batch * t * s * dv, 0, batch * t * s,
                                _numel(out_shape), _numel(sv), (), (), 0, True, node.name, scope))
            add_op(av, node, [x for x in dict.fromkeys([sm, src_v]) if x])
            continue
        pass_through = (tname in _PASS_METHODS if node.op == "call_method"
                        else tname in _PASS_ATEN if _is_aten(node) else tname in _PASS_FUNCTION_NAMES)
        if pass_through or out_shape is None or tname in ("size", "dim"):
            if srcs:
                producer[node] = srcs[0]
            continue
        tensor_args = [a for a in node.args if _is_tensor_node(a)]
        kind = "add" if tname in _ADD_NAMES and len(tensor_args) == 2 else tname.lower()
        in_e = sum(_numel(_shape(a)) for a in tensor_args)
        elementwise.append(ElementwiseOp(node.name, kind, _numel(out_shape), in_e, node.name))
        add_op(node.name, node, srcs)

    return Workload(layers, elementwise, edges, _shared_groups(layers, inputs_of),
                    _residual_groups(layers, elementwise, inputs_of), order, input_elems)


def _refuse(op: str, node, scope: str, why: str = "") -> None:
    """A layer capture cannot cost: ``UsageError`` naming the op and its module path."""
    from hwq.errors import UsageError

    where = f"module {scope!r}" if scope else "the model's top level"
    raise UsageError(f"hwq cannot cost op {op!r} (fx node {node.name}) in {where}"
                     f"{': ' + why if why else ''}; supported products are Conv1d/Conv2d, Linear, matmul/bmm/mm, "
                     f"addmm/baddbmm, scaled_dot_product_attention and nn.MultiheadAttention")


#: Leaf modules with parameters that are not a product (their work is element-wise or a lookup).
_ELEMENTWISE_PARAM_MODULES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
                              "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "RMSNorm", "Embedding",
                              "PReLU", "SyncBatchNorm")


def _refuse_unknown_module(mod, name: str, node) -> None:
    """A ``torch.nn`` leaf module that holds a weight matrix but is none of the products above
    (``ConvTranspose2d``, ``Conv3d``, ``LSTM``, ``Bilinear``...) would be costed as element-wise work: refuse it."""
    cls = type(mod).__name__
    if cls in _ELEMENTWISE_PARAM_MODULES or any(cls == c + "Lazy" for c in _ELEMENTWISE_PARAM_MODULES):
        return
    if any(p.dim() >= 2 for p in mod.parameters(recurse=False)) or "Conv" in cls or cls in ("LSTM", "GRU", "RNN"):
        from hwq.errors import UsageError

        raise UsageError(f"hwq cannot cost layer {name!r} ({cls}, fx node {node.name}): no GEMM lowering for "
                         f"{cls}; supported products are Conv1d/Conv2d, Linear, matmul/bmm/mm, addmm/baddbmm, "
                         f"scaled_dot_product_attention and nn.MultiheadAttention")


def _mha_layers(mod, name: str, node, gm, layers: list, elementwise: list, add_op, producer: dict) -> None:
    """``nn.MultiheadAttention`` as its products, in the order ``F.multi_head_attention_forward`` runs them:
    input projection(s) (``<name>.in_proj``, one ``[tokens, E] x [E, 3E]`` GEMM for self-attention, or
    ``.q_proj``/``.kv_proj``, ``.k_proj``/``.v_proj``), per head ``.qk`` (Q K^T) and ``.av`` (P V) with a
    softmax between them, and ``<name>.out_proj`` (the module's own ``nn.Linear``)."""
    import torch.fx as fx

    from hwq.errors import UsageError

    def arg(i, key):
        return node.args[i] if len(node.args) > i else node.kwargs.get(key)

    q, k, v = arg(0, "query"), arg(1, "key"), arg(2, "value")
    if mod.bias_k is not None or mod.add_zero_attn:
        raise UsageError(f"hwq cannot cost layer {name!r} (MultiheadAttention with add_bias_kv/add_zero_attn): "
                         f"no GEMM lowering for the extra key/value rows")
    sq, sk, sv = _shape(q), _shape(k), _shape(v)
    if sq is None or sk is None or sv is None:
        raise UsageError(f"hwq cannot cost layer {name!r} (MultiheadAttention): input shapes unknown")
    bf = bool(mod.batch_first)
    unbatched = len(sq) == 2
    nb = 1 if unbatched else (sq[0] if bf else sq[1])
    t_len = sq[0] if unbatched else (sq[1] if bf else sq[0])
    s_len = sk[0] if unbatched else (sk[1] if bf else sk[0])
    e, h = int(mod.embed_dim), int(mod.num_heads)
    hd = e // h
    src = {x: producer.get(x, "") for x in (q, k, v) if isinstance(x, fx.Node)}
    bias = mod.in_proj_bias is not None

    def proj(suffix, x, rows, k_dim, n_dim):
        lname = f"{name}.{suffix}"
        layers.append(Layer(lname, "linear", rows, k_dim, n_dim, 1, 1, rows * k_dim * n_dim, k_dim * n_dim,
                            rows * k_dim, rows * n_dim, k_dim * n_dim, (), (), n_dim if bias else 0, False,
                            node.name, name))
        add_op(lname, node, [src[x]] if src.get(x) else [])
        return lname

    tq, tk = nb * t_len, nb * s_len
    if mod._qkv_same_embed_dim and q is k and k is v:
        qn = kn = vn = proj("in_proj", q, tq, e, 3 * e)
    elif mod._qkv_same_embed_dim and k is v:
        qn = proj("q_proj", q, tq, e, e)
        kn = vn = proj("kv_proj", k, tk, e, 2 * e)
    else:
        qn = proj("q_proj", q, tq, e, e)
        kn = proj("k_proj", k, tk, int(mod.kdim), e)
        vn = proj("v_proj", v, tk, int(mod.vdim), e)
    batch = nb * h
    qk, sm, av = f"{name}.qk", f"{name}.softmax", f"{name}.av"
    layers.append(Layer(qk, "matmul", t_len, hd, s_len, 1, batch, batch * t_len * hd * s_len, 0, tq * e,
                        batch * t_len * s_len, tk * e, (), (), 0, True, node.name, name))
    add_op(qk, node, list(dict.fromkeys([qn, kn])))
    elementwise.append(ElementwiseOp(sm, "softmax", batch * t_len * s_len, batch * t_len * s_len, node.name))
    add_op(sm, node, [qk])
    layers.append(Layer(av, "matmul", t_len, s_len, hd, 1, batch, batch * t_len * s_len * hd, 0,
                        batch * t_len * s_len, tq * e, tk * e, (), (), 0, True, node.name, name))
    add_op(av, node, list(dict.fromkeys([sm, vn])))
    out = f"{name}.out_proj"
    op = mod.out_proj
    layers.append(Layer(out, "linear", tq, e, e, 1, 1, tq * e * e, e * e, tq * e, tq * e, e * e, (), (),
                        e if op.bias is not None else 0, False, node.name, out))
    add_op(out, node, [av])


def _conv_read_elems(in_shape, out_shape, kernel, stride) -> int:
    """Input elements a convolution reads: along each spatial axis whose kernel is smaller than
    its stride, only ``out_size * kernel`` of the input positions are ever touched."""
    if not in_shape or not out_shape:
        return 0
    nd = len(in_shape) - 2
    ks = tuple(kernel) if isinstance(kernel, (tuple, list)) else (int(kernel),) * nd
    ss = tuple(stride) if isinstance(stride, (tuple, list)) else (int(stride),) * nd
    touched = [size if k >= s else min(size, o * k)
               for size, o, k, s in zip(in_shape[2:], out_shape[2:], ks, ss)]
    return int(in_shape[0] * in_shape[1] * math.prod(touched))


def _functional_layer(node, tname: str, out_shape, qual: Callable[[str], str]) -> "Layer | None":
    """``F.linear`` / ``F.conv{1,2}d`` whose weight is a parameter (``get_attr``); named after the
    weight's owner module (``fc.weight`` -> ``fc``), else the node."""
    import torch.fx as fx

    args = list(node.args) + [node.kwargs.get(k) for k in ("weight", "bias") if k in node.kwargs]
    if len(args) < 2 or not isinstance(args[1], fx.Node) or args[1].op != "get_attr" or out_shape is None:
        return None
    w_shape, in_shape = _shape(args[1]), _shape(args[0])
    if w_shape is None:
        return None
    target = qual(str(args[1].target))
    owner, _, leaf = target.rpartition(".")
    if leaf == "weight" and owner:
        name = owner
    else:  # attn.in_proj_weight -> attn.in_proj (as nn.MultiheadAttention is named when captured as a module)
        name = f"{owner}.{leaf[:-len('_weight')]}" if owner and leaf.endswith("_weight") else node.name
    bias = _numel(_shape(args[2])) if len(args) > 2 and isinstance(args[2], fx.Node) else 0
    if tname == "linear":
        n, k = w_shape
        m = _numel(out_shape[:-1])
        return Layer(name, "linear", m, k, n, 1, 1, m * k * n, k * n, _numel(in_shape), _numel(out_shape), k * n,
                     (), (), bias, False, node.name, name)
    groups = int(node.kwargs.get("groups", node.args[6] if len(node.args) > 6 else 1))
    stride = node.kwargs.get("stride", node.args[3] if len(node.args) > 3 else 1)
    nd = len(w_shape) - 2
    stride = tuple(stride) if isinstance(stride, (tuple, list)) else (int(stride),) * nd
    n, k = w_shape[0], _numel(w_shape[1:])
    m = out_shape[0] * _numel(out_shape[2:])
    return Layer(name, "conv", m, k, n, groups, 1, m * k * n, _numel(w_shape), _numel(in_shape), _numel(out_shape),
                 _numel(w_shape), tuple(w_shape[2:]), stride, bias, False, node.name, name,
                 _conv_read_elems(in_shape, out_shape, tuple(w_shape[2:]), stride))


def _shared_groups(layers: list[Layer], inputs_of: dict[str, list[str]]) -> list[tuple[str, ...]]:
    """Weight layers whose streamed input comes from the same producer (groups of two or more)."""
    by_src: dict[str, list[str]] = {}
    for l in layers:
        srcs = inputs_of.get(l.name, [])
        if srcs and l.has_weights:
            by_src.setdefault(srcs[0], []).append(l.name)
    return [tuple(v) for v in by_src.values() if len(v) > 1]


def _residual_groups(layers: list[Layer], elementwise: list[ElementwiseOp],
                     inputs_of: dict[str, list[str]]) -> list[tuple[str, ...]]:
    """For each residual add, the compute layers ending its branches (walking back through
    single-input element-wise ops; a branch that reaches another add or the input is an identity)."""
    layer_names = {l.name for l in layers}
    ew_kind = {e.name: e.kind for e in elementwise}
    groups: list[tuple[str, ...]] = []
    for e in elementwise:
        if e.kind != "add":
            continue
        found: list[str] = []
        for src in inputs_of.get(e.name, []):
            cur, seen = src, set()
            while cur and cur not in seen:
                seen.add(cur)
                if cur in layer_names:
                    found.append(cur)
                    break
                if ew_kind.get(cur) == "add" or cur == "input":
                    break
                nxt = inputs_of.get(cur, [])
                if len(nxt) != 1:
                    break
                cur = nxt[0]
        if len(found) > 1:
            groups.append(tuple(dict.fromkeys(found)))
    return groups
