"""``hwq synth``: synthesise an ``hwq rtl`` folder with Yosys and report resources per block."""

from __future__ import annotations

import argparse

HELP = ("synthesise an `hwq rtl` folder with Yosys; write resources.json / resources.md (LUT, FF, CARRY, DSP, BRAM); "
        "--pnr: place and route on iCE40 (routed Fmax, bitstream)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Folder, ``--target``, ``--json``, ``--blocks``."""
    parser.add_argument("dir", help="folder written by `hwq rtl`")
    parser.add_argument("--target", choices=("xilinx", "xcup", "ice40"), default="xilinx",
                        help="synth_xilinx -noiopad (7-series, default), synth_xilinx -family xcup -uram "
                             "(UltraScale+: DSP48E2, URAM288) or synth_ice40 -dsp")
    parser.add_argument("--blocks", default=None,
                        help="comma-separated block (module) names to synthesise (default: all)")
    parser.add_argument("--json", action="store_true", help="print the resources as JSON")
    parser.add_argument("--pnr", action="store_true",
                        help="(--target ice40) also place and route each block with nextpnr-ice40 in a harness "
                             "that registers its ports: routed Fmax (median over --seeds), utilisation, and an "
                             "icepack bitstream DIR/<block>.<device>.bin")
    parser.add_argument("--device", default=None,
                        help="iCE40 part for --pnr (ice40up5k, ice40hx8k, ...; default: the spec's fpga.device)")
    parser.add_argument("--package", default=None, help="package for --pnr (default: the spec's, else the part's usual)")
    parser.add_argument("--seeds", default=None, help="comma-separated nextpnr seeds for --pnr (default 1,2,3)")
    parser.add_argument("--freq", type=float, default=None,
                        help="nextpnr --freq target in MHz for --pnr (default 100: timing-driven on the critical path)")


def run(args: argparse.Namespace) -> int:
    """Run Yosys on every block, merge into DIR/resources.json, rewrite DIR/resources.md."""
    import json
    from pathlib import Path

    from hwq.atomic import write_text
    from hwq.errors import UsageError
    from hwq.hw.pnr import pnr_markdown
    from hwq.hw.resources import resources_markdown
    from hwq.hw.synth import synthesize

    import shutil

    from hwq.cli import validate as v

    folder = Path(args.dir)
    if folder.is_file():
        raise UsageError(f"{args.dir!r} is a file; give the folder written by `hwq rtl --out`")
    if not folder.is_dir():
        raise UsageError(f"folder {args.dir!r} does not exist; generate it with `hwq rtl --arch PRESET --out {args.dir}`")
    manifest = folder / "blocks.json"
    if not manifest.exists():
        raise UsageError(f"{folder} has no blocks.json; generate it with `hwq rtl --arch PRESET --out {folder}`")
    info = v.json_file(manifest, "blocks.json", "the block list `hwq rtl` writes")
    blocks = info.get("blocks") if isinstance(info, dict) else None
    if not isinstance(blocks, dict) or not blocks or not all(
            isinstance(fs, list) and fs and all(isinstance(f, str) for f in fs) for fs in blocks.values()):
        raise UsageError(f"{manifest} is not an `hwq rtl` block list ({{\"blocks\": {{module: [files]}}}}); "
                         f"regenerate it with `hwq rtl --out {folder}`")
    if args.blocks is not None:
        wanted = [b.strip() for b in args.blocks.split(",") if b.strip()]
        if not wanted:
            raise UsageError(f"--blocks {args.blocks!r} names no block; give comma-separated names from "
                             f"{', '.join(blocks)} (or omit it for all)")
        unknown = [b for b in wanted if b not in blocks]
        if unknown:
            raise UsageError(f"unknown block(s) {', '.join(unknown)}; this folder has {', '.join(blocks)}")
        blocks = {b: blocks[b] for b in wanted}
    missing = sorted({f for fs in blocks.values() for f in fs if not (folder / f).is_file()})
    if missing:
        raise UsageError(f"{folder} lacks {missing[0]}, listed in blocks.json; regenerate it with "
                         f"`hwq rtl --out {folder}`")
    pnr = _pnr_options(args, info.get("spec", folder.name))
    res_path = folder / "resources.json"
    merged = v.json_file(res_path, "resources.json", "resources `hwq synth` wrote") if res_path.exists() else {}
    if not isinstance(merged, dict):
        raise UsageError(f"{res_path} is not a resources table; delete it and rerun")
    v.output_file(res_path, str(res_path))
    # Yosys works in a temp folder outside DIR: removed on success; on failure kept for its log.
    from hwq.paths import make_scratch_dir

    work = make_scratch_dir(f"synth-{args.target}")  # .hwq-synth-T.hwq-tmp-PID-XXXX; the next run removes a kept one
    result = synthesize({top: [folder / f for f in files] for top, files in blocks.items()}, args.target, work)
    shutil.rmtree(work, ignore_errors=True)
    merged.setdefault(args.target, {}).update({top: r["resources"] for top, r in result.items()})
    pnr_lines: list[str] = []
    routed = {}
    if pnr:
        routed = _place_and_route(folder, blocks, info.get("spec", folder.name), pnr)
        merged.setdefault("pnr", {}).setdefault(pnr["device"], {}).update({t: r.to_json() for t, r in routed.items()})
        pnr_lines = pnr_markdown(info.get("spec", folder.name), routed)
    write_text(res_path, json.dumps(merged, indent=2, sort_keys=True) + "\n")
    synth_only = {t: v for t, v in merged.items() if t != "pnr"}
    md = resources_markdown(info.get("spec", folder.name), synth_only, info.get("summaries", {}))
    write_text(folder / "resources.md", md + _pnr_section(merged))
    if args.json:
        out = {args.target: {top: r["resources"] for top, r in result.items()}}
        if routed:
            out["pnr"] = {pnr["device"]: {t: r.to_json() for t, r in routed.items()}}
        print(json.dumps(out, indent=2))
    else:
        print(resources_markdown(info.get("spec", folder.name), {args.target: merged[args.target]},
                                 info.get("summaries", {})) + "\n".join(pnr_lines) + ("\n" if pnr_lines else ""), end="")
    return 0


def _pnr_options(args: argparse.Namespace, spec_name: str) -> dict | None:
    """Validated ``--pnr`` options ``{device, package, seeds, freq}`` (None without ``--pnr``)."""
    from hwq.errors import UsageError
    from hwq.hw.pnr import DEFAULT_SEEDS, DEFAULT_TARGET_MHZ, ICE40_DEVICES, device_args

    given = [n for n in ("device", "package", "seeds", "freq") if getattr(args, n) is not None]
    if not args.pnr:
        if given:
            raise UsageError(f"--{given[0]} only applies with --pnr")
        return None
    if args.target != "ice40":
        raise UsageError("--pnr places and routes on iCE40 only (nextpnr-ice40); add --target ice40")
    device, package = args.device, args.package or ""
    if device is None:
        from hwq.spec import PRESETS, load_spec

        fpga = load_spec(spec_name).fpga if spec_name in PRESETS else None
        if fpga is None or fpga.device.lower() not in ICE40_DEVICES:
            raise UsageError(f"spec {spec_name!r} names no iCE40 device; give --device "
                             f"({', '.join(ICE40_DEVICES)})")
        device, package = fpga.device, package or getattr(fpga, "package", "")
    flag, _pkg = device_args(device, package)
    if args.package is not None:
        _check_package(flag, args.package, device)
    seeds = DEFAULT_SEEDS
    if args.seeds is not None:
        try:
            seeds = tuple(int(x) for x in args.seeds.split(",") if x.strip())
        except ValueError:
            raise UsageError(f"--seeds {args.seeds!r} must be comma-separated integers, e.g. 1,2,3") from None
        if not seeds or len(set(seeds)) != len(seeds):
            raise UsageError(f"--seeds {args.seeds!r} must name distinct integers, e.g. 1,2,3")
    freq = DEFAULT_TARGET_MHZ if args.freq is None else args.freq
    if not (0 < freq <= 1000):
        raise UsageError(f"--freq {args.freq:g} must be a target in MHz in (0, 1000]")
    return {"device": device.lower(), "package": package, "seeds": seeds, "freq": freq}


def _check_package(device_flag: str, package: str, device: str) -> None:
    """``--package`` must be one nextpnr-ice40 knows for ``device``: asked of nextpnr itself (no design
    given, it checks the part and package and exits in milliseconds), before any synthesis."""
    import subprocess

    from hwq.errors import UsageError
    from hwq.hw.pnr import require_tool

    if not package.strip():
        raise UsageError("--package is empty; give the iCE40 package, e.g. sg48 (or omit it for the part's usual)")
    proc = subprocess.run([require_tool("nextpnr-ice40"), device_flag, "--package", package], capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0:
        said = next((ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if "ERROR" in ln),
                    f"exit {proc.returncode}")
        raise UsageError(f"--package {package!r} is not a package of {device} for nextpnr-ice40 ({said.strip()})")


def _place_and_route(folder, blocks: dict, spec_name: str, opt: dict) -> dict:
    """Route every block; copy each bitstream to ``folder/<block>.<device>.bin``; return ``{top: PnrResult}``."""
    import shutil
    import sys

    from hwq.hw.pnr import place_and_route
    from hwq.paths import make_scratch_dir

    out = {}
    for top, files in blocks.items():
        print(f"place and route {top} on {opt['device']} (seeds {','.join(map(str, opt['seeds']))})", file=sys.stderr)
        work = make_scratch_dir(f"pnr-{top[:32]}")
        r = place_and_route([folder / f for f in files], top, work, device=opt["device"], package=opt["package"],
                            seeds=opt["seeds"], target_mhz=opt["freq"])
        dest = folder / f"{top}.{opt['device']}.bin"
        shutil.copyfile(r.bitstream, dest)
        r.bitstream = str(dest)
        shutil.rmtree(work, ignore_errors=True)
        out[top] = r
    return out


def _pnr_section(merged: dict) -> str:
    """Markdown of every routed result kept in resources.json (all devices)."""
    from hwq.errors import UsageError
    from hwq.hw.pnr import PnrResult, pnr_markdown

    lines: list[str] = []
    for device, rows in sorted(merged.get("pnr", {}).items()):
        results = {}
        for top, d in rows.items():
            try:
                results[top] = PnrResult.from_json(d)
            except ValueError as err:
                raise UsageError(f"resources.json has an unreadable P&R entry for {top} ({err}); "
                                 "delete its \"pnr\" section and rerun with --pnr") from None
        lines += pnr_markdown(device, results)
    return "\n".join(lines) + ("\n" if lines else "")
