"""``hwq synth``: synthesise an ``hwq rtl`` folder with Yosys and report resources per block."""

from __future__ import annotations

import argparse

HELP = "synthesise an `hwq rtl` folder with Yosys; write resources.json / resources.md (LUT, FF, CARRY, DSP, BRAM)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Folder, ``--target``, ``--json``, ``--blocks``."""
    parser.add_argument("dir", help="folder written by `hwq rtl`")
    parser.add_argument("--target", choices=("xilinx", "ice40"), default="xilinx",
                        help="synth_xilinx -noiopad (default) or synth_ice40 -dsp")
    parser.add_argument("--blocks", default=None,
                        help="comma-separated block (module) names to synthesise (default: all)")
    parser.add_argument("--json", action="store_true", help="print the resources as JSON")


def run(args: argparse.Namespace) -> int:
    """Run Yosys on every block, merge into DIR/resources.json, rewrite DIR/resources.md."""
    import json
    from pathlib import Path

    from hwq.atomic import write_text
    from hwq.errors import UsageError
    from hwq.hw.resources import resources_markdown
    from hwq.hw.synth import synthesize

    folder = Path(args.dir)
    manifest = folder / "blocks.json"
    if not manifest.exists():
        raise UsageError(f"{folder} has no blocks.json; generate it with `hwq rtl --arch PRESET --out {folder}`")
    info = json.loads(manifest.read_text())
    blocks = info["blocks"]
    if args.blocks:
        wanted = [b.strip() for b in args.blocks.split(",") if b.strip()]
        unknown = [b for b in wanted if b not in blocks]
        if unknown:
            raise UsageError(f"unknown block(s) {', '.join(unknown)}; this folder has {', '.join(blocks)}")
        blocks = {b: blocks[b] for b in wanted}
    result = synthesize({top: [folder / f for f in files] for top, files in blocks.items()}, args.target,
                        folder / f".synth_{args.target}")
    res_path = folder / "resources.json"
    merged = json.loads(res_path.read_text()) if res_path.exists() else {}
    merged.setdefault(args.target, {}).update({top: r["resources"] for top, r in result.items()})
    write_text(res_path, json.dumps(merged, indent=2, sort_keys=True) + "\n")
    write_text(folder / "resources.md", resources_markdown(info.get("spec", folder.name), merged,
                                                          info.get("summaries", {})))
    if args.json:
        print(json.dumps({args.target: {top: r["resources"] for top, r in result.items()}}, indent=2))
    else:
        print(resources_markdown(info.get("spec", folder.name), {args.target: merged[args.target]},
                                 info.get("summaries", {})), end="")
    return 0
