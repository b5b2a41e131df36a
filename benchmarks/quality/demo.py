"""Quality benchmark, task "demo": the `synthmed demo` pipeline on the built-in fundus
phantoms, once per seed (generator, sampling and U-Net seeds; the phantoms stay the same).

    python benchmarks/quality/demo.py --variant before --seeds 0 1 2 3 4
    python benchmarks/quality/demo.py --variant after --seeds 0 1 2 3 4 --set train.budget=2m

Each seed runs train -> sample -> evaluate exactly as `synthmed demo` does, with the extra
``--set`` overrides. Results: benchmarks/quality/results/demo.json and demo.md (the row with
the same --variant label is replaced).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import aggregate, row_header, save_row, seed_metrics  # noqa: E402

from synthmed import api  # noqa: E402
from synthmed.config import resolve_config  # noqa: E402


def run_seed(seed: int, overrides: list[str], work: Path) -> dict:
    seeded = [f"train.seed={seed}", f"sample.seed={seed}", f"evaluate.utility.seeds=[{seed}]"]
    config = resolve_config({"name": "demo"}, preset="demo", overrides=seeded + overrides)
    run_dir = work / f"seed_{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    api.train(config, run_dir, quiet=True)
    train_s = time.perf_counter() - t0
    api.sample(run_dir, quiet=True)
    metrics = api.evaluate(run_dir, quiet=True)
    row = seed_metrics(metrics)
    row.update(seed=seed, train_s=train_s, total_s=time.perf_counter() - t0)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True, help="row label, e.g. before / after")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--budget", default="demo preset (fixed steps)")
    parser.add_argument("--note", default="")
    parser.add_argument("--work", type=Path, default=Path("/tmp/synthmed-quality-demo"))
    args = parser.parse_args()
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run_seed(seed, args.overrides, args.work / args.variant))
        print(per_seed[-1], flush=True)
    command = "python benchmarks/quality/demo.py " + shlex.join(sys.argv[1:])
    row = row_header("demo", args.variant, command, args.budget, args.overrides)
    row.update(seeds=args.seeds, per_seed=per_seed, summary=aggregate(per_seed))
    if args.note:
        row["note"] = args.note
    print(save_row("demo", row))


if __name__ == "__main__":
    main()
