"""Training protocols of the utility harness, all tested on the same REAL test split.

Names (an optional ``+classic-aug`` suffix turns on classic augmentation for any of them):

- ``real``: real training rows only; ``real+classic-aug`` is the baseline to beat.
- ``real+synthetic:R``: real rows plus R synthetic rows per real row (Frid-Adar et al. 2018,
  Platscher et al. 2021), drawn per class when both sets have image classes.
- ``real+synthetic:N/class``: real rows plus N synthetic rows of every class of the real rows
  (N in all when there are no image classes): Frid-Adar's sweep of synthetic images added
  per class. For one seed the draws are nested (the N=100 rows contain the N=50 rows).
- ``synthetic-only``: the synthetic rows alone (the anonymization arm; Shin et al. 2018,
  Kossen et al. 2021).
- ``pretrain-synthetic+finetune-real``: pretrain on synthetic rows, then fine-tune on the
  real rows (Kossen et al. 2021 transfer learning).

Every stage selects its weights and stops early on the real validation split; the test split
is scored once, after the last stage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch

from synthmed.config.schema import ClassicAugConfig, UtilityConfig
from synthmed.data.types import Item
from synthmed.evaluation.utility.classification import score_classifier, train_classifier
from synthmed.evaluation.utility.loop import DEFAULT_PATIENCE
from synthmed.evaluation.utility.segmentation import score_items, train_segmenter
from synthmed.evaluation.utility.sets import (
    TrainingSet,
    concat_sets,
    items_from_set,
    set_from_items,
)

Task = Literal["segmentation", "classification"]
AUG_SUFFIX = "+classic-aug"
MIXED = "real+synthetic"
PRETRAIN = "pretrain-synthetic+finetune-real"
PER_CLASS = "/class"
BASES = ("real", MIXED, "synthetic-only", PRETRAIN)


@dataclass(frozen=True)
class Settings:
    """What every arm shares: budget, networks, classic augmentation.

    Attributes mirror :class:`~synthmed.config.schema.UtilityConfig` where they overlap
    (``channels`` is the U-Net's). ``pretrain_steps`` defaults to ``steps`` and
    ``finetune_lr`` to ``lr``; ``positive_class`` picks the binary sensitivity/specificity.
    """

    num_classes: int
    steps: int = 400
    batch_size: int = 16
    lr: float = 1e-3
    val_every: int = 50
    patience: int | None = DEFAULT_PATIENCE
    min_steps: int | None = None
    foreground_fraction: float = 0.0
    channels: tuple[int, ...] = (16, 32, 64)
    classifier: str = "fridadar_cnn"
    classifier_kwargs: dict | None = None
    pretrain_steps: int | None = None
    finetune_lr: float | None = None
    augment: ClassicAugConfig = ClassicAugConfig()
    positive_class: int = 1

    @classmethod
    def from_config(cls, cfg: UtilityConfig, num_classes: int, **overrides) -> Settings:
        """Settings from the run config's utility section (fields it lacks as overrides)."""
        base = {
            "steps": cfg.steps,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "val_every": cfg.val_every,
            "min_steps": cfg.min_steps,
            "foreground_fraction": cfg.foreground_fraction,
            "channels": tuple(cfg.channels),
            "augment": cfg.augment,
        }
        return cls(num_classes=num_classes, **{**base, **overrides})


@dataclass(frozen=True)
class Stage:
    name: str
    data: TrainingSet
    augment: bool
    steps: int
    lr: float


def parse_protocol(protocol: str) -> tuple[str, float | None, bool]:
    """``"real+synthetic:2+classic-aug"`` -> ``("real+synthetic", 2.0, True)``."""
    name = protocol.strip().lower()
    augment = name.endswith(AUG_SUFFIX)
    if augment:
        name = name[: -len(AUG_SUFFIX)]
    base, _, ratio_text = name.partition(":") if name.startswith(MIXED) else (name, "", "")
    if base not in BASES:
        valid = ", ".join(BASES)
        raise ValueError(f"unknown protocol {protocol!r}; bases: {valid} (+classic-aug)")
    if ratio_text.endswith(PER_CLASS):
        per_class_count(protocol)  # validates N
        return base, None, augment
    try:
        ratio = float(ratio_text) if ratio_text else None
    except ValueError:
        raise ValueError(
            f"bad synthetic amount in {protocol!r}: use {MIXED}:R (a ratio) or {MIXED}:N/class"
        ) from None
    if ratio is not None and ratio < 0:
        raise ValueError(f"negative synthetic ratio in {protocol!r}")
    return base, ratio, augment


def per_class_count(protocol: str) -> int | None:
    """``"real+synthetic:100/class+classic-aug"`` -> 100; None for other names."""
    name = protocol.strip().lower().removesuffix(AUG_SUFFIX)
    if not (name.startswith(MIXED + ":") and name.endswith(PER_CLASS)):
        return None
    text = name[len(MIXED) + 1 : -len(PER_CLASS)]
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{protocol!r}: N in {MIXED}:N/class must be a whole number >= 1")
    return int(text)


def draw_rows(n: int, pool: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices into ``pool`` rows: without replacement when ``n <= pool``.

    With too few rows every row is repeated ``n // pool`` times and the remaining
    ``n % pool`` are drawn without replacement, so copies differ by at most one. Draws are
    prefixes of one permutation: with the same generator state, a larger ``n`` contains the
    rows of a smaller one.
    """
    if n <= pool:
        return rng.permutation(pool)[:n]
    if pool == 0:
        raise ValueError(f"{n} synthetic rows requested from an empty pool")
    repeats, rest = divmod(n, pool)
    return np.concatenate([np.tile(np.arange(pool), repeats), rng.permutation(pool)[:rest]])


def sample_synthetic(
    real: TrainingSet,
    synthetic: TrainingSet,
    ratio: float | None,
    rng: np.random.Generator,
    per_class: int | None = None,
) -> TrainingSet:
    """``round(ratio * n)`` synthetic rows, or ``per_class`` rows of every class when given;
    drawn per class (as many classes as the real rows have) when both sets have image classes."""

    def wanted(n_real: int) -> int:
        return per_class if per_class is not None else round(ratio * n_real)

    if real.classes is None or synthetic.classes is None:
        return synthetic.take(draw_rows(wanted(len(real)), len(synthetic), rng))
    parts = []
    for c in np.unique(real.classes):
        pool = np.flatnonzero(synthetic.classes == c)
        n = wanted(int((real.classes == c).sum()))
        if n and not len(pool):
            raise ValueError(f"no synthetic rows of class {int(c)} to mix in")
        parts.append(pool[draw_rows(n, len(pool), rng)])
    return synthetic.take(np.concatenate(parts))


def build_training_set(
    protocol: str,
    real: TrainingSet,
    synthetic: TrainingSet | None,
    ratio: float | None = None,
    rng: np.random.Generator | int | None = None,
) -> tuple[TrainingSet, bool]:
    """The training rows of a one-stage protocol and whether to augment them.

    Args:
        ratio: synthetic rows per real row for ``real+synthetic`` when the name has no
            ``:R`` (a name's own ratio wins).
        rng: draws the synthetic rows (seed or generator; default seed 0).

    Raises:
        ValueError: unknown name, missing synthetic data or ratio, or the two-stage
            ``pretrain-synthetic+finetune-real`` (use :func:`run_protocol`).
    """
    base, named_ratio, augment = parse_protocol(protocol)
    if base == "real":
        return real, augment
    if base == PRETRAIN:
        raise ValueError(f"{PRETRAIN} has two stages; run it with run_protocol")
    if synthetic is None or len(synthetic) == 0:
        raise ValueError(f"protocol {protocol!r} needs synthetic data")
    synthetic = replace(synthetic, patient_ids=["synthetic"] * len(synthetic))
    if base == "synthetic-only":
        return synthetic, augment
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng or 0)
    count = per_class_count(protocol)
    ratio = named_ratio if named_ratio is not None else ratio
    if ratio is None and count is None:
        raise ValueError(f"protocol {protocol!r} needs a ratio (e.g. '{MIXED}:2')")
    return concat_sets(real, sample_synthetic(real, synthetic, ratio, rng, count)), augment


def plan_stages(
    protocol: str,
    real: TrainingSet,
    synthetic: TrainingSet | None,
    settings: Settings,
    rng: np.random.Generator,
) -> list[Stage]:
    """One stage per training run of ``protocol`` (two for pretrain + fine-tune)."""
    base, _, augment = parse_protocol(protocol)
    if base != PRETRAIN:
        data, augment = build_training_set(protocol, real, synthetic, None, rng)
        return [Stage("train", data, augment, settings.steps, settings.lr)]
    synth, _ = build_training_set("synthetic-only", real, synthetic, None, rng)
    lr = settings.finetune_lr or settings.lr
    return [
        Stage("pretrain", synth, augment, settings.pretrain_steps or settings.steps, settings.lr),
        Stage("finetune", real, augment, settings.steps, lr),
    ]


def _as_items(data: TrainingSet | list[Item]) -> list[Item]:
    return items_from_set(data) if isinstance(data, TrainingSet) else list(data)


def _as_set(data: TrainingSet | list[Item]) -> TrainingSet:
    return data if isinstance(data, TrainingSet) else set_from_items(data)


def _train(task: Task, stage: Stage, val, settings: Settings, seed: int, device, model, quiet):
    """Train (or continue training ``model``) for one stage."""
    if task == "segmentation":
        return train_segmenter(
            stage.data,
            _as_items(val),
            replace(settings, steps=stage.steps, lr=stage.lr),
            settings.num_classes,
            seed,
            device,
            desc=f"u-net {stage.name}",
            quiet=quiet,
            patience=settings.patience,
            min_steps=settings.min_steps,
            augment="classic" if stage.augment else "none",
            model=model,
        )
    return train_classifier(
        stage.data,
        _as_set(val),
        stage.steps,
        settings.batch_size,
        stage.lr,
        settings.val_every,
        settings.patience,
        seed,
        device,
        name=settings.classifier,
        num_classes=settings.num_classes,
        augment=stage.augment,
        augment_options=settings.augment,
        model=model,
        model_kwargs=settings.classifier_kwargs,
        quiet=quiet,
        min_steps=settings.min_steps,
    )


def _score(task: Task, model, test, settings: Settings, roi: tuple[int, ...], device) -> dict:
    if task == "segmentation":
        return score_items(model, _as_items(test), settings.num_classes, roi, device)
    return score_classifier(model, _as_set(test), settings.positive_class, device)


def run_protocol(
    task: Task,
    protocol: str,
    real_train: TrainingSet,
    synthetic: TrainingSet | None,
    val: TrainingSet | list[Item],
    test: TrainingSet | list[Item],
    settings: Settings,
    seed: int = 0,
    device: str | torch.device = "cpu",
    quiet: bool = True,
    keep_model: bool = False,
) -> dict[str, object]:
    """Train one model under ``protocol`` and score it once on the real ``test`` split.

    Args:
        task: ``segmentation`` (U-Net; val/test may be whole images as items) or
            ``classification`` (``settings.classifier``; val/test need classes).
        seed: model initialisation, batches, augmentation and the synthetic draw.

    Returns:
        ``task``, ``protocol``, ``seed``, ``n_real_rows``, ``n_synthetic_rows``,
        ``scores`` (score_items / score_classifier output) and ``history`` (one per stage);
        with ``keep_model`` also ``model`` (the trained network, e.g. for label agreement).
    """
    if task not in ("segmentation", "classification"):
        raise ValueError(f"unknown task {task!r}; valid: segmentation, classification")
    stages = plan_stages(protocol, real_train, synthetic, settings, np.random.default_rng(seed))
    model, history = None, []
    for stage in stages:
        model, hist = _train(task, stage, val, settings, seed, device, model, quiet)
        history.append({"stage": stage.name, "n_rows": len(stage.data), **hist})
    roi = tuple(stages[-1].data.images.shape[2:])
    result = {
        "task": task,
        "protocol": protocol,
        "seed": seed,
        "n_real_rows": sum(s.data.n_real for s in stages),
        "n_synthetic_rows": sum(s.data.n_synthetic for s in stages),
        "scores": _score(task, model, test, settings, roi, device),
        "history": history,
    }
    if keep_model:
        result["model"] = model
    return result
