"""A declared accelerator design space: YAML schema, validation, expansion to points.

A space names a base preset and lists values per axis; the points are the cross product
of the axes (optionally filtered by ``limits``). Every point becomes a concrete
:class:`hwq.spec.AcceleratorSpec` by patching the base preset (:func:`point_spec`), so the
spec's own validation still applies to every variant.

Schema (every key except ``name``, ``base`` and ``axes`` is optional)::

    name: bitmod_small            # identifier, used in output file names
    base: bitmod                  # preset name (hwq.spec.PRESETS) or path to a spec YAML
    description: one line
    axes:                         # omitted axis -> the base preset's value
      rows: [8, 16, 32]           # PE array rows (positive ints)
      cols: [8, 16, 32]           # PE array columns
      lanes: [4]                  # dot-product lanes per PE
      bits_per_cycle: [2, 4]      # bit-serial radix, even >= 2 (bit-serial presets only)
      weight_formats:             # each entry: one set of supported weight datatypes,
        - [bitmod4, bitmod3, int8]  # a list, or a named set (the name labels the points):
        - {name: int, formats: [int4, int8]}
      act_bits: [[8]]             # each entry: one set of activation widths (bits)
      buffer_kib:                 # on-chip buffer capacity per buffer name, KiB
        weight: [64, 128]
      dataflow:                   # each entry: the loop nests the array runs (spec dataflow.modes);
        - [accumulate_in_array, output_buffer]   # a list (the mapper picks per layer) or one name
        - output_buffer
      partial_sums: [elide_first_last, read_modify_write]   # spec dataflow.partial_sums
      accumulator_depth: [32, 64] # psum rows per column (spec accumulators.depth); accumulate dataflow only
      dram_technology: [lpddr4, ddr4, hbm2]   # keys of hwq.dram.TECHNOLOGIES (the base's channel count)
      batch: [1, 4]               # images per weight load (energy per image, latency per batch)
    limits:
      max_pes: 1024               # drop points with rows*cols above this (PEs)
      min_pes: 16                 # drop points with rows*cols below this (PEs)

Errors are :class:`hwq.errors.UsageError` naming the offending field, e.g.
``space 'x.yaml': axes.rows[1] must be a positive integer, got -4``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from hwq.errors import UsageError

#: Folder of the shipped spaces (``--space NAME`` resolves ``NAME.yaml`` here).
SPACES_DIR = Path(__file__).resolve().parent / "spaces"
#: What ``--space default`` means.
DEFAULT_SPACE = "edge_dataflow"

#: Axes a space may declare, in the order points are enumerated.
AXES: tuple[str, ...] = ("rows", "cols", "lanes", "bits_per_cycle", "weight_formats", "act_bits", "buffer_kib",
                         "dataflow", "partial_sums", "accumulator_depth", "dram_technology", "batch")
#: Short tags of the dataflow modes and partial-sum policies in point labels.
_DATAFLOW_TAG = {"accumulate_in_array": "acc", "output_buffer": "ob"}
_PSUM_TAG = {"elide_first_last": "elide", "read_modify_write": "rmw"}
_TOP_KEYS = ("name", "base", "description", "axes", "limits")
_LIMIT_KEYS = ("max_pes", "min_pes")
_FORMAT_RE = re.compile(r"^(?P<fmt>[a-z][a-z_]*?)(?P<bits>\d+)$")


@dataclass(frozen=True)
class DesignPoint:
    """One concrete point of a space.

    ``params`` holds only the axes the space declares (JSON-able values: ints, lists of
    ``"fmt<bits>"`` strings, ``{buffer: KiB}``); absent axes keep the base preset's value.
    """

    index: int
    params: Mapping[str, Any]

    @property
    def key(self) -> str:
        """Stable 12-hex-digit identity of the parameters (what resume matches on)."""
        blob = json.dumps(self.params, sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``r16c16l4b2_bitmod4+int8_wbuf128``."""
        p = self.params
        parts = []
        geo = "".join(f"{tag}{p[a]}" for tag, a in (("r", "rows"), ("c", "cols"), ("l", "lanes")) if a in p)
        if "bits_per_cycle" in p:
            geo += f"b{p['bits_per_cycle']}"
        if geo:
            parts.append(geo)
        if "weight_formats" in p:
            wf = p["weight_formats"]
            parts.append(wf["name"] if isinstance(wf, dict) else "+".join(wf))
        if "act_bits" in p:
            parts.append("a" + "+".join(map(str, p["act_bits"])))
        for buf, kib in sorted(p.get("buffer_kib", {}).items()):
            parts.append(f"{buf}{kib}k")
        if "dataflow" in p:
            parts.append("df-" + "+".join(_DATAFLOW_TAG.get(m, m) for m in p["dataflow"]))
        if "accumulator_depth" in p:
            parts.append(f"acc{p['accumulator_depth']}")
        if "partial_sums" in p:
            parts.append(_PSUM_TAG.get(p["partial_sums"], p["partial_sums"]))
        if "dram_technology" in p:
            parts.append(p["dram_technology"])
        if "batch" in p:
            parts.append(f"b{p['batch']}")
        return "_".join(parts) or "base"


@dataclass(frozen=True)
class DesignSpace:
    """A validated design space (see the module docstring for the YAML schema)."""

    name: str
    base: str
    axes: Mapping[str, tuple[Any, ...]]
    limits: Mapping[str, int] = field(default_factory=dict)
    description: str = ""
    source: str = "<dict>"

    def points(self) -> list[DesignPoint]:
        """The cross product of the axes (``limits`` applied), in a stable order."""
        names = [a for a in AXES if a in self.axes]
        value_lists: list[list[Any]] = []
        for a in names:
            if a == "buffer_kib":
                bufs = sorted(self.axes[a])
                value_lists.append([dict(zip(bufs, combo)) for combo in
                                    itertools.product(*(self.axes[a][b] for b in bufs))])
            else:
                value_lists.append(list(self.axes[a]))
        out: list[DesignPoint] = []
        for combo in itertools.product(*value_lists):
            params = {a: (list(v) if isinstance(v, tuple) else v) for a, v in zip(names, combo)}
            pes = params.get("rows", 1) * params.get("cols", 1)
            if ("rows" in params and "cols" in params) and not (
                    self.limits.get("min_pes", 0) <= pes <= self.limits.get("max_pes", pes)):
                continue
            if ("accumulator_depth" in params and "dataflow" in params
                    and "accumulate_in_array" not in params["dataflow"]):
                # the accumulators are not built without the accumulate dataflow: one point, not one per depth
                if params["accumulator_depth"] != self.axes["accumulator_depth"][0]:
                    continue
                del params["accumulator_depth"]
            out.append(DesignPoint(len(out), params))
        if not out:
            raise UsageError(f"space {self.source!r}: limits leave no design point; relax limits.max_pes/min_pes")
        return out


def _err(source: str, fieldname: str, msg: str) -> UsageError:
    return UsageError(f"space {source!r}: {fieldname} {msg}")


def _pos_int(source: str, fieldname: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _err(source, fieldname, f"must be a positive integer, got {v!r}")
    return v


def _list(source: str, fieldname: str, v: Any) -> list[Any]:
    if not isinstance(v, list) or not v:
        raise _err(source, fieldname, f"must be a non-empty list, got {v!r}")
    if len({json.dumps(x, sort_keys=True) for x in v}) != len(v):
        raise _err(source, fieldname, f"has duplicate values: {v!r}")
    return v


def parse_weight_format(text: str) -> tuple[str, int]:
    """``"bitmod4"`` -> ``("bitmod", 4)``; raises ``ValueError`` with the table's message if unknown."""
    from hwq.datatypes import resolve

    m = _FORMAT_RE.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a weight format name like bitmod4, int8, fp4")
    fmt, bits = m.group("fmt"), int(m.group("bits"))
    resolve(fmt, bits)
    return fmt, bits


def _validate_axis(source: str, name: str, raw: Any) -> tuple[Any, ...]:
    f = f"axes.{name}"
    if name == "buffer_kib":
        if not isinstance(raw, dict) or not raw:
            raise _err(source, f, f"must map buffer names to lists of sizes in KiB, e.g. {{weight: [64, 128]}}, got {raw!r}")
        out: dict[str, tuple[int, ...]] = {}
        for buf, sizes in raw.items():
            if not isinstance(buf, str) or not re.match(r"^[a-z][a-z0-9_]*$", buf):
                raise _err(source, f, f"buffer name {buf!r} must be a lower-case identifier")
            out[buf] = tuple(_pos_int(source, f"{f}.{buf}[{i}]", s)
                             for i, s in enumerate(_list(source, f"{f}.{buf}", sizes)))
        return out  # type: ignore[return-value]
    values = _list(source, f, raw)
    if name in ("rows", "cols", "lanes"):
        return tuple(_pos_int(source, f"{f}[{i}]", v) for i, v in enumerate(values))
    if name == "bits_per_cycle":
        for i, v in enumerate(values):
            if _pos_int(source, f"{f}[{i}]", v) < 2 or v % 2:
                raise _err(source, f"{f}[{i}]", f"must be an even number of weight bits per cycle >= 2, got {v!r}")
        return tuple(values)
    if name == "weight_formats":
        out_sets = []
        for i, entry in enumerate(values):
            where = f"{f}[{i}]"
            set_name = None
            if isinstance(entry, dict):  # {name: short-label, formats: [...]}
                for k in entry:
                    if k not in ("name", "formats"):
                        raise _err(source, f"{where}.{k}", "is not a known key; a named set has name and formats")
                set_name = entry.get("name")
                if not isinstance(set_name, str) or not re.match(r"^[A-Za-z0-9_.+-]+$", set_name):
                    raise _err(source, f"{where}.name", f"must be a short label (letters, digits, _ . + -), "
                               f"got {set_name!r}")
                entry, where = entry.get("formats"), f"{where}.formats"
            entry = _list(source, where, entry)
            for j, text in enumerate(entry):
                try:
                    parse_weight_format(text)
                except ValueError as exc:
                    raise _err(source, f"{where}[{j}]", f"is not a known weight format: {exc}") from None
            formats = [str(t) for t in entry]
            out_sets.append({"name": set_name, "formats": formats} if set_name else formats)
        return tuple(out_sets)
    if name == "act_bits":
        out_sets = []
        for i, entry in enumerate(values):
            entry = _list(source, f"{f}[{i}]", entry)
            for j, b in enumerate(entry):
                if _pos_int(source, f"{f}[{i}][{j}]", b) > 16:
                    raise _err(source, f"{f}[{i}][{j}]", f"must be 1..16 activation bits, got {b}")
            out_sets.append(tuple(entry))
        return tuple(out_sets)
    if name == "dataflow":
        from hwq.spec import DATAFLOWS

        out_sets = []
        for i, entry in enumerate(values):
            modes = [entry] if isinstance(entry, str) else _list(source, f"{f}[{i}]", entry)
            for j, mode in enumerate(modes):
                if mode not in DATAFLOWS:
                    where = f"{f}[{i}]" if isinstance(entry, str) else f"{f}[{i}][{j}]"
                    raise _err(source, where, f"must be a dataflow ({', '.join(DATAFLOWS)}), got {mode!r}")
            out_sets.append(tuple(modes))
        if len(set(out_sets)) != len(out_sets):
            raise _err(source, f, f"has duplicate values: {values!r}")
        return tuple(out_sets)
    if name == "partial_sums":
        from hwq.spec import PARTIAL_SUMS

        for i, v in enumerate(values):
            if v not in PARTIAL_SUMS:
                raise _err(source, f"{f}[{i}]", f"must be one of {', '.join(PARTIAL_SUMS)}, got {v!r}")
        return tuple(values)
    if name == "dram_technology":
        from hwq.dram import TECHNOLOGIES

        for i, v in enumerate(values):
            if v not in TECHNOLOGIES:
                raise _err(source, f"{f}[{i}]", f"is not a known DRAM technology {v!r}; known: "
                           f"{', '.join(TECHNOLOGIES)}")
        return tuple(values)
    if name in ("accumulator_depth", "batch"):
        return tuple(_pos_int(source, f"{f}[{i}]", v) for i, v in enumerate(values))
    raise _err(source, f, f"is not a known axis; choose from {', '.join(AXES)}")  # pragma: no cover


def space_from_dict(data: Any, source: str = "<dict>") -> DesignSpace:
    """Validate a parsed YAML mapping and return the :class:`DesignSpace`."""
    if not isinstance(data, dict):
        raise UsageError(f"space {source!r}: top level must be a mapping with name, base and axes")
    for k in data:
        if k not in _TOP_KEYS:
            raise _err(source, str(k), f"is not a known key; allowed: {', '.join(_TOP_KEYS)}")
    for k in ("name", "base", "axes"):
        if k not in data:
            raise _err(source, k, "is missing (required keys: name, base, axes)")
    name, base = data["name"], data["base"]
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]+$", name):
        raise _err(source, "name", f"must be a non-empty identifier (letters, digits, _ . -), got {name!r}")
    if not isinstance(base, str) or not base:
        raise _err(source, "base", f"must be a preset name or spec path, got {base!r}")
    axes_raw = data["axes"]
    if not isinstance(axes_raw, dict) or not axes_raw:
        raise _err(source, "axes", f"must be a non-empty mapping of axis -> values; axes: {', '.join(AXES)}")
    axes: dict[str, tuple[Any, ...]] = {}
    for a, raw in axes_raw.items():
        if a not in AXES:
            raise _err(source, f"axes.{a}", f"is not a known axis; choose from {', '.join(AXES)}")
        axes[a] = _validate_axis(source, a, raw)
    limits_raw = data.get("limits") or {}
    if not isinstance(limits_raw, dict):
        raise _err(source, "limits", f"must be a mapping ({', '.join(_LIMIT_KEYS)}), got {limits_raw!r}")
    limits = {}
    for k, v in limits_raw.items():
        if k not in _LIMIT_KEYS:
            raise _err(source, f"limits.{k}", f"is not a known limit; allowed: {', '.join(_LIMIT_KEYS)}")
        limits[k] = _pos_int(source, f"limits.{k}", v)
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise _err(source, "description", "must be a string")
    return DesignSpace(name, base, axes, limits, desc, source)


def shipped_spaces() -> list[str]:
    """Names of the spaces shipped in ``hwq/codesign/spaces``."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def load_space(name_or_path: str) -> DesignSpace:
    """Load a space from a YAML path, a shipped space name, or ``"default"``."""
    text = str(name_or_path)
    if text == "default":
        text = DEFAULT_SPACE
    path = Path(text)
    if not path.suffix and not path.exists():
        path = SPACES_DIR / f"{text}.yaml"
        if not path.exists():
            raise UsageError(f"unknown design space {name_or_path!r}; give a YAML path or one of: "
                             f"default, {', '.join(shipped_spaces())}")
    if not path.is_file():
        raise UsageError(f"design space file {str(path)!r} not found; give a YAML path or one of: "
                         f"default, {', '.join(shipped_spaces())}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"space {str(path)!r}: malformed YAML{where}; fix the syntax") from None
    return space_from_dict(data, str(path))


#: Rules a point applies to the base spec beyond setting its axes:
#: * ``compute.pe_cycle_energy_pj`` is scaled by ``lanes / base lanes`` and by
#:   ``bits_per_cycle / base bits_per_cycle`` (a PE replicates its lanes and 2-bit shift-add
#:   steps; the same linear rule as the area model, :mod:`hwq.codesign.area`).
#: * SRAM access energy grows with capacity; when a point resizes a buffer, its per-access
#: read/write energies are scaled by sqrt(new/old capacity) (the square-root rule of thumb
#: for SRAM arrays: bit-line and word-line length grow with the side of the array).
#: * ``accumulator_depth`` scales the accumulator register files' access energies by the same
#:   sqrt(new/old depth) rule; a point that adds the ``accumulate_in_array`` dataflow to a base
#:   without accumulators gets the accumulators of :data:`hwq.search.neighbours.ACCUMULATOR_PRESET`
#:   (``bitmod_edge``'s figures, read from that preset).
#: * ``dram_technology`` replaces the base's DRAM figures by the technology's row of
#:   :data:`hwq.dram.TECHNOLOGIES` (per-channel bandwidth x the base's ``channels``; overrides dropped).
#: * ``batch`` sets the spec's deployment batch (``--batch`` on the command line sets the base's).
BUFFER_ENERGY_EXPONENT = 0.5


def point_spec_dict(base: Mapping[str, Any], point: DesignPoint, space_name: str) -> dict[str, Any]:
    """The base spec's mapping (``AcceleratorSpec.to_dict()``) with ``point``'s axes applied."""
    import copy

    d = copy.deepcopy(dict(base))
    p = point.params
    d["name"] = f"{space_name}_p{point.index:03d}"
    d["description"] = f"co-design point {point.index} of space {space_name}: {point.label} (base {base['name']})"
    for axis in ("rows", "cols", "lanes"):
        if axis in p:
            d["array"][axis] = p[axis]
    ar = d["arithmetic"]
    if "bits_per_cycle" in p:
        ar["bits_per_cycle"] = p["bits_per_cycle"]
    # PE energy per cycle scales with the lanes and 2-bit steps the PE replicates (as its area does).
    scale = (d["array"]["lanes"] / base["array"]["lanes"])
    if ar.get("bits_per_cycle") and base["arithmetic"].get("bits_per_cycle"):
        scale *= ar["bits_per_cycle"] / base["arithmetic"]["bits_per_cycle"]
    d["compute"]["pe_cycle_energy_pj"] = base["compute"]["pe_cycle_energy_pj"] * scale
    if "weight_formats" in p:
        fmts: dict[str, list[int]] = {}
        wf = p["weight_formats"]
        for text in (wf["formats"] if isinstance(wf, dict) else wf):
            fmt, bits = parse_weight_format(text)
            fmts.setdefault(fmt, []).append(bits)
        ar["weight_formats"] = [{"format": f, "bits": b} for f, b in fmts.items()]
    if "act_bits" in p:
        ar["act_bits"] = list(p["act_bits"])
    for buf, kib in p.get("buffer_kib", {}).items():
        b = d["buffers"][buf]
        ratio = kib / b["capacity_kib"]
        b["capacity_kib"] = kib
        for k in ("read_energy_pj", "write_energy_pj"):
            b[k] = b[k] * ratio ** BUFFER_ENERGY_EXPONENT
    if "dataflow" in p:
        d.setdefault("dataflow", {})["modes"] = list(p["dataflow"])
    if "partial_sums" in p:
        d.setdefault("dataflow", {})["partial_sums"] = p["partial_sums"]
    modes = (d.get("dataflow") or {}).get("modes", ["output_buffer"])
    if "accumulate_in_array" in modes:
        if d.get("accumulators") is None:
            import dataclasses

            from hwq.search.neighbours import ACCUMULATOR_PRESET
            from hwq.spec import load_spec

            d["accumulators"] = dataclasses.asdict(load_spec(ACCUMULATOR_PRESET).accumulators)
        if "accumulator_depth" in p:
            acc = d["accumulators"]
            ratio = p["accumulator_depth"] / acc["depth"]
            acc["depth"] = p["accumulator_depth"]
            for k in ("read_energy_pj", "write_energy_pj"):
                acc[k] = acc[k] * ratio ** BUFFER_ENERGY_EXPONENT
    elif "dataflow" in p:
        d.pop("accumulators", None)  # not built without the accumulate dataflow (no area, no energy)
    if "dram_technology" in p:
        d["dram"] = {"technology": p["dram_technology"], "channels": int((d.get("dram") or {}).get("channels", 1))}
    if "batch" in p:
        d["batch"] = p["batch"]
    return d


def base_spec(space: DesignSpace, batch: int | None = None):
    """The space's base :class:`hwq.spec.AcceleratorSpec`, at ``batch`` images when given."""
    import dataclasses

    from hwq.spec import load_spec

    base = load_spec(space.base)
    if batch is None:
        return base
    if "batch" in space.axes:
        raise UsageError(f"--batch {batch} fixes the batch, but space {space.name!r} sweeps a batch axis "
                         f"({list(space.axes['batch'])}); drop one of them")
    return dataclasses.replace(base, batch=batch)


def expand(space: DesignSpace, batch: int | None = None) -> list[tuple[DesignPoint, Any]]:
    """Every point with its validated :class:`hwq.spec.AcceleratorSpec`.

    ``batch`` (``hwq codesign --batch``) sets the base spec's batch for every point; it is an
    error for a space that sweeps a ``batch`` axis.

    A point the spec validator rejects (e.g. a weight buffer smaller than two array tiles)
    raises :class:`UsageError` naming the point and the spec field, so the space can be fixed
    (narrow an axis or add a limit).
    """
    from hwq.spec import BUFFER_NAMES, parse_spec

    base = base_spec(space, batch)
    for buf in space.axes.get("buffer_kib", {}):
        if buf not in BUFFER_NAMES:
            raise _err(space.source, f"axes.buffer_kib.{buf}", f"is not a buffer of the spec; choose from "
                       f"{', '.join(BUFFER_NAMES)}")
    if "bits_per_cycle" in space.axes and base.arithmetic.mode != "bit_serial":
        raise _err(space.source, "axes.bits_per_cycle", f"applies to bit-serial bases only; base {space.base!r} "
                   f"is {base.arithmetic.mode}")
    if "accumulator_depth" in space.axes:
        flows = space.axes.get("dataflow", (base.dataflow.modes,))
        if not any("accumulate_in_array" in modes for modes in flows):
            raise _err(space.source, "axes.accumulator_depth", "applies only with the accumulate_in_array dataflow; "
                       f"neither base {space.base!r} nor axes.dataflow runs it")
    base_dict = base.to_dict()
    out = []
    for point in space.points():
        try:
            spec = parse_spec(point_spec_dict(base_dict, point, space.name), f"{space.name} point {point.index}")
        except UsageError as err:
            raise UsageError(f"space {space.source!r}: point {point.index} ({point.label}) is not a valid "
                             f"accelerator: {err}; narrow the axes or add limits") from None
        out.append((point, spec))
    return out
