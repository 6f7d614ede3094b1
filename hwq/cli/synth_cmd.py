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

    import shutil
    import tempfile

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
    res_path = folder / "resources.json"
    merged = v.json_file(res_path, "resources.json", "resources `hwq synth` wrote") if res_path.exists() else {}
    if not isinstance(merged, dict):
        raise UsageError(f"{res_path} is not a resources table; delete it and rerun")
    v.output_file(res_path, str(res_path))
    # Yosys works in a temp folder outside DIR: removed on success; on failure kept for its log.
    work = Path(tempfile.mkdtemp(prefix=f"hwq_synth_{args.target}_"))
    result = synthesize({top: [folder / f for f in files] for top, files in blocks.items()}, args.target, work)
    shutil.rmtree(work, ignore_errors=True)
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
