"""Measured training throughput of ``synthmed train`` in 1 process vs 2 processes (torchrun,
gloo) on this machine's CPU cores: the number issue #15 asks for beside the throughput model
of benchmarks/SCALING.md.

    python benchmarks/scaling_throughput.py [--steps 40] [--cases demo demo-gan ...]

For each case (a preset at the scale named in ``CASES`` and a global batch ``G``) it runs the
real CLI (``python -m synthmed train``) four ways, all on the same cores:

* ``1x1``: 1 process, 1 torch thread, batch ``G`` (the per-core reference);
* ``1x2``: 1 process, 2 torch threads, batch ``G`` (what a user gets without --nproc);
* ``2x1 same-global``: ``--nproc 2``, 1 thread each, batch ``G/2`` per rank (the same recipe);
* ``2x1 same-per-rank``: ``--nproc 2``, 1 thread each, batch ``G`` per rank (global ``2G``).

Speed is read from the run's ``train_log.csv`` (logged every 5 steps): steps per second
between the first logged step at or after ``WARMUP`` and the last, so data preparation, the
first steps and the final checkpoint are not counted. Images/s = steps/s x global batch.
Writes benchmarks/results/scaling_throughput.json and .md (date, machine, load average,
command). Run it on an otherwise idle machine: every arm shares the same cores.
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

from synthmed import __version__, atomic
from synthmed.machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "scaling_throughput"
WARMUP = 10
# (preset, quick, global batch): the demo's two families at full scale and two paper presets
# at their CPU-sized quick scale, all at a batch whose steps take a fraction of a second here
CASES = {
    "demo": (False, 32),
    "demo-gan": (False, 32),
    "kossen2021-wgan-gp": (True, 32),
    "diffusion-pairs": (True, 32),
}
ARMS = [  # (name, processes, threads per process, per-rank batch as a fraction of G)
    ("1x1", 1, 1, 1.0),
    ("1x2", 1, 2, 1.0),
    ("2x1 same-global", 2, 1, 0.5),
    ("2x1 same-per-rank", 2, 1, 1.0),
]
MEASURE = ["train.device=cpu", "train.log_every=5", "train.sample_every=100000"]
MEASURE += ["train.checkpoint_every=100000", "train.select.every=0", "train.budget=null"]


def logged_rate(log: Path) -> float:
    """Steps/s between the first logged step >= WARMUP and the last logged step."""
    with log.open() as f:
        rows = [(int(r["step"]), float(r["seconds"])) for r in csv.DictReader(f)]
    rows = [r for r in rows if r[0] >= WARMUP]
    if len(rows) < 2 or rows[-1][1] <= rows[0][1]:
        raise RuntimeError(f"{log}: too few logged steps after warm-up to time ({rows})")
    return (rows[-1][0] - rows[0][0]) / (rows[-1][1] - rows[0][1])


def run_arm(preset: str, quick: bool, g: int, arm: tuple, steps: int, work: Path) -> dict:
    name, procs, threads, fraction = arm
    batch = int(g * fraction)
    out = work / f"{preset}-{name.replace(' ', '_')}"
    cmd = [sys.executable, "-m", "synthmed", "train", "--preset", preset, "--quiet"]
    cmd += ["--quick"] if quick else []
    cmd += ["--out", str(out)]
    for s in [*MEASURE, f"train.steps={steps}", f"train.batch_size={batch}"]:
        cmd += ["--set", s]
    if procs > 1:
        cmd += ["--nproc", str(procs)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_DYNAMIC": "FALSE"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    rate = logged_rate(out / "train_log.csv")
    summary = json.loads((out / "train_summary.json").read_text())
    return {
        "arm": name,
        "processes": procs,
        "threads_per_process": threads,
        "batch_per_rank": batch,
        "global_batch": summary["global_batch_size"],
        "world_size": summary["world_size"],
        "steps": summary["steps"],
        "steps_per_s": rate,
        "images_per_s": rate * summary["global_batch_size"],
        "wall_s_whole_command": wall,
        "command": f"OMP_NUM_THREADS={threads} " + shlex.join(cmd[1:]),
    }


def markdown(result: dict) -> str:
    lines = [
        "# Training throughput: 1 process vs 2 processes (torchrun, gloo) on CPU",
        "",
        f"Date {result['date']}, machine: {result['machine']}, load average at start "
        f"{', '.join(f'{x:.2f}' for x in result['load_average_at_start'])}, synthmed "
        f"{result['synthmed_version']}. Command: `{result['command']}`.",
        "",
        f"Steps/s from train_log.csv between step {WARMUP} and the last logged step; "
        "images/s = steps/s x global batch; speedup = images/s over the 1-process, "
        "2-thread arm (what `synthmed train` does without --nproc).",
        "",
        "| preset | scale | arm | batch/rank | global batch | steps/s | images/s | vs 1x2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in result["cases"]:
        ref = next(a for a in case["arms"] if a["arm"] == "1x2")["images_per_s"]
        for a in case["arms"]:
            lines.append(
                f"| {case['preset']} | {case['scale']} | {a['arm']} | {a['batch_per_rank']} | "
                f"{a['global_batch']} | {a['steps_per_s']:.2f} | {a['images_per_s']:.1f} | "
                f"{a['images_per_s'] / ref:.2f}x |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    result = {
        "date": dt.date.today().isoformat(),
        "machine": describe_machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "synthmed_version": __version__,
        "command": "python benchmarks/scaling_throughput.py " + shlex.join(sys.argv[1:]),
        "cases": [],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.cases:
            quick, g = CASES[preset]
            case = {"preset": preset, "scale": "quick" if quick else "full", "arms": []}
            result["cases"].append(case)
            for arm in ARMS:
                case["arms"].append(run_arm(preset, quick, g, arm, args.steps, Path(tmp)))
                print(json.dumps({"preset": preset, **case["arms"][-1]}), flush=True)
                # after each arm: a partial run keeps what it measured
                atomic.write_text(OUT.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic.write_text(OUT.with_suffix(".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
