"""DRIVE at quick scale: train the Kossen WGAN-GP-SN, sample, evaluate, report; time each stage.

    python benchmarks/drive_quick.py --out runs/drive                       # CPU or GPU (auto)
    python benchmarks/drive_quick.py --protocols all --sizes 1,2,5,all --seeds 3

Needs ../shared/data/drive (see examples/drive_wgan_gp_sn_quick.yaml). Writes
benchmarks/results/drive_quick[_<tag>].json with the numbers, wall times, date, machine and
the command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

from synthmed import __version__, api
from synthmed.config import load_run_config
from synthmed.machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "drive_wgan_gp_sn_quick.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/drive"))
    parser.add_argument("--protocols", default=None, help="passed to evaluate (e.g. all)")
    parser.add_argument("--sizes", default=None, help="passed to evaluate (e.g. 1,2,5,all)")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--tag", default="")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate an already trained --out run (no training, no sampling)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        help="training config override (key=value)",
    )
    parser.add_argument(
        "--eval-set",
        action="append",
        default=[],
        dest="eval_overrides",
        help="evaluate.* override, e.g. evaluate.utility.steps=200",
    )
    args = parser.parse_args()
    cfg, base = load_run_config(CONFIG, quick=True, overrides=args.overrides)
    times = {}
    if not args.reuse:
        shutil.rmtree(args.out, ignore_errors=True)
        start = time.perf_counter()
        api.train(cfg, args.out, base_dir=base, quiet=True)
        times["train_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        # audit only: the export gate records its verdict and keeps every sample (as before the gate)
        api.sample(args.out, quiet=True, audit_only=True)
        times["sample_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    eval_kwargs = {
        "protocols": args.protocols.split(",") if args.protocols else None,
        "sizes": args.sizes.split(",") if args.sizes else None,
        "seeds": args.seeds,
        "overrides": args.eval_overrides,
    }
    metrics = api.evaluate(args.out, quiet=True, **eval_kwargs)
    times["evaluate_s"] = round(time.perf_counter() - start, 1)
    report = api.report(args.out)
    result = {
        "benchmark": "drive_quick",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "synthmed": __version__,
        "scale": "quick: 32x32 patches at half resolution (292x282), 600 generator steps, "
        "base width 32; U-Net 3 levels (config evaluate.utility)",
        "overrides": {"train": args.overrides, "evaluate": args.eval_overrides},
        "wall_times": times,
        "utility": metrics.get("utility"),
        "fidelity": metrics.get("fidelity"),
        "privacy": {k: v for k, v in (metrics.get("privacy") or {}).items() if k != "per_image"},
        "report": str(report),
    }
    name = f"drive_quick{'_' + args.tag if args.tag else ''}.json"
    out = ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(json.dumps({"wall_times": times, "written": str(out)}))


if __name__ == "__main__":
    main()
