"""``synthmed reproduce NAME``: train every arm of an experiment on every fold, sample,
evaluate (the real-only baselines once per fold, the synthetic protocols per arm), write each
arm's report and one ``results.json`` + ``results.md`` for the experiment."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from synthmed import __version__, api
from synthmed.atomic import write_json, write_text
from synthmed.checkpoints import file_sha256, find_last_checkpoint
from synthmed.config.loading import deep_merge, read_preset, resolve_config
from synthmed.config.schema import EvaluateConfig, RunConfig
from synthmed.errors import InputError
from synthmed.evaluation.run import evaluation_settings, with_evaluate_overrides
from synthmed.machine import describe_machine
from synthmed.reproduce.markdown import results_markdown
from synthmed.reproduce.merging import (
    check_mergeable,
    has_baselines,
    merged_entries,
    merged_parts,
)
from synthmed.reproduce.spec import ArmSpec, ExperimentSpec, read_experiment, split_file
from synthmed.reproduce.summary import (
    baseline_tests,
    cell_table,
    claim_verdict,
    fidelity_privacy,
    tagged_rows,
    task_metrics,
)

log = logging.getLogger(__name__)
DEFAULT_DATA_ROOT = Path("../shared/data")


def _data_section(spec: ExperimentSpec, fold: int, data_root: Path) -> dict[str, Any]:
    """The experiment's data with paths under ``data_root`` and the fold's split file."""
    data = copy.deepcopy(spec.data)
    for name in ("train", "test"):
        source = data.get(name)
        if not isinstance(source, dict):
            continue
        for key in ("root", "csv", "npz"):
            if source.get(key) is not None:
                source[key] = str((data_root / source[key]).resolve())
    data["split"] = {**data.get("split", {}), "file": str(split_file(spec.folds[fold]))}
    return data


def arm_config(
    spec: ExperimentSpec,
    arm: ArmSpec,
    fold: int = 0,
    scale: str = "reduced",
    quick: bool = False,
    data_root: Path = DEFAULT_DATA_ROOT,
) -> RunConfig:
    """The run config of one arm: its preset (with the preset's --quick block at reduced
    scale), the experiment's data replacing the preset's whole, the arm's settings, then the
    scale's overrides (and the smoke version's with ``quick``)."""
    if scale not in spec.scales:
        raise InputError(
            f"experiment {spec.name} has no scale '{scale}' ({', '.join(spec.scales)})"
        )
    chosen = spec.scales[scale]
    merged = read_preset(arm.preset)
    quick_block = merged.pop("quick", {}) or {}
    if chosen.quick_presets or quick:
        merged = deep_merge(merged, quick_block)
    merged["preset"] = arm.preset
    merged["name"] = f"{spec.name}-{arm.name}"
    merged["data"] = (
        copy.deepcopy(spec.quick_data) if quick else _data_section(spec, fold, Path(data_root))
    )
    merged = deep_merge(merged, arm.config)
    overrides = [*chosen.overrides, *arm.scale_overrides.get(scale, []), *arm.overrides]
    if quick:
        overrides += [*spec.quick_overrides, *arm.quick_overrides]
    return resolve_config(merged, overrides=overrides, source=f"experiment {spec.name}/{arm.name}")


def _timed(times: dict, key: str, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    times[key] = round(time.perf_counter() - start, 1)
    return out


def _run_arm(
    config: RunConfig,
    run_dir: Path,
    protocols: list[str],
    sizes: list,
    seeds: int,
    device: str,
    quiet: bool,
    reuse: bool,
    mask_stage_from: Path | None = None,
) -> tuple[dict, dict]:
    """Train (unless reused), sample, evaluate and report one arm; its metrics and times.

    ``mask_stage_from``: an earlier arm of the fold whose mask stage this one may copy.
    """
    times: dict[str, float] = {}
    trained = find_last_checkpoint(run_dir) is not None  # per-class runs: classes/class_K
    sampled = (run_dir / "synthetic" / "manifest.csv").is_file()
    if trained and _trained_differently(run_dir, config):  # run_experiment checked --reuse
        raise InputError(
            "--reuse: this arm was trained with other data/model/training/sampling settings "
            "than the experiment now gives; choose another --out",
            run_dir,
        )
    if not trained or not sampled:
        # never sampled: training may have been interrupted (last.pt is written at every
        # checkpoint), so resume it; a finished stage returns at once
        _timed(
            times,
            "train_s",
            api.train,
            config,
            run_dir,
            resume=trained,
            quiet=quiet,
            mask_stage_from=mask_stage_from,
        )
    if not (reuse and sampled):
        # every sample the protocol draws is evaluated (the gate records, never drops): the
        # arm's synthetic set is for the paper's comparison, not for sharing
        _timed(times, "sample_s", api.sample, run_dir, device=device, quiet=quiet, audit_only=True)
    metrics_file = run_dir / "metrics.json"
    wanted = _wanted(config, protocols, sizes, seeds)
    fresh = "train_s" in times or "sample_s" in times  # a stored evaluation is of older samples
    if reuse and not fresh and _covers(metrics_file, wanted):
        metrics = json.loads(metrics_file.read_text())
    else:
        metrics = _timed(
            times,
            "evaluate_s",
            api.evaluate,
            run_dir,
            device=device,
            quiet=quiet,
            protocols=protocols,
            sizes=sizes,
            seeds=seeds,
            settings=config.evaluate,
        )
    _timed(times, "report_s", api.report, run_dir)
    return metrics, times


def _trained_differently(run_dir: Path, config: RunConfig) -> bool:
    keep = {"data", "model", "train", "mask_stage", "sample"}  # evaluation: see _covers
    saved = api.load_run_config(run_dir).model_dump(include=keep)
    wanted = config.model_dump(include=keep)
    for dump in (saved, wanted):  # a split file counts by content, not by install location
        split = dump["data"].get("split") or {}
        if split.get("file") is not None:
            where = Path(split["file"])
            split["file"] = file_sha256(where) if where.is_file() else where.name
    return saved != wanted


def _covers(metrics_file: Path, wanted: dict) -> bool:
    """Whether a stored evaluation was made with the wanted settings (the experiment's
    ``evaluate`` section, sizes, seeds) and has at least the wanted protocols (rows of other
    protocols are dropped by the caller)."""
    if not metrics_file.is_file():
        return False
    recorded = json.loads(metrics_file.read_text()).get("evaluation") or {}
    try:  # settings added since the evaluation count with their defaults
        stored = evaluation_settings(EvaluateConfig.model_validate(recorded))
    except ValidationError:
        return False
    wanted = copy.deepcopy(wanted)
    have = set(stored.get("utility", {}).pop("protocols", None) or [])
    return set(wanted["utility"].pop("protocols")) <= have and stored == wanted


def _wanted(config: RunConfig, protocols: list[str], sizes: list, seeds: int) -> dict:
    """The evaluation settings as metrics.json records them, for this arm's evaluation."""
    chosen = with_evaluate_overrides(config, protocols, sizes, seeds)
    return evaluation_settings(chosen)


def _baseline_arm(
    spec: ExperimentSpec, configs: dict[str, RunConfig], fold_dir: Path, sizes: list, seeds: int
) -> str | None:
    """The first arm (of ``configs``, in order) whose stored evaluation already holds the
    fold's real-only baselines with the wanted settings, or None."""
    protocols = [*spec.baseline_protocols, *spec.synthetic_protocols]
    for name, config in configs.items():
        if _covers(fold_dir / name / "metrics.json", _wanted(config, protocols, sizes, seeds)):
            return name
    return None


def run_experiment(
    name: str | Path,
    out: str | Path,
    data_root: str | Path = DEFAULT_DATA_ROOT,
    scale: str = "reduced",
    quick: bool = False,
    seeds: int | None = None,
    arms: list[str] | None = None,
    folds: list[int] | None = None,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = False,
    command: str = "",
    merge_with: dict | None = None,
    merge_source: str = "",
) -> dict:
    """Run one experiment; writes ``out/results.json`` and ``out/results.md``.

    Args:
        name: a built-in experiment (``synthmed reproduce --list``) or an experiment file.
        out: folder of the arms' run folders (``fold<k>/<arm>``) and the results.
        data_root: folder the experiment's data paths are relative to.
        scale: ``reduced`` (what runs on a laptop CPU) or ``paper`` where the experiment has it.
        quick: the smoke version on built-in phantoms (tiny models, minutes).
        seeds: utility seeds per cell (default: the experiment's, >= 3).
        arms: run only these arms (default all).
        folds: run only these cross-validation folds (default all; the results say which).
        reuse: keep trained arms, samples and matching evaluations found in ``out``.
        merge_with: earlier results of this experiment (a committed ``results.json``, read
            from ``merge_source``) whose other arms and real-only baselines are kept: the arms
            run now evaluate only their synthetic protocols where those baselines exist.

    Returns:
        The results (also in ``results.json``).
    """
    spec = read_experiment(name)
    out = Path(out)
    n_seeds = seeds or spec.seeds
    chosen = [a for a in spec.arms if arms is None or a.name in arms]
    if not chosen:
        raise InputError(
            f"no arm of {spec.name} matches {arms}; arms: {[a.name for a in spec.arms]}"
        )
    every = list(range(len(spec.folds)))
    if folds is not None and not set(folds) <= set(every):
        raise InputError(f"{spec.name} has folds {every}, not {sorted(set(folds) - set(every))}")
    folds = [0] if quick else sorted(set(folds)) if folds is not None else every
    sizes = list(spec.quick_sizes if quick else spec.sizes)
    if not quick:
        _check_data_root(spec, Path(data_root))
    if merge_with is not None:
        header = {
            "experiment": spec.name,
            "scale": _scale_label(scale, quick),
            "seeds": n_seeds,
            "sizes": sizes,
        }
        check_mergeable(merge_with, header, merge_source)
    if not reuse:  # before any work, not when the loop reaches the arm
        for fold in folds:
            for arm in chosen:
                if find_last_checkpoint(out / f"fold{fold}" / arm.name) is not None:
                    raise InputError(
                        "this arm was run before; pass --reuse or choose another --out",
                        out / f"fold{fold}" / arm.name,
                    )
    start = time.perf_counter()
    rows, sets, runs = [], [], []
    for fold in folds:
        configs = {a.name: arm_config(spec, a, fold, scale, quick, Path(data_root)) for a in chosen}
        # the arm that carries the real-only baselines: with --reuse one that has them stored
        # (adding an arm does not re-train them), else the first
        stored = (
            _baseline_arm(spec, configs, out / f"fold{fold}", sizes, n_seeds) if reuse else None
        )
        carrier = stored or chosen[0].name
        if merge_with is not None and has_baselines(merge_with, fold):
            carrier = None  # the merged results' real-only rows are this fold's baselines
        cascade_dirs: list[Path] = []  # arms of this fold with a mask stage, in order
        for arm in chosen:
            config = configs[arm.name]
            protocols = list(spec.synthetic_protocols)
            if arm.name == carrier:
                protocols = [*spec.baseline_protocols, *protocols]
            run_dir = out / f"fold{fold}" / arm.name
            log.info("%s: fold %d, arm %s -> %s", spec.name, fold, arm.name, run_dir)
            earlier = cascade_dirs[0] if cascade_dirs else None
            metrics, times = _run_arm(
                config, run_dir, protocols, sizes, n_seeds, device, quiet, reuse, earlier
            )
            if config.mask_stage is not None:
                cascade_dirs.append(run_dir)
            rows += [r for r in tagged_rows(metrics, arm.name, fold) if r["protocol"] in protocols]
            sets.append({"arm": arm.name, "fold": fold, **fidelity_privacy(metrics)})
            runs.append(_run_entry(arm, fold, config, run_dir, out, times, metrics))
    wall_time_s = round(time.perf_counter() - start, 1)
    names = [a.name for a in chosen]
    if merge_with is not None:
        rows = merged_entries(merge_with["rows"], rows, names, folds)
        sets = merged_entries(merge_with["synthetic_sets"], sets, names, folds)
        runs = merged_entries(merge_with["runs"], runs, names, folds)
    results = _results(
        spec, rows, sets, runs, scale, quick, n_seeds, sizes, Path(data_root), command
    )
    results["folds_run"] = folds
    results["wall_time_s"] = wall_time_s
    if merge_with is not None:
        part = {
            "command": command,
            "date": results["date"],
            "arms": names,
            "folds": folds,
            "wall_time_s": wall_time_s,
        }
        results["parts"] = merged_parts(merge_with, part)
        results["folds_run"] = sorted({f for p in results["parts"] for f in p["folds"]})
        results["wall_time_s"] = round(sum(p["wall_time_s"] or 0 for p in results["parts"]), 1)
    write_json(out / "results.json", results)
    write_text(out / "results.md", results_markdown(results))
    return results


def _check_data_root(spec: ExperimentSpec, data_root: Path) -> None:
    source = spec.data.get("train", {})
    where = next((source[k] for k in ("root", "csv", "npz") if source.get(k)), None)
    if where is not None and not (data_root / where).exists():
        raise InputError(
            f"experiment {spec.name} needs {where} under the data root; pass --data-root "
            "(the folder holding drive/, lgg_flair/, busi_256/, breastmnist/) or use --quick "
            "for the phantom smoke version",
            data_root / where,
        )


def _run_entry(arm, fold, config: RunConfig, run_dir, out, times, metrics) -> dict:
    """What was trained, at which settings, and how long each stage took."""
    stage = config.mask_stage
    return {
        "arm": arm.name,
        "fold": fold,
        "preset": arm.preset,
        "run_dir": str(run_dir.relative_to(out)),
        "report": str((run_dir / "report.html").relative_to(out)),
        "model": config.model.name,
        "generator_steps": config.train.steps,
        "mask_stage_steps": stage.train.steps if stage is not None else None,
        "batch_size": config.train.batch_size,
        "base_channels": config.model.base_channels,
        "pair_shape": metrics.get("pair_shape"),
        "n_training_pairs": metrics.get("n_training_pairs"),
        "n_synthetic": (metrics.get("provenance") or {}).get("n_synthetic"),
        "utility_steps": config.evaluate.utility.steps,
        "utility_channels": list(config.evaluate.utility.channels),
        "wall_times": times,
    }


def _scale_label(scale: str, quick: bool) -> str:
    """The scale as results.json states it (and as --merge compares it)."""
    return "quick (phantom smoke version)" if quick else scale


def _results(spec, rows, sets, runs, scale, quick, n_seeds, sizes, data_root, command) -> dict:
    task = rows[0]["task"] if rows else "segmentation"
    metrics = task_metrics(task)
    metric = spec.task_metric
    return {
        "experiment": spec.name,
        "title": spec.title,
        "paper": spec.paper,
        "task": task,
        "metric": metric,
        "scale": _scale_label(scale, quick),
        "scale_note": spec.scales[scale].note,
        "data": "built-in phantoms" if quick else spec.data,
        "data_root": None if quick else str(data_root.resolve()),
        "folds": 1 if quick else len(spec.folds),
        "seeds": n_seeds,
        "sizes": sizes,
        "runs": runs,
        "cells": cell_table(rows, metrics),
        "baseline_tests": baseline_tests(rows, metric),
        "claims": [claim_verdict(rows, claim, metric) for claim in spec.claims],
        "synthetic_sets": sets,
        "notes": spec.notes,
        "rows": rows,
        "command": command,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "synthmed": __version__,
    }
