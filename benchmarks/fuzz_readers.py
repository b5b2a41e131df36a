"""Fuzz every reader through the loading path ``synthmed train`` uses (issue #16).

For each reader a small valid data set is written once (4 cases of 16x16, the bad-input
corpus's builders); every example then replaces one file of it (the victim) with a mutant
drawn by hypothesis (benchmarks/fuzz_mutations.py) and loads the run config exactly as the
CLI does: ``load_run_config`` -> ``absolutize_paths`` -> ``prepare_gan_data``. An example
passes when the pairs load finite and in [-1, 1], or when synthmed raises ``InputError``
naming a file or key. Anything else (another exception, non-finite pairs, an error naming
nothing, more than 20 s) is a finding, saved with its reproducer under ``--findings``.

    OMP_NUM_THREADS=1 python benchmarks/fuzz_readers.py --total-minutes 10
    python benchmarks/fuzz_readers.py --minutes 0.5 --readers png npy

Writes benchmarks/results/fuzz_readers.json and .md (date, machine, command, inputs tried
and findings per reader).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import fuzz_mutations as mut  # noqa: E402
from tests.bad_inputs import helpers  # noqa: E402

from synthmed.errors import InputError  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TIMEOUT_S = 20


@dataclass
class Target:
    """One reader: how to write its valid data and how to mutate the victim file."""

    name: str
    build: object  # (root) -> (config path, victim path)
    mutate: object  # (data, raw bytes) -> (bytes, description)
    tried: int = 0
    loaded: int = 0
    refused: int = 0
    findings: dict = field(default_factory=dict)


def _images(ending: str):
    def build(root: Path):
        data = helpers.folder_data(root, ending)
        config = helpers.run_config(root, helpers.folder_source(data, ending))
        return config, data / "images" / f"case02{ending}"

    return build


def _series(root: Path):
    data = root / "data"
    for k in range(4):
        for z in range(3):
            helpers.write_dcm(data / "series" / f"case{k:02d}" / f"s{z}.dcm",
                              helpers.image_array(k + 5 * z, np.uint16), z=2.0 * z,
                              instance=z + 1, series_uid=f"1.2.3.{k}")  # fmt: skip
    source = {"kind": "folders", "root": str(data), "image_glob": "series/*", "id_regex": r"(\d+)"}
    return helpers.run_config(root, source, image_only=True), data / "series" / "case01" / "s1.dcm"


def _csv(root: Path):
    helpers.folder_data(root)
    path = root / "data" / "manifest.csv"
    rows = "".join(f"images/case{k:02d}.png,labels/case{k:02d}.png,{k % 2}\n" for k in range(4))
    path.write_text("image,label,class\n" + rows)
    return helpers.run_config(root, {"kind": "csv", "csv": str(path)}), path


def _npz(root: Path):
    path = root / "data.npz"
    images = np.stack([helpers.image_array(k) for k in range(4)])
    np.savez(path, train_images=images, train_labels=np.array([[0], [1], [0], [1]]))
    source = {"kind": "npz", "npz": str(path), "npz_splits": ["train"]}
    return helpers.run_config(root, source, image_only=True), path


def _npy(root: Path):
    config, victim = _images(".npy")(root)
    np.save(victim, helpers.image_array(2).astype(np.float32))
    return config, victim


def _yaml(root: Path):
    config, _ = _images(".png")(root)
    return config, config


TARGETS = {
    "nifti": Target("nifti", _images(".nii"), lambda d, r: mut.nifti(d, r, gz=False)),
    "nifti_gz": Target("nifti_gz", _images(".nii.gz"), lambda d, r: mut.nifti(d, r, gz=True)),
    "dicom_file": Target("dicom_file", _images(".dcm"), mut.dicom),
    "dicom_series": Target("dicom_series", _series, mut.dicom),
    "png": Target("png", _images(".png"), lambda d, r: mut.image_file(d, r, "PNG")),
    "tif": Target("tif", _images(".tif"), lambda d, r: mut.image_file(d, r, "TIFF")),
    "gif": Target("gif", _images(".gif"), lambda d, r: mut.image_file(d, r, "GIF")),
    "jpeg": Target("jpeg", _images(".jpg"), lambda d, r: mut.image_file(d, r, "JPEG")),
    "npy": Target("npy", _npy, mut.npy),
    "npz": Target("npz", _npz, mut.npz),
    "csv": Target("csv", _csv, mut.csv_text),
    "yaml": Target("yaml", _yaml, mut.yaml_text),
}


# --------------------------------------------------------------------------- one example


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout(f"no answer within {TIMEOUT_S} s")


def load_like_the_cli(config: Path) -> None:
    """What ``synthmed train CONFIG`` does before training; raises on a bad result."""
    from synthmed.config.loading import absolutize_paths, load_run_config
    from synthmed.data.arrays import prepare_gan_data

    cfg, base = load_run_config(config)
    data = prepare_gan_data(absolutize_paths(cfg, base).data)
    pairs = data.pairs.numpy()
    if not np.isfinite(pairs).all():
        raise AssertionError("loaded pairs hold NaN or Inf")
    if pairs.size and (pairs.min() < -1.001 or pairs.max() > 1.001):
        raise AssertionError(f"pairs outside [-1, 1]: {pairs.min()}..{pairs.max()}")


def classify(exc: BaseException | None, victim: Path) -> str | None:
    """None when the outcome is allowed, else the finding's kind."""
    if exc is None:
        return None
    if isinstance(exc, InputError):
        named = exc.path is not None or victim.name in str(exc) or victim.parent.name in str(exc)
        return None if named and "\n" not in str(exc) else "unnamed or multi-line InputError"
    return type(exc).__name__


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "synthmed" in f.filename] or frames
    last = ours[-1] if ours else None
    return f"{Path(last.filename).name}:{last.lineno}" if last else "?"


def record(target: Target, kind: str, exc, raw: bytes, desc: str, victim: Path, config: Path,
           out: Path) -> None:  # fmt: skip
    key = f"{kind} @ {_where(exc)}"
    entry = target.findings.setdefault(key, {"count": 0, "examples": []})
    entry["count"] += 1
    if len(entry["examples"]) >= 3:
        return
    digest = hashlib.sha256(raw).hexdigest()[:12]
    folder = out / target.name / digest
    folder.mkdir(parents=True, exist_ok=True)
    (folder / victim.name).write_bytes(raw)
    shutil.copy(config, folder / "run.yaml")
    message = "".join(traceback.format_exception(exc))[-3000:]
    info = {"reader": target.name, "kind": kind, "mutation": desc, "victim": victim.name,
            "error": f"{type(exc).__name__}: {exc}"[:500], "traceback": message}  # fmt: skip
    (folder / "finding.json").write_text(json.dumps(info, indent=1))
    entry["examples"].append({"mutation": desc, "error": info["error"], "reproducer": str(folder)})
    print(f"  finding [{target.name}] {key}: {desc}: {info['error'][:160]}", flush=True)


def fuzz(target: Target, seconds: float, out: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"fuzz_{target.name}_"))
    config, victim = target.build(root)
    original = victim.read_bytes()
    load_like_the_cli(config)  # the unbroken data must load
    stop = time.monotonic() + seconds

    @settings(max_examples=20, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.data())
    def example(data):
        raw, desc = target.mutate(data, original)
        victim.write_bytes(raw)
        target.tried += 1
        exc = None
        signal.alarm(TIMEOUT_S)
        try:
            load_like_the_cli(config)
            target.loaded += 1
        except BaseException as caught:  # noqa: BLE001 - every outcome is classified
            if isinstance(caught, KeyboardInterrupt):
                raise
            exc = caught
        finally:
            signal.alarm(0)
            victim.write_bytes(original)
        kind = classify(exc, victim)
        if exc is not None and kind is None:
            target.refused += 1
        elif kind is not None:
            record(target, kind, exc, raw, desc, victim, config, out)

    while time.monotonic() < stop:
        try:
            example()
        except Exception as exc:  # hypothesis's own complaints must not end the run
            print(f"  hypothesis: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
    shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- report


def write_results(targets: list[Target], args, started: float, tag: str) -> None:
    from synthmed.machine import describe_machine

    rows = [{"reader": t.name, "inputs_tried": t.tried, "loaded": t.loaded,
             "refused_with_input_error": t.refused,
             "findings": sum(f["count"] for f in t.findings.values()),
             "distinct_findings": len(t.findings), "finding_kinds": t.findings}
            for t in targets]  # fmt: skip
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "command": shlex.join(["python", "benchmarks/fuzz_readers.py", *sys.argv[1:]]),
        "seconds": round(time.monotonic() - started, 1),
        "inputs_tried": sum(r["inputs_tried"] for r in rows),
        "findings": sum(r["findings"] for r in rows),
        "distinct_findings": sum(r["distinct_findings"] for r in rows),
        "readers": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"fuzz_readers{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Reader fuzzing ({result['date']})", "",
             f"Machine: {result['machine']}. Command: `{result['command']}` "
             f"({result['seconds']:.0f} s).", "",
             "| reader | inputs tried | loaded | refused (InputError) | findings | distinct |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['reader']} | {r['inputs_tried']} | {r['loaded']} | "
                     f"{r['refused_with_input_error']} | {r['findings']} | "
                     f"{r['distinct_findings']} |")  # fmt: skip
    lines += ["", f"Total: {result['inputs_tried']} inputs, {result['findings']} findings "
              f"({result['distinct_findings']} distinct).", ""]  # fmt: skip
    for r in rows:
        for key, entry in r["finding_kinds"].items():
            lines.append(f"- {r['reader']}: `{key}` x{entry['count']}: "
                         f"{entry['examples'][0]['error'][:200]}")  # fmt: skip
    (RESULTS / f"fuzz_readers{tag}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="budget per reader")
    parser.add_argument("--total-minutes", type=float, default=1.0, help="budget split evenly")
    parser.add_argument("--readers", nargs="+", choices=sorted(TARGETS), default=sorted(TARGETS))
    parser.add_argument("--findings", type=Path, default=RESULTS / "fuzz_findings")
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _alarm)
    per_reader = 60 * (args.minutes or args.total_minutes / len(args.readers))
    started = time.monotonic()
    targets = [TARGETS[name] for name in args.readers]
    for target in targets:
        print(f"{target.name}: {per_reader:.0f} s", flush=True)
        fuzz(target, per_reader, args.findings)
        print(f"  tried {target.tried}, loaded {target.loaded}, refused {target.refused}, "
              f"{len(target.findings)} distinct findings", flush=True)  # fmt: skip
        write_results(targets, args, started, args.tag)


if __name__ == "__main__":
    main()
