"""Quality benchmark: one task's pipeline once per seed (generator, sampling and U-Net
seeds; the real data and their split stay the same), train -> sample -> evaluate.

    python benchmarks/quality/demo.py --variant before --seeds 0 1 2 3 4
    python benchmarks/quality/demo.py --preset demo-gan --variant "EMA, 1800 steps"
    python benchmarks/quality/demo.py --task drive --variant budget20m --set train.budget=20m
    # same generators, evaluated again with another evaluate.* setting (no retraining)
    python benchmarks/quality/demo.py --task lgg5 ... --reuse --set evaluate.utility.min_steps=400

Tasks: ``demo`` (the `synthmed demo` run on built-in fundus phantoms), ``drive`` (Kossen's
WGAN-GP-SN on DRIVE patches, examples/drive_wgan_gp_sn_quick.yaml at --quick scale; needs
../shared/data/drive), ``lgg2`` / ``lgg5`` (label map -> FLAIR translators, 2 or 5 training
patients) and ``busi`` (class-conditional generators, Frid-Adar's task; balanced accuracy). Extra ``--set`` overrides apply to every seed. Results:
benchmarks/quality/results/<task>.json and <task>.md (the row with the same --variant label is
replaced).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import aggregate, row_header, save_row, seed_metrics  # noqa: E402

from synthmed import api  # noqa: E402
from synthmed.config import load_run_config, resolve_config  # noqa: E402
from synthmed.config.loading import absolutize_paths  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


# LGG tasks (Shin / Platscher): a translator from anatomy + tumour label maps to FLAIR slices,
# trained on 2 or 5 patients; the U-Net is trained on those patients' real slices with and
# without classic augmentation and with synthetic slices made from their lesion-edited maps.
LGG_PROTOCOLS = (
    "[real, real+classic-aug, real+synthetic:2, real+synthetic:2+classic-aug, synthetic-only]"
)
LGG_TASKS = {"lgg2": "lgg_2patients.json", "lgg5": "lgg_5patients.json"}
# BUSI task (Frid-Adar): class-conditional generators of 64x64 grey breast-ultrasound images
# (benign / malignant / normal, no masks); a Frid-Adar CNN classifies the real test split;
# target: real+synthetic above real without augmentation (balanced accuracy).
BUSI_PROTOCOLS = (
    "[real, real+classic-aug, real+synthetic:1, real+synthetic:1+classic-aug, synthetic-only]"
)
TASKS = ["demo", "drive", "busi", *LGG_TASKS]
TASK_METRIC = {"busi": "balanced_accuracy_mean"}


def task_config(task: str, overrides: list[str], preset: str = "demo"):
    """(config, base folder for relative data paths) of a benchmark task (``preset``: the
    generator of the demo and LGG tasks; ``demo-gan`` is the GAN demo, which was ``demo``
    before 2026-12-01; LGG: shin2018-pix2pix, platscher2021-spade, diffusion-mask-to-image)."""
    if task == "demo":
        return resolve_config({"name": "demo"}, preset=preset, overrides=overrides), None
    if task == "drive":
        example = ROOT / "examples" / "drive_wgan_gp_sn_quick.yaml"
        return load_run_config(example, quick=True, overrides=overrides)
    if task in LGG_TASKS:
        split = Path(__file__).resolve().parent / "splits" / LGG_TASKS[task]
        task_overrides = [
            f"name={task}",
            f"data.split.file={split}",
            "sample.n=256",
            "sample.label_source=train",
            "sample.edit_lesions=true",
            f"evaluate.utility.protocols={LGG_PROTOCOLS}",
            "evaluate.utility.steps=600",
            "evaluate.utility.patience=4",
        ]
        data = ROOT / "examples" / "data" / "lgg_flair_anatomy.yaml"
        return load_run_config(
            None, preset=preset, quick=True, overrides=task_overrides + overrides, data_file=data
        )
    if task == "busi":
        if not (ROOT.parent / "shared" / "data" / "busi_256").is_dir():
            raise SystemExit("task busi needs ../shared/data/busi_256 (see its SOURCE.md)")
        task_overrides = [
            f"name={task}",
            "sample.n=600",
            f"evaluate.utility.protocols={BUSI_PROTOCOLS}",
            "evaluate.utility.steps=1000",
            "evaluate.utility.batch_size=16",
            "evaluate.utility.val_every=100",
        ]
        data = ROOT / "examples" / "data" / "busi.yaml"
        return load_run_config(
            None, preset=preset, quick=True, overrides=task_overrides + overrides, data_file=data
        )
    raise SystemExit(f"unknown task '{task}' ({', '.join(TASKS)})")


def reusable(run_dir: Path, config, base: Path | None) -> bool:
    """True when ``run_dir`` holds a finished training and synthetic set made with ``config``
    in everything but its ``evaluate`` section: evaluation reads only the run folder, that
    section and the seed, so evaluating it again gives what a full run would."""
    done = [run_dir / "train_summary.json", run_dir / "synthetic" / "manifest.csv"]
    if not all(p.is_file() for p in done):
        return False
    saved = api.load_run_config(run_dir).model_dump(exclude={"evaluate"})
    return saved == absolutize_paths(config, base).model_dump(exclude={"evaluate"})


def run_seed(
    task: str,
    seed: int,
    overrides: list[str],
    work: Path,
    preset: str,
    reuse_train_s: dict[int, float] | None = None,
) -> dict:
    """One seed's metrics; ``reuse_train_s`` (``--reuse``): a matching run folder in ``work``
    is only evaluated again (its train_s from this map, else its train_summary)."""
    seeded = [f"train.seed={seed}", f"sample.seed={seed}", f"evaluate.utility.seeds=[{seed}]"]
    config, base = task_config(task, seeded + overrides, preset)
    run_dir = work / f"seed_{seed}"
    if reuse_train_s is not None and reusable(run_dir, config, base):
        t0 = time.perf_counter()
        metrics = api.evaluate(run_dir, quiet=True, settings=config.evaluate)
        summary = json.loads((run_dir / "train_summary.json").read_text())
        train_s = reuse_train_s.get(seed, summary["seconds_this_process"])
        row = seed_metrics(metrics, TASK_METRIC.get(task, "dice_mean"))
        evaluate_s = time.perf_counter() - t0
        row.update(seed=seed, train_s=train_s, total_s=train_s + evaluate_s)
        return row
    if reuse_train_s is not None:
        print(f"seed {seed}: no matching run in {run_dir}, training it", flush=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    api.train(config, run_dir, base_dir=base, quiet=True)
    train_s = time.perf_counter() - t0
    # audit only: the export gate records its verdict and keeps every sample (as before the gate)
    api.sample(run_dir, quiet=True, audit_only=True)
    metrics = api.evaluate(run_dir, quiet=True)
    row = seed_metrics(metrics, TASK_METRIC.get(task, "dice_mean"))
    row.update(seed=seed, train_s=train_s, total_s=time.perf_counter() - t0)
    return row


# what each part of an extended row keeps of the run that made it
PART_KEYS = ("command", "code_commit", "date", "machine")


def committed_row(task: str, variant: str) -> tuple[Path, dict | None]:
    """The task's results file and its row ``variant`` (None when there is none)."""
    path = ROOT / "benchmarks" / "quality" / "results" / f"{task}.json"
    rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    return path, next((r for r in rows if r["variant"] == variant), None)


def earlier_seeds(
    task: str, variant: str, overrides: list[str], seeds: list[int]
) -> tuple[list[dict], list[dict]]:
    """The committed row's per-seed results (those not re-run now) and its parts, for
    ``--extend``: refused when the row is missing or ran with other overrides, since seeds of
    two different settings must not be averaged as one row."""
    path, row = committed_row(task, variant)
    if row is None:
        sys.exit(f"--extend: no committed row '{variant}' in {path}")
    if list(row.get("overrides", [])) != list(overrides):
        sys.exit(
            f"--extend: the row '{variant}' ran with --set {row.get('overrides')}, not {overrides}"
        )
    keep = [r for r in row["per_seed"] if r["seed"] not in seeds]
    parts = row.get("parts") or [{k: row[k] for k in PART_KEYS} | {"seeds": row["seeds"]}]
    if row.get("note"):
        parts[-1].setdefault("note", row["note"])
    return keep, parts


def committed_train_s(task: str, variant: str) -> dict[int, float]:
    """Training wall time per seed of the committed row ``variant`` (for ``--reuse``)."""
    row = committed_row(task, variant)[1] or {"per_seed": []}
    return {r["seed"]: r["train_s"] for r in row["per_seed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="demo", choices=TASKS)
    parser.add_argument(
        "--preset", default=None, help="demo: demo | demo-gan; lgg: shin2018-pix2pix | ..."
    )
    parser.add_argument("--variant", required=True, help="row label, e.g. before / after")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--budget", default=None, help="budget label (default: from --set)")
    parser.add_argument("--note", default="")
    parser.add_argument("--work", type=Path, default=None, help="run folders (default /tmp)")
    parser.add_argument(
        "--extend",
        action="store_true",
        help="add these seeds to the committed row of this --variant (same overrides) "
        "instead of replacing it; the row keeps each part's command, commit and date",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate again each seed's run in --work trained with the same settings but "
        "evaluate.* (e.g. a new --set evaluate.utility.min_steps) instead of training it; "
        "train s stays that of the committed row's seed (total s = it + the new evaluation)",
    )
    args = parser.parse_args()
    default_preset = {
        "busi": "fridadar2018-dcgan-per-class",
        **dict.fromkeys(LGG_TASKS, "shin2018-pix2pix"),
    }
    preset = args.preset or default_preset.get(args.task, "demo")
    work = args.work or Path(f"/tmp/synthmed-quality-{args.task}")
    command = "python benchmarks/quality/demo.py " + shlex.join(sys.argv[1:])
    budget = args.budget or next(
        (o.split("=", 1)[1] for o in args.overrides if o.startswith("train.budget=")),
        "fixed steps (task config)",
    )
    per_seed, parts = [], []
    if args.extend:
        per_seed, parts = earlier_seeds(args.task, args.variant, args.overrides, args.seeds)
    reuse_train_s = committed_train_s(args.task, args.variant) if args.reuse else None
    for seed in args.seeds:
        per_seed.append(
            run_seed(args.task, seed, args.overrides, work / args.variant, preset, reuse_train_s)
        )
        print(per_seed[-1], flush=True)
        # Saved after every seed (the row is replaced), so an interrupted multi-hour run
        # keeps the seeds it finished; the row's seed list says how many that was.
        row = row_header(args.task, args.variant, command, budget, args.overrides)
        row["preset"] = preset if args.task != "drive" else "task config"
        done = [r["seed"] for r in per_seed]
        row.update(seeds=done, per_seed=per_seed, summary=aggregate(per_seed))
        if parts:  # an extended row: what ran when, by which command and code
            this = {k: row[k] for k in PART_KEYS}
            row["parts"] = [*parts, {**this, "seeds": list(args.seeds)}]
            row["code_commit"] = " + ".join(dict.fromkeys(p["code_commit"] for p in row["parts"]))
            row["command"] = " ; then ".join(p["command"] for p in row["parts"])
        notes = [p["note"] for p in parts if p.get("note")] + ([args.note] if args.note else [])
        if notes:
            row["note"] = " ; then ".join(dict.fromkeys(notes))
        print(save_row(args.task, row), flush=True)


if __name__ == "__main__":
    main()
