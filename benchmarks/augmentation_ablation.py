"""Which classic augmentation is a fair baseline for the Frid-Adar classifiers on ultrasound?

    python benchmarks/augmentation_ablation.py                    # BreastMNIST + BUSI fold 0
    python benchmarks/augmentation_ablation.py --experiments fridadar2018-busi --seeds 5

The reproduction's `real+classic-aug` baseline (every flip, quarter turns, rotation + elastic
warp, intensity) scored below `real` on BreastMNIST. Breast ultrasound has an up and down
(skin at the top, acoustic shadows below a lesion), which flips and turns break. This trains
the experiments' classifier (same data, fold split, budget, early stopping) on the real
training split only, with no augmentation and with each augmentation variant, and scores it
on the real test split. Needs ../shared/data (or --data-root). Writes
benchmarks/results/augmentation_ablation.json and .md (date, machine, command, wall time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from synthmed import __version__
from synthmed.atomic import write_json, write_text
from synthmed.config.schema import ClassicAugConfig
from synthmed.data.pipeline import load_splits
from synthmed.evaluation.inputs import real_rows
from synthmed.evaluation.utility.protocols import Settings, run_protocol
from synthmed.evaluation.utility.sets import set_from_items
from synthmed.evaluation.utility.stats import bootstrap_ci
from synthmed.machine import describe_machine
from synthmed.reproduce.runner import arm_config
from synthmed.reproduce.spec import read_experiment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("balanced_accuracy", "sensitivity_macro", "specificity_macro", "auc_macro")

# name -> (protocol, augmentation options); "none" is the reproduction's `real` row and
# "all-flips" its `real+classic-aug` baseline
VARIANTS: dict[str, tuple[str, ClassicAugConfig]] = {
    "none": ("real", ClassicAugConfig()),
    "all-flips": ("real+classic-aug", ClassicAugConfig()),
    "left-right": ("real+classic-aug", ClassicAugConfig(flip="left-right", rot90=False)),
    "left-right-mild": (
        "real+classic-aug",
        ClassicAugConfig(flip="left-right", rot90=False, strength=0.5),
    ),
}


def _describe(options: ClassicAugConfig, protocol: str) -> str:
    if protocol == "real":
        return "no augmentation"
    turns = ", quarter turns" if options.rot90 else ""
    return f"flips {options.flip}{turns}, warp/intensity strength {options.strength:g}"


def run_one(
    name: str, fold: int, seeds: list[int], data_root: Path, variants: list[str], steps: int | None
):
    """Rows (variant, seed, metrics) for one experiment fold."""
    spec = read_experiment(name)
    config = arm_config(spec, spec.arms[0], fold, "reduced", data_root=data_root)
    if steps is not None:  # a smoke run of the script
        config = config.model_copy(
            update={
                "evaluate": config.evaluate.model_copy(
                    update={"utility": config.evaluate.utility.model_copy(update={"steps": steps})}
                )
            }
        )
    splits = load_splits(config.data)
    train = real_rows(splits["train"], config, "classification")
    val, test = set_from_items(splits["val"]), set_from_items(splits["test"])
    num_classes = len(config.data.train.class_names or []) or int(train.classes.max()) + 1
    ucfg = config.evaluate.utility
    rows = []
    base = Settings.from_config(ucfg, num_classes, patience=ucfg.patience)
    for variant in variants:
        protocol, options = VARIANTS[variant]
        settings = replace(base, augment=options)
        for seed in seeds:
            start = time.perf_counter()
            out = run_protocol("classification", protocol, train, None, val, test, settings, seed)
            scores = {m: float(out["scores"][m]) for m in METRICS}
            steps = out["history"][0]["steps_run"]
            seconds = round(time.perf_counter() - start, 1)
            rows.append(
                {"variant": variant, "seed": seed, "steps_run": steps, "s": seconds, **scores}
            )
            print(f"{name} fold {fold} {variant} seed {seed}: {scores} ({seconds} s)", flush=True)
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    return rows, sizes, ucfg


def summarise(rows: list[dict], variants: list[str]) -> dict[str, dict]:
    """Mean, std and the paired difference to ``none`` (same seed) per variant."""
    by = {v: {r["seed"]: r for r in rows if r["variant"] == v} for v in variants}
    out = {}
    for v in variants:
        vals = np.array([r["balanced_accuracy"] for r in by[v].values()])
        entry = {m: float(np.mean([r[m] for r in by[v].values()])) for m in METRICS}
        entry["steps_run_mean"] = float(np.mean([r["steps_run"] for r in by[v].values()]))
        entry["balanced_accuracy_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else None
        if v != "none":
            seeds = sorted(set(by[v]) & set(by["none"]))
            diff = np.array(
                [by[v][s]["balanced_accuracy"] - by["none"][s]["balanced_accuracy"] for s in seeds]
            )
            low, high = bootstrap_ci(diff) if len(diff) > 1 else (None, None)
            entry["difference_vs_none"] = float(diff.mean())
            entry["difference_ci95"] = [low, high]
        out[v] = entry
    return out


def markdown(result: dict) -> str:
    lines = [
        "# Classic augmentation for the Frid-Adar classifiers (ultrasound)",
        "",
        f"{result['date']}, {result['machine']}, synthmed {result['version']}, "
        f"{result['wall_s']:.0f} s. Command: `{result['command']}`",
        "",
        "Real training split only; the experiments' classifier and budget "
        f"({result['settings']}); balanced accuracy on the real test split, mean over "
        f"{len(result['seeds'])} seeds; difference to no augmentation paired on seed "
        "[95% bootstrap CI].",
        "",
        "| experiment (fold) | train / val / test images | augmentation | balanced accuracy "
        "| AUC | steps run (mean) | difference vs none |",
        "|---|---|---|---|---|---|---|",
    ]
    for exp in result["experiments"]:
        sizes = "{train} / {val} / {test}".format(**exp["sizes"])
        for v, entry in exp["summary"].items():
            diff = "-"
            if "difference_vs_none" in entry:
                low, high = entry["difference_ci95"]
                ci = f" [{low:+.3f}, {high:+.3f}]" if low is not None else ""
                diff = f"{entry['difference_vs_none']:+.3f}{ci}"
            std = entry["balanced_accuracy_std"]
            ba = f"{entry['balanced_accuracy']:.3f}" + (f" ± {std:.3f}" if std else "")
            lines.append(
                f"| {exp['name']} ({exp['fold']}) | {sizes} | {v}: {exp['variants'][v]} | {ba} "
                f"| {entry['auc_macro']:.3f} | {entry['steps_run_mean']:.0f} | {diff} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--experiments", default="fridadar2018-breastmnist,fridadar2018-busi", help="comma list"
    )
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="classifier budget (smoke runs)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=RESULTS / "augmentation_ablation")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or "none" not in variants:
        parser.error(f"--variants must include 'none' and name only {', '.join(VARIANTS)}")
    seeds = list(range(args.seeds))
    start = time.perf_counter()
    experiments, settings = [], ""
    for name in [n.strip() for n in args.experiments.split(",")]:
        rows, sizes, ucfg = run_one(name, args.fold, seeds, args.data_root, variants, args.steps)
        settings = (
            f"at most {ucfg.steps} steps, batch {ucfg.batch_size}, lr {ucfg.lr:g}, early "
            f"stopping after {ucfg.patience} validations every {ucfg.val_every} steps"
        )
        experiments.append(
            {
                "name": name,
                "fold": args.fold,
                "sizes": sizes,
                "variants": {v: _describe(VARIANTS[v][1], VARIANTS[v][0]) for v in variants},
                "summary": summarise(rows, variants),
                "rows": rows,
            }
        )
    result = {
        "date": dt.date.today().isoformat(),
        "machine": describe_machine(),
        "version": __version__,
        "command": shlex.join(["python", *sys.argv]),
        "wall_s": round(time.perf_counter() - start, 1),
        "seeds": seeds,
        "settings": settings,
        "experiments": experiments,
    }
    write_json(args.out.with_suffix(".json"), result)
    write_text(args.out.with_suffix(".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
