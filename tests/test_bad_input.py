"""Bad input through every command that takes it (issue 12): exit 1 or 2, exactly one line on
stderr that names the problem, no traceback, and nothing changed on disk. Plus the output-path
policy (hwq.paths) and the determinism of ``hwq explore``'s artefacts.

Each class of bad input is a table row run in-process through ``hwq.cli.main.main``; every
case fails in the validation layer (hwq/cli/validate.py) before any heavy step, so the whole
table takes a few seconds. Only the cache and determinism tests run an explore (digits_cnn).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwq.cli.main import main
from hwq.errors import UsageError

LONG = "n" * 300
DIGITS = ["--model", "digits_cnn", "--budget", "3uJ"]


# ------------------------------------------------------------------------------ helpers
def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _assert_clean_failure(argv, capsys, root: Path, expect: str, codes=(1, 2)) -> str:
    before = _snapshot(root)
    rc, _out, err = _run(argv, capsys)
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc in codes, f"{argv}: exit {rc}, stderr {err!r}"
    assert len(lines) == 1, f"{argv}: expected one stderr line, got {lines}"
    assert "Traceback" not in err and "internal error" not in err, err
    assert expect.lower() in lines[0].lower(), f"{argv}: {lines[0]!r} does not mention {expect!r}"
    assert _snapshot(root) == before, f"{argv} changed files on disk"
    return lines[0]


@pytest.fixture()
def bad(tmp_path: Path, monkeypatch) -> Path:
    """A folder of bad inputs; the cwd and the sensitivity cache live inside it (so litter is seen)."""
    import torch
    from safetensors.torch import save_file

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWQ_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00\x81binary\x00")
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comment.yaml").write_text("# only a comment\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "bin.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    (tmp_path / "list.json").write_text("[1, 2]\n")
    (tmp_path / "afile").write_text("user data\n")
    (tmp_path / "notst.safetensors").write_text("not a safetensors file\n")
    save_file({"w": torch.zeros(0, 4)}, str(tmp_path / "zero.safetensors"))
    save_file({"w": torch.tensor([[1.0, float("nan"), 2.0, 3.0]] * 4)}, str(tmp_path / "nan.safetensors"))
    save_file({"w": torch.tensor([[1.0, float("inf"), 2.0, 3.0]] * 4)}, str(tmp_path / "inf.safetensors"))
    save_file({"w": torch.randn(8, 128)}, str(tmp_path / "ok.safetensors"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "userdir").mkdir()
    (tmp_path / "userdir" / "thesis.tex").write_text("mine\n")
    (tmp_path / "pickled").mkdir()
    np.save(tmp_path / "pickled" / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name, text in (("rtl_corrupt", "{not json"), ("rtl_list", "[1]"), ("rtl_noblocks", '{"spec": "x"}'),
                       ("rtl_missing", '{"spec": "x", "blocks": {"top": ["top.v"]}}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "blocks.json").write_text(text)
    (tmp_path / "rtl_ok").mkdir()
    (tmp_path / "rtl_ok" / "blocks.json").write_text('{"spec": "x", "blocks": {"top": ["top.v"]}}')
    (tmp_path / "rtl_ok" / "top.v").write_text("module top(input a, output b);\n  assign b = a;\nendmodule\n")
    return tmp_path


# ------------------------------------------------------------------------------ the table
#: Bad spec files, by what is wrong: (file, words the message must hold).
BAD_SPECS = [("bin.yaml", "binary"), ("latin1.yaml", "not UTF-8"), ("empty.yaml", "empty"),
             ("comment.yaml", "only comments"), ("list.yaml", "not an accelerator spec"),
             ("broken.yaml", "malformed YAML"), ("folder", "is a folder"), ("nosuch.yaml", "does not exist"), ("nosuch", "unknown accelerator")]
SPEC_COMMANDS = {
    "cost": lambda a: ["cost", "--model", "digits_cnn", "--arch", a],
    "explore": lambda a: ["explore", *DIGITS, "--arch", a],
    "rtl": lambda a: ["rtl", "--arch", a, "--out", "rtl_out"],
    "sim": lambda a: ["sim", "--arch", a, "--layer", "digits_cnn:fc"],
}


@pytest.mark.parametrize("command", SPEC_COMMANDS)
@pytest.mark.parametrize("spec_file,expect", BAD_SPECS, ids=[s for s, _ in BAD_SPECS])
def test_bad_spec_file(bad: Path, capsys, command: str, spec_file: str, expect: str) -> None:
    msg = _assert_clean_failure(SPEC_COMMANDS[command](spec_file), capsys, bad, expect)
    if spec_file.endswith(".yaml"):
        assert msg.count(spec_file) == 1, f"path printed twice: {msg}"


@pytest.mark.parametrize("space_file,expect", [s for s in BAD_SPECS if not s[0].startswith("nosuch")] +
                         [("nosuch.yaml", "not found"), ("nosuch", "unknown design space")])
def test_bad_space_file(bad: Path, capsys, space_file: str, expect: str) -> None:
    expect = expect.replace("an accelerator spec", "a design space")
    _assert_clean_failure(["codesign", *DIGITS, "--space", space_file, "--out", "cs"], capsys, bad, expect)


BAD_PLANS = [("bin.json", "binary"), ("list.json", "not a plan"), ("empty.yaml", "empty"), ("folder", "is a folder"),
             ("nosuch.json", "does not exist"), ("broken.yaml", "not valid JSON")]


@pytest.mark.parametrize("plan,expect", BAD_PLANS, ids=[p for p, _ in BAD_PLANS])
@pytest.mark.parametrize("command", ["cost", "sim"])
def test_bad_plan_file(bad: Path, capsys, command: str, plan: str, expect: str) -> None:
    argv = (["cost", "--model", "digits_cnn", "--plan", plan] if command == "cost"
            else ["sim", "--layer", "digits_cnn:fc", "--plan", plan])
    _assert_clean_failure(argv, capsys, bad, expect)


#: Output paths every command refuses before any work: (path, words of the message).
BAD_OUTPUTS = [("afile/sub", "is a file, not a folder"), ("/proc/hwq_out", "not writable"),
               (LONG, "255"), (f"ok/{LONG}/x", "255"), ("", "empty")]
OUTPUT_COMMANDS = {
    "explore --out": lambda o: ["explore", *DIGITS, "--out", o],
    "rtl --out": lambda o: ["rtl", "--out", o],
    "sim --build-dir": lambda o: ["sim", "--layer", "digits_cnn:fc", "--build-dir", o],
    "codesign --out": lambda o: ["codesign", *DIGITS, "--out", o],
    "quantize -o": lambda o: ["quantize", "ok.safetensors", "-o", o, "--format", "int", "--bits", "4"],
}


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
@pytest.mark.parametrize("out,expect", BAD_OUTPUTS, ids=["under-file", "proc", "long-name", "long-part", "empty"])
def test_bad_output_path(bad: Path, capsys, command: str, out: str, expect: str) -> None:
    _assert_clean_failure(OUTPUT_COMMANDS[command](out), capsys, bad, expect)


@pytest.mark.parametrize("command", ["explore --out", "rtl --out", "codesign --out"])
@pytest.mark.parametrize("out,expect", [("afile", "never replaces a file with a folder"),
                                        ("userdir", "did not write")])
def test_output_folder_never_clobbers_user_data(bad: Path, capsys, command: str, out: str, expect: str) -> None:
    _assert_clean_failure(OUTPUT_COMMANDS[command](out), capsys, bad, expect)
    assert (bad / "afile").read_text() == "user data\n" and (bad / "userdir" / "thesis.tex").exists()


@pytest.mark.parametrize("argv,expect", [
    (["quantize", "ok.safetensors", "-o", "folder", "--format", "int", "--bits", "4"], "is a folder"),
    (["sim", "--layer", "digits_cnn:fc", "--build-dir", "afile"], "existing file"),
], ids=["quantize-o-folder", "sim-build-dir-file"])
def test_file_folder_mixups_on_output(bad: Path, capsys, argv, expect) -> None:
    _assert_clean_failure(argv, capsys, bad, expect)


BUDGETS = [("-1mJ", "negative"), ("1e308GJ", "out of range"), ("0mJ", "positive"), ("2 parsecs", "malformed"),
           ("nanmJ", "malformed"), ("inf J", "malformed"), ("1e400J", "finite"), ("2mj", "unit")]


@pytest.mark.parametrize("budget,expect", BUDGETS, ids=[b for b, _ in BUDGETS])
@pytest.mark.parametrize("command", ["explore", "codesign"])
def test_bad_energy_budget(bad: Path, capsys, command: str, budget: str, expect: str) -> None:
    _assert_clean_failure([command, "--model", "digits_cnn", "--budget", budget], capsys, bad, expect, codes=(2,))


@pytest.mark.parametrize("flag,value,expect", [("--latency", "-5ms", "negative"), ("--latency", "1e308Gs", "range"),
                                               ("--max-size", "-8MB", "negative"), ("--max-size", "8 MiBs", "unit")])
def test_bad_latency_and_size_budgets(bad: Path, capsys, flag, value, expect) -> None:
    _assert_clean_failure(["explore", *DIGITS, flag, value], capsys, bad, expect, codes=(2,))


COUNTS = [
    (["explore", *DIGITS, "--pareto", "1000000"], "--pareto must be between 0 and 100"),
    (["explore", *DIGITS, "--pareto", "-1"], "--pareto"),
    (["explore", *DIGITS, "--calib-samples", "0"], "--calib-samples must be >= 1"),
    (["explore", *DIGITS, "--calib-samples", "-3"], "--calib-samples must be >= 1"),
    (["explore", *DIGITS, "--samples", "0"], "--samples"),
    (["codesign", *DIGITS, "--calib-samples", "0"], "--calib-samples"),
    (["codesign", *DIGITS, "--jobs", "0"], "--jobs"),
    (["sim", "--layer", "digits_cnn:fc", "--rows", "0"], "--rows"),
]


@pytest.mark.parametrize("argv,expect", COUNTS, ids=[" ".join(a[-2:]) + f" {a[0]}" for a, _ in COUNTS])
def test_bad_counts(bad: Path, capsys, argv, expect) -> None:
    _assert_clean_failure(argv, capsys, bad, expect, codes=(2,))


@pytest.mark.parametrize("argv", [
    ["cost", "--model", "nosuch"], ["explore", "--model", "nosuch", "--budget", "3uJ"],
    ["codesign", "--model", "nosuch", "--budget", "3uJ"], ["sim", "--layer", "nosuch:fc"],
], ids=["cost", "explore", "codesign", "sim"])
def test_unknown_model(bad: Path, capsys, argv) -> None:
    _assert_clean_failure(argv, capsys, bad, "unknown model", codes=(2,))


SAFETENSORS = [("zero.safetensors", "no elements"), ("nan.safetensors", "NaN"), ("inf.safetensors", "infinite"),
               ("notst.safetensors", "not a readable safetensors"), ("folder", "is a folder"),
               ("nosuch.safetensors", "does not exist")]
QUANT_FORMATS = [["--format", "int", "--bits", "4", "--group-size", "0"], ["--format", "bitmod", "--bits", "4", "--group-size", "0"],
                 ["--format", "fixed", "--width", "8", "--int-bits", "3", "--json"]]


@pytest.mark.parametrize("fmt", QUANT_FORMATS, ids=["int", "bitmod", "fixed"])
@pytest.mark.parametrize("src,expect", SAFETENSORS, ids=[s for s, _ in SAFETENSORS])
def test_bad_safetensors_input(bad: Path, capsys, src, expect, fmt) -> None:
    _assert_clean_failure(["quantize", src, "-o", "q.safetensors", *fmt], capsys, bad, expect)


@pytest.mark.parametrize("flags,expect", [
    (["--format", "int", "--bits", "4", "--width", "8", "--int-bits", "2"], "only apply to --format fixed"),
    (["--format", "int", "--bits", "4", "--rounding", "RND"], "only apply to --format fixed"),
    (["--format", "bitmod", "--bits", "4", "--unsigned"], "only apply to --format fixed"),
    (["--format", "mx", "--bits", "4", "--group-size", "64"], "does not apply to --format mx"),
    (["--format", "fixed", "--width", "8", "--int-bits", "2", "--bits", "4"], "do not apply to --format fixed"),
    (["--format", "nosuch", "--bits", "4"], "unknown format"),
], ids=["int+width", "int+rounding", "bitmod+unsigned", "mx+group", "fixed+bits", "unknown"])
def test_quantize_flags_that_do_not_apply(bad: Path, capsys, flags, expect) -> None:
    _assert_clean_failure(["quantize", "ok.safetensors", "-o", "q.safetensors", *flags], capsys, bad, expect, codes=(2,))


@pytest.mark.parametrize("argv,expect", [
    (["synth", "rtl_corrupt"], "not valid JSON"), (["synth", "rtl_list"], "not an `hwq rtl` block list"),
    (["synth", "rtl_noblocks"], "block list"), (["synth", "rtl_missing"], "lacks top.v"),
    (["synth", "rtl_ok", "--blocks", ""], "names no block"), (["synth", "rtl_ok", "--blocks", " , "], "names no block"),
    (["synth", "rtl_ok", "--blocks", "nosuch"], "unknown block"), (["synth", "afile"], "is a file"),
    (["synth", "nosuch_dir"], "does not exist"), (["synth", "folder"], "no blocks.json"),
], ids=["corrupt", "list", "no-blocks", "missing-v", "blocks-empty", "blocks-commas", "blocks-unknown", "file",
        "missing", "empty-folder"])
def test_bad_synth_folder(bad: Path, capsys, argv, expect) -> None:
    _assert_clean_failure(argv, capsys, bad, expect)


@pytest.mark.parametrize("argv,expect", [
    (["cost", "--model", "digits_cnn", "--format", "nosuch"], "unknown weight format 'nosuch'"),
    (["cost", "--model", "digits_cnn", "--format", "bitmod", "--weights-bits", "5"], "no 5-bit"),
    (["cost", "--model", "digits_cnn", "--weights-bits", "5"], "no 5-bit weight format"),
    (["cost", "--model", "digits_cnn", "--plan", "p.json", "--format", "int"], "not both"),
], ids=["format-nosuch", "bits-nosuch", "bits-alone-nosuch", "plan+format"])
def test_cost_precision_messages(bad: Path, capsys, argv, expect) -> None:
    _assert_clean_failure(argv, capsys, bad, expect, codes=(2,))


def test_cost_format_or_bits_alone_picks_from_the_accelerator() -> None:
    import argparse

    from hwq.cli.cost_cmd import _uniform_choice
    from hwq.spec import load_spec

    spec = load_spec("bitmod")
    pick = lambda fmt, bits: _uniform_choice(argparse.Namespace(fmt=fmt, weights_bits=bits, act_bits=None), spec)  # noqa: E731
    assert (pick(None, 4).fmt, pick(None, 4).bits) == ("bitmod", 4)  # the first 4-bit format it runs
    assert (pick("int", None).fmt, pick("int", None).bits) == ("int", max(b for f, b in spec.arithmetic.weight_formats
                                                                         if f == "int"))


@pytest.mark.parametrize("calib,expect", [("afile", "is a file, not a folder"), ("nosuch", "does not exist"),
                                          ("pickled", "not a plain tensor")])
def test_bad_calibration_folder(bad: Path, capsys, calib, expect) -> None:
    _assert_clean_failure(["explore", "--model", "resnet18", "--budget", "5mJ", "--calib", calib, "--pareto", "0"],
                          capsys, bad, expect, codes=(2,))


def test_codesign_sim_layer_checked_before_the_sweep(bad: Path, capsys) -> None:
    _assert_clean_failure(["codesign", *DIGITS, "--sim-layer", "nosuch", "--out", "cs"], capsys, bad,
                          "--sim-layer 'nosuch' is not a weight layer", codes=(2,))


@pytest.mark.parametrize("command", [["explore", *DIGITS], ["codesign", *DIGITS, "--out", "cs"]],
                         ids=["explore", "codesign"])
def test_cache_that_is_a_file(bad: Path, capsys, monkeypatch, command) -> None:
    monkeypatch.setenv("HWQ_CACHE_DIR", str(bad / "afile"))
    _assert_clean_failure(command, capsys, bad, "sensitivity cache", codes=(2,))


# ------------------------------------------------------------------------------ property tests
@settings(max_examples=60)
@given(st.text(max_size=12))
def test_energy_text_parses_to_finite_positive_or_usage_error(text: str) -> None:
    from hwq.search.units import parse_energy

    try:
        value = parse_energy(text)
    except UsageError as err:
        assert "\n" not in str(err)
    else:
        assert np.isfinite(value) and value > 0


@settings(max_examples=10)
@given(st.binary(min_size=0, max_size=64))
def test_any_bytes_as_spec_fail_cleanly_or_load(tmp_path_factory, data: bytes) -> None:
    import contextlib
    import io

    root = tmp_path_factory.mktemp("spec")
    (root / "s.yaml").write_bytes(data)
    before = _snapshot(root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(["cost", "--model", "digits_cnn", "--arch", str(root / "s.yaml")])
        except SystemExit as exc:
            rc = exc.code
    lines = [l for l in err.getvalue().splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err.getvalue() and "internal error" not in lines[0]
    assert _snapshot(root) == before


# ------------------------------------------------------------------------------ path policy
def test_policy_accepts_hwq_folders_and_refuses_the_rest(tmp_path: Path) -> None:
    from hwq.paths import MARKER, check_output_dir

    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", "--out", "rtl")
    legacy = tmp_path / "legacy"  # an rtl folder from before the marker: recognised by blocks.json
    legacy.mkdir()
    (legacy / "blocks.json").write_text('{"blocks": {"a": ["a.v"]}}')
    (legacy / "a.v").write_text("module a; endmodule\n")
    (legacy / "resources.json").write_text("{}")
    check_output_dir(legacy, "--out", "rtl")
    (legacy / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="notes.txt"):
        check_output_dir(legacy, "--out", "rtl")
    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / "odd_name.bin").write_text("x")
    (marked / MARKER).write_text(json.dumps({"written_by": "hwq rtl", "files": ["odd_name.bin"]}))
    check_output_dir(marked, "--out", "rtl")
    (marked / "README.md").write_text("a name rtl writes")
    check_output_dir(marked, "--out", "rtl")
    (marked / "thesis.tex").write_text("mine")
    with pytest.raises(UsageError, match="thesis.tex"):
        check_output_dir(marked, "--out", "rtl")
    readme_only = tmp_path / "project"  # a user's folder with a README is not an rtl folder
    readme_only.mkdir()
    (readme_only / "README.md").write_text("my project")
    with pytest.raises(UsageError, match="did not write"):
        check_output_dir(readme_only, "--out", "rtl")


def test_stale_temp_entries_of_dead_runs_are_removed(tmp_path: Path) -> None:
    from hwq.atomic import atomic_dir
    from hwq.paths import TMP_TAG

    dest = tmp_path / "out"
    dead = tmp_path / f".out{TMP_TAG}999999999-abc"  # no such PID
    live = tmp_path / f".out{TMP_TAG}{os.getpid()}-abc"  # this process: still running
    legacy = tmp_path / ".out.tmpab12cd"  # report.py's old temp name, holding a plan
    for d in (dead, live, legacy):
        d.mkdir()
    (legacy / "plan.json").write_text('{"schema": "hwq.plan/1"}')
    user = tmp_path / ".out.tmp_mine"  # same prefix, but not hwq output
    user.mkdir()
    (user / "data.txt").write_text("mine")
    with atomic_dir(dest, marker="hwq test") as tmp:
        (tmp / "f").write_text("x")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["out", live.name, user.name])
    assert json.loads((dest / ".hwq-output").read_text())["files"] == ["f"]


def test_atomic_dir_never_replaces_a_file(tmp_path: Path) -> None:
    from hwq.atomic import atomic_dir

    (tmp_path / "f").write_text("keep")
    with pytest.raises(UsageError, match="never replaces"):
        with atomic_dir(tmp_path / "f") as tmp:
            (tmp / "x").write_text("1")
    assert (tmp_path / "f").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_sigterm_unwinds_so_temp_folders_are_removed() -> None:
    import signal

    from hwq.cli.main import _exit_on_sigterm

    previous = _exit_on_sigterm()
    try:
        with pytest.raises(SystemExit) as exc:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                sum(range(100))
        assert exc.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------ explore runs (digits_cnn)
@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    """One explore of digits_cnn with a fresh cache: (workdir, cache dir, artefact bytes)."""
    root = tmp_path_factory.mktemp("explore")
    cache = root / "cache"
    old_env, old_cwd = os.environ.get("HWQ_CACHE_DIR"), os.getcwd()
    os.environ["HWQ_CACHE_DIR"] = str(cache)
    os.chdir(root)
    try:
        assert main(["explore", *DIGITS, "--pareto", "2", "--out", "out"]) == 0
    finally:
        os.chdir(old_cwd)
        if old_env is None:
            os.environ.pop("HWQ_CACHE_DIR", None)
        else:
            os.environ["HWQ_CACHE_DIR"] = old_env
    files = {n: (root / "out" / n).read_bytes() for n in ("plan.json", "plan.csv", "report.md")}
    return root, cache, files


def test_explore_twice_gives_byte_identical_artefacts(explored, monkeypatch, capsys) -> None:
    root, cache, first = explored
    monkeypatch.chdir(root)
    monkeypatch.setenv("HWQ_CACHE_DIR", str(cache))
    from hwq.paths import TMP_TAG

    (root / f".out{TMP_TAG}999999999-zz").mkdir()  # litter of a SIGKILLed run
    rc, _out, err = _run(["explore", *DIGITS, "--pareto", "2", "--out", "out"], capsys)
    assert rc == 0, err
    for name, data in first.items():
        assert (root / "out" / name).read_bytes() == data, f"{name} differs between two identical runs"
    plan = json.loads(first["plan.json"])
    assert "solve_time_s" not in plan["solver"] and "compute_s" not in plan["sensitivity_detail"]
    assert set(json.loads((root / "out" / "timings.json").read_text())) >= {"ilp_s", "total_s"}
    assert sorted(p.name for p in root.iterdir()) == ["cache", "out"]


@pytest.mark.parametrize("damage,expect", [("folder", "is not a regular file"), ("nan", "NaN"),
                                           ("shape", "shape"), ("missing_key", "lacks the array")])
def test_bad_cache_entry_is_named(explored, tmp_path: Path, monkeypatch, capsys, damage, expect) -> None:
    _root, cache, _ = explored
    mine = tmp_path / "cache"
    shutil.copytree(cache, mine)
    [entry] = list((mine / "sensitivity").glob("*.npz"))
    if damage == "folder":
        entry.unlink()
        entry.mkdir()
    else:
        z = dict(np.load(entry))
        if damage == "nan":
            z["values"] = np.full_like(z["values"], np.nan)
        elif damage == "shape":
            z["values"], z["allowed"] = z["values"][:, :2], z["allowed"][:, :2]
        else:
            del z["weight_trace"]
        np.savez(entry, **z)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWQ_CACHE_DIR", str(mine))
    msg = _assert_clean_failure(["explore", *DIGITS, "--pareto", "0", "--out", "o"], capsys, tmp_path, expect)
    assert "sensitivity cache entry" in msg and "--no-cache" in msg


# ------------------------------------------------------------------------------ commands added since (sweep section 8)
@pytest.fixture()
def plan_file(bad: Path) -> Path:
    """A digits_cnn plan.json as hwq explore writes it (one layer list; validation never reads further)."""
    layers = [{"name": n, "format": "int", "bits": 8, "act_bits": 8, "group_size": 128}
              for n in ("stem_conv", "block_conv1", "block_conv2", "fc")]
    p = bad / "plan.json"
    p.write_text(json.dumps({"schema": "hwq.plan/1", "inputs": {"model": "digits_cnn", "arch": "fpga_zu"},
                             "layers": layers}))
    (bad / "wrong_schema.json").write_text(json.dumps({"schema": "other/1", "rows": [1]}))
    (bad / "space_type.yaml").write_text("name: t\nbase: bitmod_small\naxes:\n  rows: [eight, 16]\n")
    (bad / "space_axis.yaml").write_text("name: t\nbase: bitmod_small\naxes:\n  nosuch_axis: [1, 2]\n")
    (bad / "bad.pt2").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    (bad / "build.py").write_text("def build():\n    raise SystemExit('must not be called')\n")
    return p


EXPORT = ["export", "--plan", "plan.json"]
NEW_COMMANDS = [
    (["export", "--plan", "bin.json", "--to", "qonnx", "m.onnx"], "binary"),
    (["export", "--plan", "empty.yaml", "--to", "qonnx", "m.onnx"], "empty"),
    (["export", "--plan", "wrong_schema.json", "--to", "qonnx", "m.onnx"], "not a plan"),
    ([*EXPORT, "--to", "hls4ml", "userdir"], "did not write"),
    ([*EXPORT, "--to", "hls4ml", "afile"], "existing file"),
    ([*EXPORT, "--to", "qonnx", "folder"], "is a folder"),
    ([*EXPORT, "--to", "qonnx", "afile/m.onnx"], "is a file, not a folder"),
    ([*EXPORT, "--to", "hls4ml", "--fixed", "h"], "--fixed is for --to qonnx"),
    ([*EXPORT, "--to", "qonnx", "--check", "m.onnx"], "--check is for --to hls4ml"),
    ([*EXPORT, "--model", "resnet18", "--to", "hls4ml", "--check", "h"], "needs --model digits_cnn"),
    ([*EXPORT, "--to", "hls4ml", "--arch", "bin.yaml", "h"], "binary"),
    ([*EXPORT, "--to", "hls4ml", "--arch", "bitmod", "h"], "needs an FPGA preset"),
    ([*EXPORT, "--to", "qonnx", "--arch", "fpga_zu", "m.onnx"], "--arch only applies"),
    ([*EXPORT, "--to", "qonnx", "--weights", "nosuch.pt", "m.onnx"], "--weights 'nosuch.pt' does not exist"),
    (["synth", "rtl_ok", "--target", "ice40", "--pnr", "--device", "nosuch"], "device 'nosuch'"),
    (["synth", "rtl_ok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--package", "nosuch"], "package"),
    (["synth", "rtl_ok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--seeds", "a,b"], "--seeds"),
    (["synth", "rtl_ok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--seeds", ""], "--seeds"),
    (["synth", "rtl_ok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--freq", "-5"], "--freq"),
    (["synth", "rtl_ok", "--target", "ice40", "--pnr", "--device", "ice40up5k", "--freq", "nan"], "--freq"),
    (["synth", "rtl_ok", "--pnr"], "add --target ice40"),
    (["synth", "rtl_ok", "--target", "ice40", "--device", "ice40up5k"], "only applies with --pnr"),
    (["finetune", "--plan", "bin.json"], "binary"),
    (["finetune", "--plan", "wrong_schema.json"], "not a plan"),
    (["finetune", "--plan", "plan.json", "--steps", "0"], "--steps must be >= 1"),
    (["finetune", "--plan", "plan.json", "--steps", "-1"], "--steps must be >= 1"),
    (["finetune", "--plan", "plan.json", "--lr", "nan"], "--lr must be a finite number"),
    (["finetune", "--plan", "plan.json", "--lr", "inf"], "--lr must be a finite number"),
    (["finetune", "--plan", "plan.json", "--temperature", "-inf"], "--temperature"),
    (["finetune", "--plan", "plan.json", "--out", "folder"], "is a folder"),
    (["finetune", "--plan", "plan.json", "--out", "afile/ft.pt"], "is a file, not a folder"),
    (["finetune", "--plan", "plan.json", "--weights", "folder"], "is a folder"),
    (["codesign", *DIGITS, "--address", "localhost:1"], "use it with --executor ray"),
    (["codesign", *DIGITS, "--executor", "ray", "--address", ""], "--address is empty"),
    (["codesign", *DIGITS, "--samples", "0"], "--samples must be >= 1"),
    (["codesign", *DIGITS, "--sampler", "tpe"], "give --samples"),
    (["codesign", *DIGITS, "--space", "space_type.yaml"], "axes.rows"),
    (["codesign", *DIGITS, "--space", "space_axis.yaml"], "nosuch_axis"),
    (["codesign", *DIGITS, "--max-retries", "-1"], "--max-retries"),
    (["bench", "nosuch"], "unknown benchmark"),
    (["cost", "--model", "build.py:missing"], "no callable 'missing'"),
    (["cost", "--model", "afile"], "not a torch.export .pt2"),
    (["cost", "--model", "folder"], "without config.json"),
    (["cost", "--model", "bad.pt2"], "not a zip archive"),
    (["sim", "--network", "nosuch"], "not supported"),
    (["sim", "--network", "digits_cnn", "--images", "0"], "--images must be >= 1"),
    (["sim", "--network", "digits_cnn", "--report", "afile/r.md"], "is a file, not a folder"),
    (["sim", "--network", "digits_cnn", "--rows", "4"], "--rows only applies with --layer"),
    (["sim", "--layer", "digits_cnn:fc", "--images", "3"], "--images only applies with --network"),
    (["sim", "--layer", "digits_cnn:fc", "--build-dir", "userdir"], "did not write"),
    (["sim", "--network", "digits_cnn", "--build-dir", "userdir"], "did not write"),
    (["sim", "--layer", "digits_cnn:nosuch", "--build-dir", "new_build"], "has no layer"),  # no new folder left
]


@pytest.mark.parametrize("argv,expect", NEW_COMMANDS, ids=[" ".join(a[:1] + a[-3:]) for a, _ in NEW_COMMANDS])
def test_commands_added_since(bad: Path, plan_file: Path, capsys, argv, expect) -> None:
    _assert_clean_failure(argv, capsys, bad, expect, codes=(2,))


def test_work_folder_policy_and_marker(tmp_path: Path) -> None:
    """sim --build-dir / export --to hls4ml: new, empty or marked folders only; hwq marks the folder first."""
    from hwq.paths import MARKER, check_work_dir, claim_work_dir

    check_work_dir(tmp_path / "new", "--build-dir")
    (tmp_path / "empty").mkdir()
    check_work_dir(tmp_path / "empty", "--build-dir")
    claim_work_dir(tmp_path / "empty", "hwq sim")
    (tmp_path / "empty" / "sim_build").mkdir()  # what the simulator writes
    check_work_dir(tmp_path / "empty", "--build-dir")  # marked: used again
    assert json.loads((tmp_path / "empty" / MARKER).read_text())["written_by"] == "hwq sim"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="did not write"):
        check_work_dir(tmp_path / "mine", "--build-dir")
    with pytest.raises(UsageError, match="existing file"):
        check_work_dir(tmp_path / "mine" / "notes.txt", "--build-dir")


# ------------------------------------------------------------------------------ temp entries of killed runs
DEAD = 999999999  # no such PID


def test_sigkill_mid_write_leaves_a_temp_the_next_write_removes(tmp_path: Path) -> None:
    """A real SIGKILL of a process inside hwq.atomic's write (file and folder); the next write cleans up."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys, time\nfrom hwq.atomic import atomic_path, atomic_dir\n"
            "with atomic_path(sys.argv[1]) as t, atomic_dir(sys.argv[2]) as d:\n"
            "    t.write_text('half'); (d / 'plan.json').write_text('half')\n"
            "    print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "f.json"), str(tmp_path / "out")],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(f".hwq-tmp-{proc.pid}-" in n for n in left), left
    time.sleep(0.05)
    from hwq.atomic import atomic_dir, write_text

    write_text(tmp_path / "f.json", "{}")
    with atomic_dir(tmp_path / "out") as d:
        (d / "plan.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json", "out"]


def test_stale_sensitivity_cache_temps_are_removed(tmp_path: Path, monkeypatch) -> None:
    """Temps a killed cache write left (this scheme and the old KEY.tmpPID.npz) go on the next run; a live one stays."""
    import torch

    from hwq.cost import Choice
    from hwq.search.sensitivity import compute_sensitivity

    monkeypatch.setenv("HWQ_CACHE_DIR", str(tmp_path / "c"))
    sens = tmp_path / "c" / "sensitivity"
    sens.mkdir(parents=True)
    stale = [f"{'ab' * 16}.tmp{DEAD}.npz", f".{'cd' * 16}.npz.hwq-tmp-{DEAD}-x1.npz"]
    live = f".{'ef' * 16}.npz.hwq-tmp-{os.getpid()}-x2.npz"
    for name in [*stale, live]:
        (sens / name).write_bytes(b"PK half")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4))
    compute_sensitivity(model, ["0"], [Choice("int", 8, 8)], [torch.randn(4, 8)], group_size=8, samples=1,
                        max_samples=4, progress=False)
    names = sorted(p.name for p in sens.iterdir())
    assert live in names and not set(stale) & set(names)
    assert [n for n in names if n.endswith(".npz") and not n.startswith(".")]  # the new entry was written


def test_stale_codesign_json_temps_are_removed(tmp_path: Path) -> None:
    from hwq.codesign.driver import write_json

    for name in (f".summary.json.tmp{DEAD}", f".results.jsonl.tmp{DEAD}", f".summary.json.hwq-tmp-{DEAD}-zz"):
        (tmp_path / name).write_text("{half")
    (tmp_path / "notes.tmp123").write_text("mine: not hwq's name scheme")
    write_json(tmp_path / "summary.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp123", "summary.json"]


def test_stale_scratch_folders_are_removed(tmp_path: Path, monkeypatch) -> None:
    """$TMPDIR/.hwq-LABEL.hwq-tmp-PID-XXXX (sim, synth, codesign stages): a dead run's goes, a live one stays."""
    import tempfile

    from hwq.paths import TMP_TAG, scratch_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead, live = tmp_path / f".hwq-synth-xilinx{TMP_TAG}{DEAD}-a", tmp_path / f".hwq-synth-xilinx{TMP_TAG}1-b"
    for d in (dead, live):
        d.mkdir()
        (d / "yosys_xilinx.log").write_text("log")
    with scratch_dir("synth-xilinx") as work:
        assert work.parent == tmp_path and f"{TMP_TAG}{os.getpid()}-" in work.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]  # PID 1 runs; the own one is removed


def test_codesign_summary_holds_no_wall_times() -> None:
    """summary.json is the same for the same command: every wall time goes to timings.json."""
    from hwq.codesign.driver import CodesignResult
    from hwq.codesign.space import load_space

    extra = {"pipeline": {"executor": "local", "seconds": 1.5, "worker_seconds_per_stage": {"cost": 0.4}},
             "synth": {"3": {"ok": True, "seconds": 2.0, "resources": {"LUT": 10}}},
             "cosim": {"3": {"ok": True, "layer": "fc", "wall_s": 1.0, "build_dir": "/tmp/x"}}}
    r = CodesignResult("digits_cnn", 3e6, load_space("default"), [], [], None, [], None, [], "hessian", 1.25, 7.5,
                       Path("o"), extra=extra)
    text = json.dumps(r.summary())
    for key in ("seconds", "wall_s", "build_dir", "sweep_seconds", "sensitivity_seconds"):
        assert key not in text, key
    assert json.loads(text)["synth"]["3"]["resources"] == {"LUT": 10}
    t = r.timings()
    assert t["sensitivity_s"] == 1.25 and t["sweep_s"] == 7.5 and t["pipeline_s"] == 1.5
    assert t["synth_s_by_point"] == {"3": 2.0}


def test_mx_group_size_other_than_its_block_names_the_flag(bad: Path, capsys) -> None:
    from hwq.datatypes import MX_BLOCK

    for g in (0, 16, 64):
        _assert_clean_failure(["quantize", "ok.safetensors", "-o", "q.safetensors", "--format", "mx", "--bits", "4",
                               "--group-size", str(g)], capsys, bad, f"--group-size {g}", codes=(2,))
    rc, _out, err = _run(["quantize", "ok.safetensors", "-o", "q.safetensors", "--format", "mx", "--bits", "4",
                          "--group-size", str(MX_BLOCK)], capsys)
    assert rc == 0, err


def test_pnr_package_is_asked_of_nextpnr() -> None:
    """--package: nextpnr-ice40 itself says which packages a part has (a real one passes, a made-up one not)."""
    from hwq.cli.synth_cmd import _check_package

    _check_package("--up5k", "sg48", "ice40up5k")
    with pytest.raises(UsageError, match="Unsupported package 'cm81'"):
        _check_package("--up5k", "cm81", "ice40up5k")


def test_committed_sweep_report_covers_every_case_and_passes() -> None:
    """reports/bad_input.md (scripts/bad_input_sweep.py) has one row per sweep case and no failing after-cell."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bad_input_sweep", root / "scripts" / "bad_input_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["bad_input_sweep"] = sweep  # dataclasses look their module up
    try:
        spec.loader.exec_module(sweep)
    finally:
        del sys.modules["bad_input_sweep"]
    ids = [c.cid for c in sweep.CASES]
    assert len(ids) == len(set(ids))
    rows = [ln for ln in (root / "reports" / "bad_input.md").read_text().splitlines() if ln.startswith("| ")]
    assert sorted(ln.split(" | ")[0][2:] for ln in rows if not ln.startswith(("| #", "| ---", "| **"))) == sorted(ids)
    assert not any("**FAIL**" in ln for ln in rows)
