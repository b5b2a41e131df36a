"""128 bad inputs through the real CLI (``python -m synthmed ...`` subprocesses), issue #16.

Each case gets a fresh temp folder, builds its bad input there with nibabel / pydicom /
Pillow / numpy (the builders of tests/bad_inputs, reused), runs one command and records the
exit code, whether stderr holds a traceback, whether stderr is one ``error:`` line naming the
file/key, and whether anything new was written. Classes: ok, traceback, silent acceptance
(exit 0 on bad input), multi-line (stderr is not one ``error:`` line), wrote-files.
Training cases use ``--quick --set train.steps=2`` on 4 images of 16x16.

    OMP_NUM_THREADS=1 python benchmarks/bad_inputs_probe.py [--jobs 2] [--only NAME ...]

Writes benchmarks/results/bad_inputs_probe.json and .md (counts per class, non-ok cases).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bad_inputs import helpers  # noqa: E402
from tests.bad_inputs import test_commands as cmds  # noqa: E402
from tests.bad_inputs import test_readers as readers  # noqa: E402
from tests.bad_inputs import test_sources as sources  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TINY = ["--quick", "--set", "train.steps=2", "--quiet"]
CASES: dict[str, object] = {}
"""name -> build(tmp, shared, stack) -> (args, needles); ``stack`` holds cleanups."""
EXTRA: dict[str, object] = {}
"""Cases left out of the 128 (``--all`` runs them too): variants of a kind already probed."""
LEFT_OUT = set(
    """
data/png_constant_8_bit data/png_label_outside_label_values data/png_label_unreadable
data/tif_constant data/tif_inf data/gif_constant data/jpeg_constant data/nifti_constant
data/nifti_label_fractional data/dicom_constant data/npy_constant data/npy_five_dimensional
data/series_no_dicom data/unsupported_ending data/png_empty_file data/folder_two_link_loop
data/folder_duplicate_id data/folder_missing_root data/folder_glob_matches_nothing
data/folder_bad_regex data/folder_name_without_id data/folder_mask_wrong_shape
data/csv_no_image_column data/csv_header_only data/csv_unknown_class_name
data/csv_repeated_column data/csv_missing_image data/npz_constant_image data/npz_missing_key
data/npz_class_beyond_names data/config_unknown_key data/config_top_level_list
data/config_unknown_preset data/config_is_a_folder data/config_device_not_a_device
usage/train_unknown_preset usage/train_no_config usage/train_bad_budget
usage/report_missing_argument checkpoint/resume_empty checkpoint/resume_plain_pickle
checkpoint/resume_foreign_torch_file
""".split()
) | {f"package/show_{name}" for name in cmds.PACKAGES}


def case(name: str):
    def register(build):
        (EXTRA if name in LEFT_OUT else CASES)[name] = build
        return build

    return register


def _train(config: Path, tmp: Path, *extra) -> list:
    return ["train", config, "--out", tmp / "out", *TINY, *extra]


def _good(tmp: Path) -> Path:
    return helpers.run_config(tmp, helpers.folder_source(helpers.folder_data(tmp)))


def _run(shared, tmp: Path) -> Path:
    return Path(shutil.copytree(shared["run"], tmp / "run", symlinks=True))


def _package(shared, tmp: Path) -> Path:
    return Path(shutil.copytree(shared["package"], tmp / "tiny.synthmed"))


def _sample(run: Path, tmp: Path, *extra) -> list:
    return ["sample", run, "--device", "cpu", "-q", "--out", tmp / "s", *extra]


# --------------------------------------------------------------------------- data files

for _name, _build in {**readers.CASES, **sources.CASES}.items():

    def _data_case(tmp, shared, stack, build=_build):
        config, needles = build(tmp)  # the run YAML itself sets train.steps=1 (a bad one
        return ["train", config, "--out", tmp / "out", "--quick", "--quiet"], needles  # stays)

    case(f"data/{_name}")(_data_case)


def _nifti_case(tmp, header_edit):
    config, bad = readers._case(tmp, ".nii")
    raw = bytearray(bad.read_bytes())
    header_edit(raw)
    bad.write_bytes(bytes(raw))
    return _train(config, tmp), [bad.name]


# (A NaN scl_slope was case "nifti_scl_slope_nan" until 2026-12-03: it is not bad input but
# nibabel's own default for "unscaled", which nibabel writes itself, so it is accepted.)
@case("data/nifti_scl_inter_inf")
def _(tmp, shared, stack):
    return _nifti_case(tmp, lambda raw: raw.__setitem__(slice(116, 120), b"\0\0\x80\x7f"))


@case("data/nifti_scl_slope_inf")
def _(tmp, shared, stack):
    return _nifti_case(tmp, lambda raw: raw.__setitem__(slice(112, 116), b"\0\0\x80\x7f"))


@case("data/nifti_bad_datatype")
def _(tmp, shared, stack):
    return _nifti_case(tmp, lambda raw: raw.__setitem__(slice(70, 72), b"\xe7\x03"))


@case("data/csv_huge_class")
def _(tmp, shared, stack):
    text = "image,label,class\n" + sources._ROWS.replace(",1\n", ",100000000000000000000\n", 1)
    return _train(sources._csv(tmp, text), tmp), ["manifest.csv", "100000000000000000000"]


@case("data/csv_file_name_too_long")
def _(tmp, shared, stack):
    text = "image,label,class\n" + sources._ROWS + "images/" + "a" * 300 + ".png,,1\n"
    return _train(sources._csv(tmp, text), tmp), ["aaaa"]


@case("data/csv_empty_image_cell")
def _(tmp, shared, stack):
    text = "image,label,class\n" + sources._ROWS + ",labels/case00.png,1\n"
    return _train(sources._csv(tmp, text), tmp), ["manifest.csv"]


@case("data/npz_huge_class")
def _(tmp, shared, stack):
    return _train(sources._npz(tmp, train_labels=np.array([[0], [1], [2**62], [1]])), tmp), [
        "data.npz"
    ]


@case("data/series_one_slice_unreadable")
def _(tmp, shared, stack):
    config, bad = readers._series(tmp)
    (bad / "s1.dcm").write_bytes(b"DICM? no")
    return _train(config, tmp), ["case01"]


@case("data/symlink_loop_folder")
def _(tmp, shared, stack):
    data = helpers.folder_data(tmp)
    (data / "images" / "loopdir").symlink_to("loopdir")
    config = helpers.run_config(tmp, helpers.folder_source(data, image_glob="images/**/*.png"))
    return _train(config, tmp), ["loopdir"]


# --------------------------------------------------------------------------- usage

USAGE = {
    "train_unknown_option": (["train", "--preset", "demo", "--epochs", "3"], ["--epochs"]),
    "sample_missing_argument": (["sample"], ["Missing argument"]),
    "sample_bad_int": (["sample", "RUN", "--n", "ten"], ["--n"]),
    "export_missing_format": (["export", "RUN"], ["--format"]),
    "unknown_command": (["reticulate"], ["reticulate"]),
    "models_unknown_command": (["models", "explode"], ["explode"]),
    "set_without_value": (["train", "--preset", "demo", "--set"], ["--set"]),
    "evaluate_bad_int": (["evaluate", "RUN", "--seeds", "1.5"], ["--seeds"]),
    "sample_bad_float": (["sample", "RUN", "--threshold", "high"], ["--threshold"]),
    "evaluate_missing_argument": (["evaluate"], ["Missing argument"]),
    "report_missing_argument": (["report"], ["Missing argument"]),
    "train_unknown_preset": (["train", "--preset", "nope", "--dry-run"], ["nope"]),
    "train_no_config": (["train"], ["--preset"]),
    "train_bad_budget": (["train", "--preset", "demo", "--budget", "soon", "--dry-run"], ["soon"]),
    "train_bad_override": (
        ["train", "--preset", "demo", "--set", "train.steps", "--dry-run"],
        ["train.steps"],
    ),  # fmt: skip
    "train_unknown_override_key": (
        ["train", "--preset", "demo", "--set", "train.stepz=3", "--dry-run"],
        ["train.stepz"],
    ),
    "train_nproc_zero": (["train", "--preset", "demo", "--quick", "--nproc", "0"], ["--nproc"]),
}
for _name, (_args, _needles) in USAGE.items():
    case(f"usage/{_name}")(lambda tmp, shared, stack, a=_args, n=_needles: (a, n))


@case("usage/data_file_missing")
def _(tmp, shared, stack):
    return ["train", "--preset", "demo", "--data", tmp / "no.yaml", "--dry-run"], ["no.yaml"]


@case("usage/data_file_not_utf8")
def _(tmp, shared, stack):
    (tmp / "d.yaml").write_bytes(b"train: {kind: folders, root: caf\xe9}\n")
    return ["train", "--preset", "demo", "--data", tmp / "d.yaml", "--dry-run"], ["d.yaml"]


# --------------------------------------------------------------------------- output folders


@case("out/train_out_is_file")
def _(tmp, shared, stack):
    config = _good(tmp)
    (tmp / "out").write_text("notes")
    return _train(config, tmp), ["out"]


@case("out/train_out_below_file")
def _(tmp, shared, stack):
    config = _good(tmp)
    (tmp / "notes").write_text("notes")
    return ["train", config, "--out", tmp / "notes" / "run", *TINY], ["notes"]


@case("out/train_out_read_only")
def _(tmp, shared, stack):
    config = _good(tmp)
    stack.enter_context(helpers.read_only(tmp / "locked"))
    return ["train", config, "--out", tmp / "locked" / "run", *TINY], ["locked"]


@case("out/train_into_trained_run")
def _(tmp, shared, stack):
    return ["train", _good(tmp), "--out", _run(shared, tmp), *TINY], ["run"]


@case("out/resume_without_checkpoint")
def _(tmp, shared, stack):
    config = _good(tmp)
    (tmp / "out").mkdir()
    return _train(config, tmp, "--resume"), ["out"]


@case("out/sample_out_is_file")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    (tmp / "s").write_text("keep")
    return _sample(run, tmp), ["s"]


@case("out/sample_out_read_only")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    stack.enter_context(helpers.read_only(tmp / "locked"))
    return ["sample", run, "--device", "cpu", "-q", "--out", tmp / "locked" / "s"], ["locked"]


@case("out/sample_into_non_empty")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    (tmp / "s").mkdir()
    (tmp / "s" / "thesis.tex").write_text("keep")
    return _sample(run, tmp), ["s"]


@case("out/sample_into_run_folder")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    return ["sample", run, "--device", "cpu", "-q", "--out", run], ["run"]


@case("out/sample_above_run_folder")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    return ["sample", run, "--device", "cpu", "-q", "--out", tmp], ["above the run"]


@case("out/sample_into_checkpoints")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    return ["sample", run, "--device", "cpu", "-q", "--out", run / "checkpoints"], ["checkpoints"]


@case("out/export_into_synthetic")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    return ["export", run, "-q", "--format", "png", "--out", run / "synthetic"], ["synthetic"]


@case("out/export_into_run_folder")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    return ["export", run, "-q", "--format", "png", "--out", run], ["run"]


@case("out/export_into_non_empty")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    (tmp / "e").mkdir()
    (tmp / "e" / "data.csv").write_text("keep")
    return ["export", run, "-q", "--format", "monai", "--out", tmp / "e"], ["e"]


@case("out/export_out_is_file")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    (tmp / "e").write_text("keep")
    return ["export", run, "-q", "--format", "npz", "--out", tmp / "e"], ["e"]


@case("out/export_read_only")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    stack.enter_context(helpers.read_only(tmp / "locked"))
    return ["export", run, "-q", "--format", "png", "--out", tmp / "locked" / "e"], ["locked"]


@case("out/package_into_run_folder")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    return ["package", run, "--out", run], ["run"]


@case("out/package_into_non_empty")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    (tmp / "p").mkdir()
    (tmp / "p" / "a.txt").write_text("keep")
    return ["package", run, "--out", tmp / "p"], ["p"]


@case("out/generate_into_package")
def _(tmp, shared, stack):
    package = _package(shared, tmp)
    return ["models", "generate", package, "--n", "2", "--out", package, "-q"], ["package"]


@case("out/generate_into_non_empty")
def _(tmp, shared, stack):
    package = _package(shared, tmp)
    (tmp / "g").mkdir()
    (tmp / "g" / "a.txt").write_text("keep")
    return ["models", "generate", package, "--n", "2", "--out", tmp / "g", "-q"], ["g"]


@case("out/generate_out_is_file")
def _(tmp, shared, stack):
    package = _package(shared, tmp)
    (tmp / "g").write_text("keep")
    return ["models", "generate", package, "--n", "2", "--out", tmp / "g", "-q"], ["g"]


# --------------------------------------------------------------------------- devices


@case("device/train_cuda_option")
def _(tmp, shared, stack):
    return _train(_good(tmp), tmp, "--device", "cuda"), ["cuda"]


@case("device/sample_cuda")
def _(tmp, shared, stack):
    return ["sample", _run(shared, tmp), "-q", "--device", "cuda", "--out", tmp / "s"], ["cuda"]


@case("device/evaluate_cuda")
def _(tmp, shared, stack):
    return ["evaluate", _run(shared, tmp), "-q", "--device", "cuda"], ["cuda"]


@case("device/sample_tpu")
def _(tmp, shared, stack):
    return ["sample", _run(shared, tmp), "-q", "--device", "tpu:7", "--out", tmp / "s"], ["tpu"]


@case("device/config_cuda_7")
def _(tmp, shared, stack):
    config = helpers.run_config(tmp, helpers.folder_source(helpers.folder_data(tmp)),
                                train={"device": "cuda:7"})  # fmt: skip
    return _train(config, tmp), ["train.device"]


# --------------------------------------------------------------------------- sample arguments

SAMPLE_ARGS = {
    "n_zero": ["--n", "0"], "n_negative": ["--n", "-3"], "threshold_high": ["--threshold", "1.5"],
    "threshold_low": ["--threshold", "-2"], "threshold_nan": ["--threshold", "nan"],
    "threshold_inf": ["--threshold", "inf"], "format_unknown": ["--format", "jpeg"],
    "lesion_centre_words": ["--lesion-centre", "middle"],
    "quantile_above_one": ["--exclude-near-copies", "--quantile", "2"],
    "label_source_unknown": ["--label-source", "dreams"],
}  # fmt: skip
for _name, _extra in SAMPLE_ARGS.items():

    def _sample_case(tmp, shared, stack, extra=_extra):
        return _sample(_run(shared, tmp), tmp, *extra), [extra[-2] if len(extra) > 1 else extra[0]]

    case(f"sample/{_name}")(_sample_case)


@case("sample/not_a_run_folder")
def _(tmp, shared, stack):
    (tmp / "empty").mkdir()
    return ["sample", tmp / "empty", "-q", "--n", "2"], ["empty"]


@case("sample/run_config_not_utf8")
def _(tmp, shared, stack):
    run = _run(shared, tmp)
    (run / "config.yaml").write_bytes((run / "config.yaml").read_bytes() + b"# r\xe9sum\xe9\n")
    return _sample(run, tmp), ["config.yaml"]


@case("evaluate/bad_override")
def _(tmp, shared, stack):
    return ["evaluate", _run(shared, tmp), "-q", "--set", "evaluate.utility.stepz=3"], ["stepz"]


@case("evaluate/unknown_protocol")
def _(tmp, shared, stack):
    return ["evaluate", _run(shared, tmp), "-q", "--protocols", "telepathy"], ["telepathy"]


@case("report/not_evaluated")
def _(tmp, shared, stack):
    return ["report", _run(shared, tmp)], ["metrics"]


# --------------------------------------------------------------------------- checkpoints

for _damage, _needles in cmds.CHECKPOINTS.items():

    def _ckpt_case(tmp, shared, stack, damage=_damage, needles=_needles):
        run = _run(shared, tmp)
        damage(run / "checkpoints" / "last.pt")
        return _sample(run, tmp), needles

    def _resume_case(tmp, shared, stack, damage=_damage, needles=_needles):
        run = _run(shared, tmp)
        damage(run / "checkpoints" / "last.pt")
        return ["train", _good(tmp), "--out", run, "--resume", *TINY], needles

    case(f"checkpoint/sample_{_damage.__name__}")(_ckpt_case)
    case(f"checkpoint/resume_{_damage.__name__}")(_resume_case)


# --------------------------------------------------------------------------- model packages

for _name, _damage in cmds.PACKAGES.items():

    def _package_case(tmp, shared, stack, damage=_damage):
        package = _package(shared, tmp)
        needles = damage(package)
        return ["models", "generate", package, "--n", "2", "--out", tmp / "g", "-q"], needles

    def _show_case(tmp, shared, stack, damage=_damage):
        package = _package(shared, tmp)
        needles = damage(package)
        return ["models", "show", package], needles

    case(f"package/generate_{_name}")(_package_case)
    case(f"package/show_{_name}")(_show_case)


@case("package/json_not_utf8")
def _(tmp, shared, stack):
    package = _package(shared, tmp)
    cmds._rewrite_meta(package, "{}")
    (package / "package.json").write_bytes(b'{"name": "caf\xe9"}')
    return ["models", "generate", package, "--n", "2", "--out", tmp / "g", "-q"], ["package.json"]


# --------------------------------------------------------------------------- runner


def snapshot(root: Path) -> dict:
    return helpers.snapshot(root)


def run_case(name: str, shared: dict, timeout: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="probe_"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    with contextlib.ExitStack() as stack:
        try:
            args, needles = CASES[name](tmp, shared, stack)
        except BaseException as exc:  # pytest.skip: the case cannot be made here
            if type(exc).__name__ != "Skipped":
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return {"case": name, "class": "skipped", "why": str(exc)}
        before = snapshot(tmp)
        cmd = [sys.executable, "-m", "synthmed", *[str(a) for a in args]]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=timeout)  # fmt: skip
            code, err = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, err = None, (exc.stderr or b"").decode(errors="replace") + "\n(timed out)"
        seconds = time.monotonic() - t0
        after = snapshot(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    lines = [line for line in err.splitlines() if line.strip()]
    one_line = len(lines) == 1 and lines[0].startswith("error: ")
    names = one_line and all(str(n) in lines[0] for n in needles)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
    if "Traceback" in err:
        kind = "traceback"
    elif code == 0:
        kind = "silent acceptance"
    elif not one_line:
        kind = "multi-line"
    elif new or changed:
        kind = "wrote-files"
    else:
        kind = "ok"
    return {"case": name, "class": kind, "exit_code": code, "traceback": "Traceback" in err,
            "one_line": one_line, "names_file_or_key": names, "wrote": new[:5] + changed[:5],
            "stderr_tail": err[-600:], "seconds": round(seconds, 1),
            "command": shlex.join(["synthmed", *[str(a).replace(str(tmp), "TMP") for a in args]])}  # fmt: skip


def make_shared(root: Path) -> dict:
    from tests.export.helpers import tiny_run

    from synthmed.packaging import build_package

    run = tiny_run(root)
    return {"run": run, "package": build_package(run, root / "tiny.synthmed", name="tiny")}


def merged(rows: list[dict], tag: str) -> tuple[list[dict], list[str]]:
    """``--only`` re-runs replace their cases in the last full result; commands are kept."""
    path = RESULTS / f"bad_inputs_probe{tag}.json"
    if not path.is_file():
        return rows, []
    last = json.loads(path.read_text())
    fresh = {row["case"]: row for row in rows}
    kept = [fresh.pop(row["case"], row) for row in last["cases"]]
    earlier = [*last.get("earlier_commands", []), last["command"]]
    return kept + list(fresh.values()), list(dict.fromkeys(earlier))


def write_results(rows: list[dict], started: float, tag: str, earlier: list[str]) -> dict:
    from synthmed.machine import describe_machine

    counts: dict[str, int] = {}
    for row in rows:
        counts[row["class"]] = counts.get(row["class"], 0) + 1
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "command": shlex.join(["python", "benchmarks/bad_inputs_probe.py", *sys.argv[1:]]),
        "earlier_commands": earlier,
        "seconds": round(time.monotonic() - started, 1),
        "n_cases": len(rows),
        "n_cases_defined": len(CASES),
        "counts": counts,
        "not_naming_file_or_key": [
            r["case"] for r in rows if r.get("one_line") and not r.get("names_file_or_key")
        ],  # fmt: skip
        "cases": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bad_inputs_probe{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Bad-input probe ({result['date']})", "",
             f"Machine: {result['machine']}. Command: `{result['command']}` "
             f"({result['seconds']:.0f} s), {len(rows)} cases through `python -m synthmed`"
             + (f"; re-run cases replace those of `{'`, `'.join(earlier)}`" if earlier else "")
             + ".", "",
             "| class | cases |", "|---|---|"]  # fmt: skip
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    lines += ["", "## Non-ok cases", ""]
    for r in rows:
        if r["class"] != "ok":
            tail = " ".join(r.get("stderr_tail", r.get("why", "")).split())[-300:]
            lines.append(f"- `{r['case']}` ({r['class']}, exit {r.get('exit_code')}): {tail}")
    lines += ["", "## One line, but without the expected file/key", ""]
    lines += [f"- `{c}`" for c in result["not_naming_file_or_key"]] or ["none"]
    (RESULTS / f"bad_inputs_probe{tag}.md").write_text("\n".join(lines) + "\n")
    return result


def combine(tags: list[str]) -> None:
    """One result from runs that each covered part of the cases (a later tag's row wins)."""
    rows: dict[str, dict] = {}
    commands, seconds = [], 0.0
    for tag in tags:
        part = json.loads((RESULTS / f"bad_inputs_probe{tag}.json").read_text())
        rows.update({row["case"]: row for row in part["cases"]})
        commands += [*part.get("earlier_commands", []), part["command"]]
        seconds += part["seconds"]
    commands = list(dict.fromkeys(commands))
    rows = {name: row for name, row in rows.items() if name in CASES}  # cases since removed
    result = write_results(sorted(rows.values(), key=lambda r: r["case"]), time.monotonic(),
                           "", commands)  # fmt: skip
    result["seconds"] = seconds
    missing = sorted(set(CASES) - set(rows))
    result["not_run"] = missing
    (RESULTS / "bad_inputs_probe.json").write_text(json.dumps(result, indent=1) + "\n")
    with open(RESULTS / "bad_inputs_probe.md", "a") as md:
        md.write(f"\n## Not run ({len(missing)} of {len(CASES)})\n\n")
        md.write("\n".join(f"- `{name}`" for name in missing) or "none")
        md.write("\n")
    print(json.dumps(result["counts"]), f"{len(missing)} not run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="+", help="case names (or prefixes such as data/)")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--tag", default="")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--all", action="store_true", help="also the variants left out")
    parser.add_argument("--combine", nargs="+", metavar="TAG",
                        help="merge the results of runs with these tags (later ones win) into "
                        "bad_inputs_probe.json")  # fmt: skip
    parser.add_argument("--shared", type=Path, help="reuse (or keep) the tiny run + package here")
    args = parser.parse_args()
    if args.combine:
        combine(args.combine)
        return
    if args.all:
        CASES.update(EXTRA)
    names = sorted(CASES)
    if args.list:
        print("\n".join(names), f"\n{len(names)} cases")
        return
    if args.only:
        names = [n for n in names if any(n.startswith(p) for p in args.only)]
    started = time.monotonic()
    if args.shared is not None and (args.shared / "run").is_dir():
        shared = {"run": args.shared / "run", "package": args.shared / "tiny.synthmed"}
    else:
        args.shared = args.shared or Path(tempfile.mkdtemp(prefix="probe_shared_"))
        shared = make_shared(args.shared)
    order = sorted(names, key=lambda n: (n.startswith(("data/", "checkpoint/", "package/")), n))
    rows: list[dict] = []
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_case, n, shared, args.timeout) for n in order]
        for future in as_completed(futures):
            rows.append(future.result())
            print(f"{rows[-1]['class']:<18} {rows[-1]['case']}", flush=True)
            done, earlier = merged(rows, args.tag) if args.only else (rows, [])
            result = write_results(sorted(done, key=lambda r: r["case"]), started, args.tag,
                                   earlier)  # fmt: skip
    print(json.dumps(result["counts"]))


if __name__ == "__main__":
    main()
