"""Protocol names, row counts per ratio, and one-model-one-test-score runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthmed.config.schema import UtilityConfig
from synthmed.evaluation.utility import protocols
from synthmed.evaluation.utility.protocols import (
    Settings,
    build_training_set,
    parse_protocol,
    per_class_count,
    run_protocol,
)
from synthmed.evaluation.utility.sets import TrainingSet


def _sets(n_real: int = 6, n_synth: int = 20) -> tuple[TrainingSet, TrainingSet]:
    """Rows carry their own index as intensity so drawn rows can be identified."""
    real = TrainingSet(
        images=np.arange(n_real, dtype=np.float32).reshape(-1, 1, 1, 1) * np.ones((1, 1, 4, 4)),
        classes=np.array([0, 0, 0, 0, 1, 1][:n_real]),
        patient_ids=[f"p{i // 2}" for i in range(n_real)],
    )
    synth = TrainingSet(
        images=100
        + np.arange(n_synth, dtype=np.float32).reshape(-1, 1, 1, 1) * np.ones((1, 1, 4, 4)),
        classes=np.arange(n_synth) % 2,
    )
    return real, synth


def test_parse_protocol() -> None:
    assert parse_protocol("real+classic-aug") == ("real", None, True)
    assert parse_protocol("real+synthetic:2") == ("real+synthetic", 2.0, False)
    assert parse_protocol("Real+Synthetic:0.5+classic-aug") == ("real+synthetic", 0.5, True)
    assert (
        parse_protocol("pretrain-synthetic+finetune-real")[0] == "pretrain-synthetic+finetune-real"
    )
    with pytest.raises(ValueError, match="synthetic-only"):
        parse_protocol("gan-only")


@pytest.mark.parametrize("ratio,n_synth", [(1, 6), (2, 12), (5, 30)])
def test_mixing_ratios_give_the_right_rows(ratio: int, n_synth: int) -> None:
    real, synth = _sets()
    data, augment = build_training_set(f"real+synthetic:{ratio}", real, synth, rng=0)
    assert not augment and len(data) == 6 + n_synth
    assert data.n_real == 6 and data.n_synthetic == n_synth
    drawn = data.images[6:, 0, 0, 0].astype(int) - 100
    # per class: 4 real of class 0 and 2 of class 1 -> twice as many synthetic of class 0
    assert np.bincount(drawn % 2).tolist() == [4 * ratio, 2 * ratio]
    counts = np.bincount(drawn, minlength=20)
    assert counts.max() - counts[counts > 0].min() <= 1  # replacement only when needed, evenly
    if ratio <= 2:
        assert len(set(drawn)) == n_synth  # enough rows per class: no repeats


def test_real_synthetic_only_and_two_stage_protocols() -> None:
    real, synth = _sets()
    same, augment = build_training_set("real+classic-aug", real, synth)
    assert same is real and augment
    only, _ = build_training_set("synthetic-only", real, synth)
    assert len(only) == 20 and only.n_real == 0 and only.images.min() >= 100
    mixed, _ = build_training_set("real+synthetic", real, synth, ratio=0.5)
    assert mixed.n_synthetic == 3
    with pytest.raises(ValueError, match="run_protocol"):
        build_training_set("pretrain-synthetic+finetune-real", real, synth)
    with pytest.raises(ValueError, match="needs synthetic"):
        build_training_set("synthetic-only", real, None)


def test_pretrain_finetune_scores_the_test_set_once(squares, monkeypatch) -> None:
    calls = []
    real_score = protocols.score_classifier
    monkeypatch.setattr(
        protocols, "score_classifier", lambda *a, **k: calls.append(1) or real_score(*a, **k)
    )
    settings = Settings(num_classes=2, steps=4, batch_size=4, val_every=2,
                        classifier_kwargs={"widths": (4, 4, 4), "dense": 8}, pretrain_steps=3)  # fmt: skip
    synth = squares(8, 5)
    out = run_protocol("classification", "pretrain-synthetic+finetune-real", squares(6, 0),
                       synth, squares(4, 1), squares(4, 2), settings, seed=0)  # fmt: skip
    assert len(calls) == 1
    assert [h["stage"] for h in out["history"]] == ["pretrain", "finetune"]
    assert [h["steps_run"] for h in out["history"]] == [3, 4]
    assert out["n_real_rows"] == 6 and out["n_synthetic_rows"] == 8
    assert 0.0 <= out["scores"]["balanced_accuracy"] <= 1.0
    again = run_protocol("classification", "pretrain-synthetic+finetune-real", squares(6, 0),
                         synth, squares(4, 1), squares(4, 2), settings, seed=0)  # fmt: skip
    assert again["scores"] == out["scores"]  # seeded end to end


def test_segmentation_protocol_with_classic_augmentation(discs) -> None:
    settings = Settings(num_classes=2, steps=3, batch_size=2, val_every=2, channels=(4, 8))
    out = run_protocol("segmentation", "real+synthetic:1+classic-aug", discs(3, 0), discs(4, 9),
                       discs(2, 1), discs(2, 2), settings, seed=1)  # fmt: skip
    assert out["n_real_rows"] == 3 and out["n_synthetic_rows"] == 3
    assert out["scores"]["n_images"] == 2 and set(out["scores"]["dice_per_class"]) == {1}
    assert math.isfinite(out["scores"]["dice_mean"])
    assert out["history"][0]["val_curve"][-1][0] == 3


def test_settings_from_the_run_config() -> None:
    s = Settings.from_config(UtilityConfig(steps=7, channels=[4, 8]), 3, patience=None)
    assert (s.steps, s.channels, s.num_classes, s.patience) == (7, (4, 8), 3, None)
    assert s.lr == UtilityConfig().lr and s.val_every == UtilityConfig().val_every


def test_per_class_count_protocol_draws_n_of_every_class_nested() -> None:
    """Frid-Adar's sweep: N synthetic images per class, whatever the real class sizes."""
    real, synth = _sets()
    assert per_class_count("real+synthetic:3/class+classic-aug") == 3
    assert per_class_count("real+synthetic:2") is None
    assert parse_protocol("real+synthetic:3/class+classic-aug") == ("real+synthetic", None, True)
    drawn = {}
    for n in (2, 5):
        data, augment = build_training_set(
            f"real+synthetic:{n}/class+classic-aug", real, synth, rng=4
        )
        assert augment and data.n_real == 6 and data.n_synthetic == 2 * n
        rows = data.images[6:, 0, 0, 0].astype(int) - 100
        assert np.bincount(rows % 2).tolist() == [n, n]  # 4 real of class 0, 2 of class 1
        drawn[n] = set(rows.tolist())
    assert drawn[2] <= drawn[5]
    for bad in ("real+synthetic:0/class", "real+synthetic:x/class", "real+synthetic:1.5/class"):
        with pytest.raises(ValueError, match="whole number"):
            parse_protocol(bad)
    with pytest.raises(ValueError, match="bad synthetic amount"):
        parse_protocol("real+synthetic:lots")


def test_classic_aug_options_reach_the_training_loop(squares) -> None:
    """Strength 0 with no flips or turns is no augmentation at all: the same run as ``real``;
    the default transforms change what the network sees (another final training loss)."""
    from synthmed.config.schema import ClassicAugConfig

    def run(protocol: str, augment: ClassicAugConfig) -> dict:
        settings = Settings(num_classes=2, steps=4, batch_size=4, val_every=2,
                            classifier_kwargs={"widths": (4, 4, 4), "dense": 8}, augment=augment)  # fmt: skip
        return run_protocol("classification", protocol, squares(6, 0), None, squares(4, 1),
                            squares(4, 2), settings, seed=0)  # fmt: skip

    plain = run("real", ClassicAugConfig())
    off = run("real+classic-aug", ClassicAugConfig(strength=0.0, flip="none", rot90=False))
    on = run("real+classic-aug", ClassicAugConfig())
    assert off["history"] == plain["history"] and off["scores"] == plain["scores"]
    loss = plain["history"][0]["final_train_loss"]
    assert on["history"][0]["final_train_loss"] != pytest.approx(loss, rel=1e-6)
    settings = Settings.from_config(UtilityConfig(augment={"flip": "left-right"}), 2)
    assert settings.augment == ClassicAugConfig(flip="left-right")


@pytest.mark.parametrize("task", ["segmentation", "classification"])
def test_min_steps_from_the_config_reaches_both_trainers(task, discs, squares) -> None:
    """evaluate.utility.min_steps holds off early stopping in the U-Net and the classifier:
    with lr 1e-9 the validation score never moves, so patience 1 alone stops at step 2."""
    cfg = UtilityConfig(steps=9, batch_size=2, lr=1e-9, val_every=1, channels=[4, 8])
    real = discs(4, 0) if task == "segmentation" else squares(4, 0)
    held = (discs(2, 1), discs(2, 2)) if task == "segmentation" else (squares(4, 1), squares(4, 2))
    runs = {}
    for floor in (None, 6):
        config = cfg.model_copy(update={"min_steps": floor})
        settings = Settings.from_config(config, 2, patience=1)
        out = run_protocol(task, "real", real, None, *held, settings, seed=0)
        runs[floor] = out["history"][0]["steps_run"]
    assert runs == {None: 2, 6: 6}
