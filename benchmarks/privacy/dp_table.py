"""Privacy/utility table: one generator per epsilon (DP-SGD on the critic), its utility and
the membership-inference AUC beside it.

    python benchmarks/privacy/dp_table.py --dataset breastmnist --steps 300    # AC-GAN, 28x28
    python benchmarks/privacy/dp_table.py --dataset drive --steps 300          # WGAN-GP(-SN)
    python benchmarks/privacy/dp_table.py --dataset phantom --tiny             # seconds: a check

Arms: ``none`` (the method as published, no DP), then ``train.privacy.epsilon`` = each of
``--epsilons`` (``inf`` = the DP-SGD pipeline with clipping but no noise). Every arm trains
``--steps`` generator steps from the same seed, samples, and is evaluated with the same
settings: utility (``synthetic-only``: a model trained on the synthetic set alone, tested on
the real test split; ``real`` once, as the reference), and the privacy audit's
membership-inference attacks (GAN-Leaks distance attacks; LOGAN on the critic where the
model has one). BreastMNIST needs ../shared/data/breastmnist, DRIVE ../shared/data/drive.

Writes benchmarks/privacy/results/<dataset>[_<tag>].json and .md with the date, machine,
command, scale and every number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from synthmed import __version__, api, atomic
from synthmed.config import load_run_config, resolve_config
from synthmed.machine import describe_machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
EXPERIMENTS = ROOT / "src" / "synthmed" / "reproduce" / "experiments"

TINY = [
    "data.train.phantom.n_patients=6",
    "data.train.phantom.size=32",
    "data.patches.size=16",
    "data.patches.per_image=4",
    "model.base_channels=4",
    "model.latent_dim=8",
    "train.batch_size=4",
    "train.n_critic=2",
    "sample.n=24",
    "evaluate.utility.steps=4",
    "evaluate.utility.val_every=2",
    "evaluate.utility.channels=[4,8]",
    "evaluate.utility.batch_size=4",
    "evaluate.encoder_steps=10",
]


def breastmnist_config(data_root: Path, overrides: list[str]):
    """Frid-Adar's AC-GAN (quick preset) on BreastMNIST, data as in the reproduction."""
    spec = yaml.safe_load((EXPERIMENTS / "fridadar2018-breastmnist.yaml").read_text())
    data = json.loads(json.dumps(spec["data"]))
    for split in ("train", "test"):
        data[split]["npz"] = str(data_root / data[split]["npz"])
    base = {"name": "dp-breastmnist", "data": data}
    return resolve_config(base, preset="fridadar2018-acgan", quick=True, overrides=overrides)


def drive_config(data_root: Path, overrides: list[str]):
    """Kossen's WGAN-GP-SN on DRIVE patches (examples/drive_wgan_gp_sn_quick.yaml)."""
    path = ROOT / "examples" / "drive_wgan_gp_sn_quick.yaml"
    cfg, _ = load_run_config(path, quick=True, overrides=overrides)
    data = cfg.data.model_dump(mode="json")
    for split in ("train", "test"):
        if data.get(split):
            data[split]["root"] = str(data_root / "drive")
    return cfg.model_copy(update={"data": type(cfg.data).model_validate(data)})


def phantom_config(_: Path, overrides: list[str]):
    return resolve_config({"name": "dp-phantom"}, preset="demo-gan", overrides=overrides)


DATASETS = {"breastmnist": breastmnist_config, "drive": drive_config, "phantom": phantom_config}


def _utility(metrics: dict, protocol: str) -> dict[str, Any] | None:
    """The task's primary metric for ``protocol`` (mean, sd, seeds) from metrics.json."""
    for task, section in (metrics.get("utility") or {}).items():
        if "summary" not in section:
            continue
        metric = section["metric"]
        for entry in section["summary"][metric]:
            if entry["protocol"] == protocol and entry["size"] == "all":
                return {"task": task, "metric": metric, "mean": entry["mean"], "sd": entry["std"]}
    return None


def _attacks(metrics: dict) -> dict[str, float | None]:
    """Membership-inference AUC of every attack the audit ran."""
    priv = metrics.get("privacy") or {}
    out: dict[str, float | None] = {}
    for space in ("pixel", "embedding"):
        block = (priv.get(space) or {}).get("membership") or {}
        for name in ("gan_leaks", "gan_leaks_calibrated"):
            if block.get(name):
                out[f"{name}_{space}"] = block[name]["auc"]
    if priv.get("membership_logan"):
        out["logan_critic"] = priv["membership_logan"]["auc"]
    return out


def run_arm(cfg, run: Path, epsilon: str | None, args) -> dict[str, Any]:
    """Train, sample and evaluate one arm; returns its table row."""
    extra = [] if epsilon is None else [f"train.privacy.epsilon={epsilon}"]
    extra += [] if epsilon is None else [f"train.privacy.delta={args.delta}"]
    cfg = resolve_config(
        cfg.model_dump(mode="json"),
        overrides=[f"train.steps={args.steps}", *extra],
        apply_preset=False,
    )
    shutil.rmtree(run, ignore_errors=True)
    times = {}
    start = time.perf_counter()
    api.train(cfg, run, quiet=True)
    times["train_s"] = round(time.perf_counter() - start, 1)
    api.sample(run, quiet=True, device=args.device)
    protocols = ["real", "synthetic-only"] if args.with_real else ["synthetic-only"]
    start = time.perf_counter()
    metrics = api.evaluate(
        run, device=args.device, quiet=True, protocols=protocols, seeds=args.seeds,
        overrides=args.eval_overrides,
    )  # fmt: skip
    times["evaluate_s"] = round(time.perf_counter() - start, 1)
    summary = json.loads((run / "train_summary.json").read_text())
    privacy = summary.get("privacy") or {}
    return {
        "arm": "none" if epsilon is None else f"epsilon={epsilon}",
        "epsilon_target": None if epsilon is None else epsilon,
        "epsilon_spent": privacy.get("epsilon"),
        "delta": privacy.get("delta"),
        "noise_multiplier": privacy.get("noise_multiplier"),
        "dp_steps": privacy.get("dp_steps"),
        "synthetic_only": _utility(metrics, "synthetic-only"),
        "real": _utility(metrics, "real"),
        "membership_auc": _attacks(metrics),
        "wall_times": times,
        "run": str(run),
    }


def markdown(result: dict) -> str:
    """The table as Markdown, with what produced it."""
    rows = result["rows"]
    attacks = sorted({k for r in rows for k in r["membership_auc"]})
    util = next((r["synthetic_only"] for r in rows if r["synthetic_only"]), None)
    metric = f"{util['metric']} (synthetic-only)" if util else "utility"
    head = ["arm", "epsilon spent", "delta", "noise", metric, *[f"AUC {a}" for a in attacks]]
    lines = [
        f"# Privacy/utility: {result['dataset']}",
        "",
        f"- date: {result['date']}",
        f"- machine: {result['machine']}",
        f"- command: `{result['command']}`",
        f"- scale: {result['scale']}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]

    def cell(v):
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    for r in rows:
        u = r["synthetic_only"]
        if u is None:
            util_cell = "-"
        elif u.get("sd") is None:  # one seed: no spread to show
            util_cell = f"{u['mean']:.3f}"
        else:
            util_cell = f"{u['mean']:.3f} ± {u['sd']:.3f}"
        cells = [
            r["arm"],
            cell(r["epsilon_spent"]),
            "-" if r["delta"] is None else f"{r['delta']:g}",
        ]
        cells += [cell(r["noise_multiplier"])]
        cells += [util_cell, *[cell(r["membership_auc"].get(a)) for a in attacks]]
        lines.append("| " + " | ".join(cells) + " |")
    real = next((r["real"] for r in rows if r["real"]), None)
    if real:
        lines += ["", f"Reference, trained on the real training split: {real['mean']:.3f}."]
    lines += [
        "",
        "AUC 0.5 is chance. `inf`: DP-SGD pipeline (Poisson sampling, GroupNorm, clipping) "
        "without noise. `none`: the method as published.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="breastmnist")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--epsilons", default="1,10,inf")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--steps", type=int, default=300, help="generator steps per arm")
    parser.add_argument("--seeds", type=int, default=1, help="utility seeds per arm")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("runs/dp_table"))
    parser.add_argument("--tag", default="")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for JSON + MD")
    parser.add_argument("--tiny", action="store_true", help="seconds-scale check of the script")
    parser.add_argument("--no-real", dest="with_real", action="store_false")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--eval-set", action="append", default=[], dest="eval_overrides")
    args = parser.parse_args()
    overrides = (TINY if args.tiny else []) + [f"train.device={args.device}", *args.overrides]
    cfg = DATASETS[args.dataset](args.data_root, overrides)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"{args.dataset}{'_' + args.tag if args.tag else ''}"
    for i, eps in enumerate([None, *args.epsilons.split(",")]):
        name = "none" if eps is None else f"eps_{eps}"
        rows.append(run_arm(cfg, args.out / args.dataset / name, eps, args))
        args.with_real = False if i == 0 else args.with_real  # the real reference once
        print(json.dumps({k: rows[-1][k] for k in ("arm", "epsilon_spent", "synthetic_only")}))
        # after every arm, so an interrupted run keeps the arms it finished
        result = {
            "benchmark": "dp_table",
            "dataset": args.dataset,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": describe_machine(),
            "synthmed": __version__,
            "scale": (
                f"{'tiny phantom check' if args.tiny else args.dataset}: {args.steps} generator "
                f"steps per arm, model {cfg.model.name} base width {cfg.model.base_channels}, "
                f"batch {cfg.train.batch_size}, n_critic {cfg.train.n_critic}, {args.seeds} "
                f"utility seed(s), utility steps {cfg.evaluate.utility.steps}; delta "
                f"{args.delta:g}; evaluate overrides {args.eval_overrides or 'none'}"
            ),
            "total_s": round(time.perf_counter() - t0, 1),
            "rows": rows,
        }
        atomic.write_text(args.results / f"{stem}.json", json.dumps(result, indent=1, default=str))
        atomic.write_text(args.results / f"{stem}.md", markdown(result))
    print(json.dumps({"written": str(args.results / f"{stem}.md"), "total_s": result["total_s"]}))


if __name__ == "__main__":
    main()
