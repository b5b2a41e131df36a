"""The utility section of metrics.json: every protocol x real-patient count x seed.

Each cell trains one model with the harness (:mod:`synthmed.evaluation.utility`): selection and
early stopping on the real validation split, one score on the real test split. Rows are
summarised per (protocol, size) with mean, std and a 95% bootstrap CI, and each protocol is
compared with ``real+classic-aug`` (the baseline to beat) by a paired Wilcoxon test over seeds.
The default protocols and sizes (``real`` and ``synthetic-only`` on all patients) are what the
demo can afford; ``synthmed evaluate --protocols all --sizes 1,2,5,all --seeds 3`` is the study.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from synthmed import distributed
from synthmed.config.schema import UtilityConfig
from synthmed.errors import InputError
from synthmed.evaluation.inputs import EvalInputs
from synthmed.evaluation.utility import (
    Settings,
    TrainingSet,
    flatten_scores,
    paired_wilcoxon,
    parse_protocol,
    run_protocol,
    set_from_items,
    subset_patients,
    summarize,
)
from synthmed.evaluation.utility.sweep import patient_keys
from synthmed.progress import stage

log = logging.getLogger(__name__)

ALL_PROTOCOLS = (
    "real",
    "real+classic-aug",
    "real+synthetic:1",
    "real+synthetic:2",
    "real+synthetic:5",
    "synthetic-only",
    "pretrain-synthetic+finetune-real",
)
BASELINE = "real+classic-aug"
# metrics.json arm names from before the protocol harness (the demo prints them).
ARM_NAMES = {"synthetic-only": "synthetic"}
METRICS = {
    "segmentation": ("dice_mean", "hd95_mean"),
    "classification": ("balanced_accuracy", "auc_macro", "sensitivity_macro", "specificity_macro"),
}
# Per-image lists are kept in the rows; these per-model extras are not needed downstream.
_DROP = ("confusion_matrix",)


def expand_protocols(names: Sequence[str]) -> list[str]:
    """Protocol names with ``all`` expanded, checked, duplicates removed (order kept)."""
    out: list[str] = []
    for raw in names:
        for name in ALL_PROTOCOLS if raw.strip().lower() == "all" else (raw.strip(),):
            try:
                parse_protocol(name)
            except ValueError as exc:
                raise InputError(f"--protocols: {exc}") from None
            if name not in out:
                out.append(name)
    return out


def resolve_sizes(sizes: Sequence[int | str], n_patients: int) -> tuple[list, list]:
    """Sizes the training split can serve, and those dropped (more patients than it has)."""
    kept: list[int | str] = []
    dropped: list[int | str] = []
    for size in sizes:
        size = "all" if str(size).lower() == "all" else int(size)
        target = dropped if size != "all" and size > n_patients else kept
        if size not in target:
            target.append(size)
    if dropped:
        log.warning(
            "utility sizes %s dropped: the training split has %d patients", dropped, n_patients
        )
    return kept or ["all"], dropped


def _uses_real(protocol: str) -> bool:
    return parse_protocol(protocol)[0] != "synthetic-only"


def reference_protocol(
    real: TrainingSet, val, test, settings: Settings, seed: int, device
) -> tuple[dict[str, Any], torch.nn.Module]:
    """The ``real`` protocol exactly as the sweep runs it, also returning the model.

    The image-label agreement needs the real-trained U-Net of the sweep itself (not a retrained
    copy); ``tests/evaluation/test_run.py`` checks that both give the same scores.
    """
    result = run_protocol(
        "segmentation",
        "real",
        real,
        None,
        list(val),
        list(test),
        settings,
        seed,
        device,
        keep_model=True,
    )
    return result, result.pop("model")


def _row(task: str, protocol: str, size, seed: int, real: TrainingSet, result: dict) -> dict:
    """One sweep row, in :func:`synthmed.evaluation.utility.run_sweep`'s layout."""
    row = {"task": task, "axis": "real_patients", "protocol": protocol, "size": size, "seed": seed}
    row["n_real_patients"] = len(set(patient_keys(real)))
    row["n_real_rows"] = result["n_real_rows"]
    row["n_synthetic_rows"] = result["n_synthetic_rows"]
    scores = {k: v for k, v in flatten_scores(result["scores"]).items() if k not in _DROP}
    row.update(scores)
    row["history"] = result["history"]
    return row


def _held_out(task: str, items: list) -> list | TrainingSet:
    """Validation/test as whole-image items (segmentation) or a class-labelled set."""
    if task == "segmentation":
        return list(items)
    if not items:
        return TrainingSet(np.zeros((0, 1, 1, 1), np.float32), None, np.zeros(0, np.int64))
    return set_from_items(items)


def _train_cell(task, protocol, real, synthetic, held, settings, seed, device, keep_model):
    """One model's result (and the model itself when ``keep_model``: the reference U-Net)."""
    val, test = held
    if keep_model:
        return reference_protocol(real, val, test, settings, seed, device)
    result = run_protocol(task, protocol, real, synthetic, val, test, settings, seed, device)
    return result, None


def _sweep(
    inputs: EvalInputs,
    protocols: list[str],
    sizes: list,
    seeds: list[int],
    settings: Settings,
    device,
    quiet: bool,
    want_reference: bool,
) -> tuple[list[dict], torch.nn.Module | None]:
    """Train every (size, seed, protocol) cell; nested real subsets per seed (paired design).

    ``synthetic-only`` ignores the real subset, so it is trained once per seed and its row is
    repeated for the other sizes (same seed, same data: the same model).

    Under torchrun the trainings are split over the ranks (round robin; the reference U-Net
    on rank 0) and their results gathered: each cell is seeded on its own, so the rows are
    those of one process; the reference model is broadcast, so every rank holds it.
    """
    task, metric = inputs.task, METRICS[inputs.task][0]
    held = (_held_out(task, inputs.splits.get("val", [])), _held_out(task, inputs.splits["test"]))
    ref_cell = ("real", "all", seeds[0]) if want_reference and task == "segmentation" else None
    cells = _cells(protocols, sizes, seeds)
    rank, world = distributed.rank(), distributed.world_size()
    mine, reference = {}, None
    with stage("utility", len(cells), quiet) as bar:
        for i, (protocol, size, seed) in enumerate(cells):
            keep = (protocol, size, seed) == ref_cell
            if (0 if keep else i % world) != rank:
                continue
            real = subset_patients(inputs.real, size, seed)
            mine[(protocol, seed, size)], model = _train_cell(
                task, protocol, real, inputs.synthetic, held, settings, seed, device, keep
            )
            reference = model or reference
            row = _row(task, protocol, size, seed, real, mine[(protocol, seed, size)])
            value = row.get(metric, float("nan"))
            bar.advance(1, f"{protocol} n={size} seed={seed}: {metric} {value:.3f}")
        results = {k: v for part in distributed.all_gather_objects(mine) for k, v in part.items()}
        bar.advance(len(cells) - len(mine))
    if world > 1 and ref_cell in cells:
        reference = _shared_reference(reference, device)
    return _rows(inputs, protocols, sizes, seeds, results), reference


def _shared_reference(reference: torch.nn.Module | None, device) -> torch.nn.Module:
    """Rank 0's reference U-Net on every rank (sent as a CPU copy: a pickled CUDA tensor
    would land on rank 0's GPU); rank 0 keeps its own object."""
    sent = distributed.broadcast_object(
        copy.deepcopy(reference).to("cpu") if distributed.is_main() else None
    )
    return reference if distributed.is_main() else sent.to(device)


def _cells(protocols: list[str], sizes: list, seeds: list[int]) -> list[tuple[str, Any, int]]:
    """The (protocol, size, seed) trainings of a sweep, in order: ``synthetic-only`` once per
    seed (at the first size)."""
    cells, seen = [], set()
    for size, seed in itertools.product(sizes, seeds):
        for protocol in protocols:
            if _uses_real(protocol) or (protocol, seed) not in seen:
                seen.add((protocol, seed))
                cells.append((protocol, size, seed))
    return cells


def _rows(inputs: EvalInputs, protocols, sizes, seeds, results: dict) -> list[dict]:
    """The sweep's rows in (size, seed, protocol) order from the trained cells' results."""
    rows, first = [], {}
    for size, seed in itertools.product(sizes, seeds):
        real = subset_patients(inputs.real, size, seed)
        for protocol in protocols:
            key = (protocol, seed, size)
            if key not in results:  # synthetic-only: the model trained at the first size
                key = first[(protocol, seed)]
            first.setdefault((protocol, seed), key)
            rows.append(_row(inputs.task, protocol, size, seed, real, results[key]))
    return rows


def _summary(rows: list[dict], task: str) -> dict[str, list[dict]]:
    """Per metric: one entry per (protocol, size) with mean, std, n, 95% bootstrap CI and the
    number of real patients (the x axis of the report's plot)."""
    patients = {(r["protocol"], r["size"]): r["n_real_patients"] for r in rows}
    out = {}
    for metric in METRICS[task]:
        entries = summarize(rows, metric)
        for entry in entries:
            entry["n_real_patients"] = patients[(entry["protocol"], entry["size"])]
        out[metric] = entries
    return out


def _arms(rows: list[dict], task: str) -> dict[str, dict]:
    """Each protocol at the largest size ("all" when swept), aggregated over seeds.

    Keys ``<metric>_mean`` / ``<metric>_std`` (std over seeds, NaN for one seed), e.g.
    ``dice_mean``, ``hd95_mean``, ``balanced_accuracy_mean``.
    """
    sizes = {r["size"] for r in rows}
    top = "all" if "all" in sizes else max(sizes)
    metrics = METRICS[task]
    arms = {}
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        group = [r for r in rows if r["protocol"] == protocol and r["size"] == top]
        arm: dict[str, Any] = {"protocol": protocol, "size": top, "seeds": len(group)}
        arm["n_train"] = int(group[0]["n_real_rows"] + group[0]["n_synthetic_rows"])
        arm["n_images"] = group[0].get("n_images")
        for m in metrics:
            vals = np.array([r.get(m, np.nan) for r in group], dtype=float)
            finite = vals[np.isfinite(vals)]
            stem = m.removesuffix("_mean")  # dice_mean -> dice_mean, dice_std (old layout)
            arm[f"{stem}_mean"] = float(finite.mean()) if finite.size else float("nan")
            arm[f"{stem}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
        if task == "segmentation":
            arm["hd95_undefined"] = int(sum(r["hd95_undefined"] for r in group))
        arm["per_seed"] = [{"seed": r["seed"], **{m: r.get(m) for m in metrics}} for r in group]
        arms[ARM_NAMES.get(protocol, protocol)] = arm
    return arms


def run_utility(
    inputs: EvalInputs,
    cfg: UtilityConfig,
    device: str | torch.device,
    quiet: bool = False,
    want_reference: bool = False,
) -> tuple[dict[str, Any], torch.nn.Module | None]:
    """Run the sweep and summarise it.

    Returns:
        ``{task: section}`` for metrics.json ``utility`` (section keys: ``arms``, ``rows``,
        ``summary``, ``wilcoxon`` (None without the baseline), ``protocols``, ``sizes``,
        ``dropped_sizes``, ``seeds``, ``metric``, ``baseline``, ``note``) and, when
        ``want_reference``, the ``real`` protocol's U-Net at size all and the first seed.
    """
    protocols = expand_protocols(cfg.protocols)
    n_patients = len(set(patient_keys(inputs.real)))
    sizes, dropped = resolve_sizes(cfg.sizes, n_patients)
    seeds = list(dict.fromkeys(int(s) for s in cfg.seeds))
    settings = Settings.from_config(cfg, inputs.num_classes, patience=cfg.patience)
    want_reference = want_reference and inputs.task == "segmentation"
    in_sweep = want_reference and "real" in protocols and "all" in sizes
    rows, reference = _sweep(inputs, protocols, sizes, seeds, settings, device, quiet, in_sweep)
    if want_reference and reference is None:  # not part of this sweep: train it on its own
        held = [list(inputs.splits.get("val", [])), list(inputs.splits["test"])]
        _, reference = reference_protocol(inputs.real, *held, settings, seeds[0], device)
    metric = METRICS[inputs.task][0]
    section = {
        "task": inputs.task,
        "metric": metric,
        "protocols": protocols,
        "sizes": sizes,
        "dropped_sizes": dropped,
        "seeds": seeds,
        "n_real_patients": n_patients,
        **_statistics(rows, inputs.task, BASELINE in protocols),
        "rows": rows,
        "note": _note(inputs.task, cfg, len(seeds)),
    }
    return {inputs.task: section}, reference


def _statistics(rows: list[dict], task: str, has_baseline: bool) -> dict[str, Any]:
    metric = METRICS[task][0]
    return {
        "baseline": BASELINE if has_baseline else None,
        "arms": _arms(rows, task),
        "summary": _summary(rows, task),
        "wilcoxon": paired_wilcoxon(rows, metric, BASELINE) if has_baseline else None,
    }


def _note(task: str, cfg: UtilityConfig, n_seeds: int) -> str:
    model = f"U-Net {list(cfg.channels)}" if task == "segmentation" else "CNN classifier"
    floor = f", not before step {cfg.min_steps}" if cfg.min_steps else ""
    if task == "segmentation" and cfg.foreground_fraction:
        model += f" ({cfg.foreground_fraction:g} of each batch from slices with a label)"
    return (
        f"{model}, at most {cfg.steps} steps (batch {cfg.batch_size}, lr {cfg.lr:g}); weights "
        f"chosen and training stopped early (patience {cfg.patience} validations every "
        f"{cfg.val_every} steps{floor}) on the real validation split; each model scored once on the "
        f"real test split; {n_seeds} seed(s) per cell."
    )
