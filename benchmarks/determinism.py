"""Same command, two processes: are the trained weights bit-identical? (issue #12 part 8,
issue #16; README "Determinism").

    python benchmarks/determinism.py --size demo --pairs 2            # the demo's training
    python benchmarks/determinism.py --size tiny --pairs 6 --env hashseed

Each pair runs the same ``synthmed train`` command twice, one process after the other, with
``MKL_DYNAMIC=FALSE`` (the README's condition) and 2 torch threads, and compares the two
``checkpoints/last.pt``: every generator, critic and EMA tensor. A pair is *identical* when
every tensor is bit for bit equal; otherwise the row gives the largest absolute difference,
the fraction of differing elements and the first logged step whose losses differ. ``--env``
adds conditions: ``hashseed`` (``PYTHONHASHSEED=0``: Python's string hashing fixed, which
orders sets of names), ``threads1`` (``OMP_NUM_THREADS=1``: no thread-count dependence).
Writes benchmarks/results/determinism_<size>.json and .md with date, machine, load, command.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from synthmed import __version__, atomic
from synthmed.machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = {
    # the demo's own training (preset demo, full scale: what `synthmed demo` trains)
    "demo": ["--preset", "demo"],
    # tests/training/test_determinism.py's run
    "tiny": ["--preset", "demo-gan", "--set", "data.train.phantom.n_patients=6"]
    + ["--set", "data.train.phantom.size=32", "--set", "data.patches.per_image=4"]
    + ["--set", "model.base_channels=8", "--set", "train.steps=6", "--set", "train.batch_size=8"]
    + ["--set", "train.n_critic=2", "--set", "train.log_every=2"],
}
ENVS = {
    "mkl": {"MKL_DYNAMIC": "FALSE", "OMP_NUM_THREADS": "2"},
    "hashseed": {"MKL_DYNAMIC": "FALSE", "OMP_NUM_THREADS": "2", "PYTHONHASHSEED": "0"},
    "threads1": {"MKL_DYNAMIC": "FALSE", "OMP_NUM_THREADS": "1"},
}


def train(size: str, env: dict, out: Path) -> float:
    cmd = [sys.executable, "-m", "synthmed", "train", *SIZES[size], "--out", str(out), "-q"]
    cmd += ["--device", "cpu"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **env})
    return time.perf_counter() - t0


def tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint, flattened to ``part/name`` keys."""
    ckpt = torch.load(path / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    out = {}
    for part, value in ckpt.items():
        if isinstance(value, dict):
            for name, t in value.items():
                if isinstance(t, torch.Tensor) and t.is_floating_point():
                    out[f"{part}/{name}"] = t
    return out


def first_differing_log_step(a: Path, b: Path) -> int | None:
    def rows(run: Path) -> list[dict]:
        with (run / "train_log.csv").open() as f:
            return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]

    for ra, rb in zip(rows(a), rows(b), strict=False):
        if ra != rb:
            return int(ra["step"])
    return None


def compare(a: Path, b: Path) -> dict:
    ta, tb = tensors(a), tensors(b)
    if ta.keys() != tb.keys():
        raise RuntimeError(f"{a} and {b}: different checkpoint keys")
    differing = total = 0
    worst = 0.0
    parts_differing = set()
    for key in ta:
        d = (ta[key] - tb[key]).abs()
        n = int((d > 0).sum())
        differing += n
        total += d.numel()
        if n:
            parts_differing.add(key.split("/")[0])
            worst = max(worst, float(d.max()))
    return {
        "identical": differing == 0,
        "max_abs_diff": worst,
        "fraction_differing": differing / total,
        "elements": total,
        "parts_differing": sorted(parts_differing),
        "first_differing_log_step": first_differing_log_step(a, b),
    }


def markdown(result: dict) -> str:
    lines = [
        f"# Determinism: the same `synthmed train` twice ({result['size']})",
        "",
        f"Date {result['date']}, machine {result['machine']}, synthmed "
        f"{result['synthmed_version']}. Command: `{result['command']}`. Training command: "
        f"`synthmed train {shlex.join(SIZES[result['size']])} -q --device cpu`.",
        "",
        "| env | pair | identical | max abs diff | fraction differing | first differing log "
        "step | load avg at start | train s (a, b) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["pairs"]:
        lines.append(
            f"| {r['env']} | {r['pair']} | {'yes' if r['identical'] else 'no'} | "
            f"{r['max_abs_diff']:.3g} | {r['fraction_differing']:.3g} | "
            f"{r['first_differing_log_step'] or '-'} | {r['load_average'][0]:.2f} | "
            f"{r['train_s'][0]:.0f}, {r['train_s'][1]:.0f} |"
        )
    for env in result["envs"]:
        rows = [r for r in result["pairs"] if r["env"] == env]
        same = sum(r["identical"] for r in rows)
        lines.append(f"\n{env} ({ENVS[env]}): {same} of {len(rows)} pairs bit-identical.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--env", nargs="*", default=["mkl"], choices=sorted(ENVS))
    args = parser.parse_args()
    result = {
        "date": dt.date.today().isoformat(),
        "machine": describe_machine(),
        "synthmed_version": __version__,
        "command": "python benchmarks/determinism.py " + shlex.join(sys.argv[1:]),
        "size": args.size,
        "envs": args.env,
        "pairs": [],
    }
    stem = RESULTS / f"determinism_{args.size}"
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for env in args.env:  # interleaved: every condition sees the same machine load
                load = os.getloadavg()
                a, b = Path(tmp) / f"{env}{pair}a", Path(tmp) / f"{env}{pair}b"
                times = (train(args.size, ENVS[env], a), train(args.size, ENVS[env], b))
                row = {"env": env, "pair": pair, "load_average": load, "train_s": times}
                result["pairs"].append({**row, **compare(a, b)})
                print(json.dumps(result["pairs"][-1]), flush=True)
                atomic.write_text(stem.with_suffix(".json"), json.dumps(result, indent=2))
                atomic.write_text(stem.with_suffix(".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
