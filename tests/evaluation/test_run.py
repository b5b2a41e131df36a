"""synthmed evaluate on a tiny phantom run: every section, finite numbers, valid JSON."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synthmed import api
from synthmed.data.types import Item
from synthmed.errors import InputError
from synthmed.evaluation.filtering import filter_near_copies
from synthmed.evaluation.inputs import EvalInputs, detect_task, load_inputs
from synthmed.evaluation.run import with_evaluate_overrides
from synthmed.evaluation.utility import Settings, TrainingSet, run_protocol
from synthmed.evaluation.utility_eval import (
    ALL_PROTOCOLS,
    expand_protocols,
    reference_protocol,
    resolve_sizes,
    run_utility,
)
from tests.training.test_training import tiny_config

TINY_EVAL = {
    "sample.n": "24",
    "evaluate.utility.steps": "4",
    "evaluate.utility.val_every": "2",
    "evaluate.utility.channels": "[4,8]",
    "evaluate.utility.batch_size": "4",
    "evaluate.encoder_steps": "10",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A 2-step phantom run with 24 exported samples (single-threaded: tiny tensors)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("eval") / "run"
    api.train(tiny_config(2, **TINY_EVAL), run, quiet=True)
    api.sample(run, quiet=True, device="cpu")
    yield run
    torch.set_num_threads(threads)


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def test_evaluate_all_protocols_two_sizes_two_seeds(tiny_run):
    metrics = api.evaluate(
        tiny_run, device="cpu", quiet=True, protocols=["all"], sizes=[1, "all"], seeds=2
    )
    text = json.dumps(metrics, allow_nan=False)  # NaN/inf were turned into null
    assert json.loads((tiny_run / "metrics.json").read_text()) == json.loads(text)
    assert all(math.isfinite(v) for v in _numbers(metrics))
    seg = metrics["utility"]["segmentation"]
    assert seg["protocols"] == list(ALL_PROTOCOLS) and seg["sizes"] == [1, "all"]
    assert len(seg["rows"]) == len(ALL_PROTOCOLS) * 2 * 2
    assert {(e["protocol"], e["size"]) for e in seg["summary"]["dice_mean"]} == {
        (p, s) for p in ALL_PROTOCOLS for s in (1, "all")
    }
    assert all(e["n"] == 2 for e in seg["summary"]["dice_mean"])
    assert len(seg["wilcoxon"]["comparisons"]) == (len(ALL_PROTOCOLS) - 1) * 2
    assert {"real", "synthetic", "real+classic-aug"} <= set(seg["arms"])
    assert 0.0 <= seg["arms"]["synthetic"]["dice_mean"] <= 1.0  # the demo prints this key
    assert all(0.0 <= r["dice_mean"] <= 1.0 for r in seg["rows"])
    fid, priv = metrics["fidelity"], metrics["privacy"]
    assert fid["feature_space"]["holdout_vs_train"]["fd"] is not None
    assert fid["image_label_agreement"]["synthetic"]["n_images"] == 24
    assert fid["label_statistics"]["n_synthetic"] == 24
    assert priv["n"]["synthetic"] == 24 and len(priv["pixel"]["closest_pairs"]) == 16
    assert priv["membership_logan"] is not None  # critic scores from the checkpoint
    assert (tiny_run / priv["closest_pairs_png"]).is_file()
    assert list((tiny_run / "evaluation").glob("fidelity_encoder.*"))


def test_reference_model_is_the_real_protocols_model(tiny_run):
    """The agreement U-Net comes from reference_protocol: it must score like run_protocol."""
    config = with_evaluate_overrides(api.load_run_config(tiny_run))
    inputs = load_inputs(config, tiny_run, tiny_run / "synthetic")
    settings = Settings.from_config(config.evaluate.utility, inputs.num_classes, patience=5)
    val, test = inputs.splits["val"], inputs.splits["test"]
    ours, model = reference_protocol(inputs.real, val, test, settings, 0, "cpu")
    theirs = run_protocol("segmentation", "real", inputs.real, None, val, test, settings, 0)
    assert ours["scores"] == theirs["scores"]
    assert isinstance(model, torch.nn.Module)


def test_sizes_protocols_and_overrides_are_checked(tiny_run):
    assert resolve_sizes([1, 99, "all", "1"], 3) == ([1, "all"], [99])
    assert expand_protocols(["real", "all"]) == list(ALL_PROTOCOLS)
    with pytest.raises(InputError, match="unknown protocol"):
        expand_protocols(["real+gan"])
    config = api.load_run_config(tiny_run)
    assert with_evaluate_overrides(config, seeds=3).evaluate.utility.seeds == [0, 1, 2]
    with pytest.raises(InputError, match="evaluate"):
        with_evaluate_overrides(config, overrides=["train.steps=3"])
    with pytest.raises(InputError, match="--sizes"):
        with_evaluate_overrides(config, sizes=["two"])


def test_classification_task_when_items_have_classes_only(rng):
    items = [Item(image=rng.random((1, 8, 8), dtype=np.float32), class_id=i % 2) for i in range(4)]
    assert detect_task(items) == "classification"
    with pytest.raises(InputError, match="label map"):
        detect_task([Item(image=np.zeros((1, 8, 8), np.float32))])
    squares = rng.uniform(0, 1, (12, 1, 16, 16)).astype(np.float32)
    data = TrainingSet(squares, None, np.arange(12) % 2, [f"p{i // 2}" for i in range(12)])
    held = [Item(image=squares[i], class_id=int(i % 2), patient_id=f"h{i}") for i in range(4)]
    inputs = EvalInputs(
        "classification",
        2,
        {"train": [], "val": held[:2], "test": held[2:]},
        data,
        data,
        data.take(range(6)),
        {},
        Path("x"),
        [],
    )
    cfg = tiny_config(
        2,
        **{
            "evaluate.utility.steps": "2",
            "evaluate.utility.val_every": "1",
            "evaluate.utility.batch_size": "4",
        },
    ).evaluate.utility
    section, reference = run_utility(inputs, cfg, "cpu", quiet=True)
    cls = section["classification"]
    assert cls["metric"] == "balanced_accuracy" and reference is None
    assert set(cls["arms"]) == {"real", "synthetic"} and len(cls["rows"]) == 2


def test_exclude_near_copies_drops_planted_copies(tiny_run, tmp_path):
    """Samples replaced by training patches are near-copies: they must leave the dataset."""
    folder = tmp_path / "synthetic"
    shutil.copytree(tiny_run / "synthetic", folder)
    config = api.load_run_config(tiny_run)
    real = load_inputs(config, tiny_run, folder).real
    rows = (folder / "manifest.csv").read_text().splitlines()[1:]
    planted = [0, 5]
    for k, i in enumerate(planted):
        path = folder / rows[i].split(",")[2]
        Image.fromarray((real.images[k, 0] * 255).round().astype(np.uint8)).save(path)
    summary = filter_near_copies(tiny_run, folder, quantile=0.01)
    assert summary["n_dropped"] >= len(planted)
    dropped = {int(d["index"]) for d in summary["dropped"]}
    assert set(planted) <= dropped
    text = (folder / "manifest.csv").read_text().splitlines()
    assert "near_copy_filtering" in text[0].split(",") and len(text) == 1 + summary["n_after"]
    assert all("applied: threshold=" in line for line in text[1:])
    assert len(list((folder / "images").iterdir())) == summary["n_after"]
    assert json.loads((folder / "filtering.json").read_text())["n_before"] == 24
    assert (folder / "dataset.json").is_file(), "filtering keeps the folder description"
    assert (folder / "gate.json").is_file(), "and the export gate's record"


def test_cli_evaluate_options(tiny_run, monkeypatch, capsys):
    """--sizes without 'all': the agreement U-Net is trained on its own; privacy off via --set."""
    from tests.test_cli import run_cli

    args = ["evaluate", str(tiny_run), "--protocols", "real", "--sizes", "1,99", "--seeds", "1"]
    args += ["--set", "evaluate.privacy=false", "--device", "cpu", "--quiet"]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "segmentation real" in out and "n=1" in out
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["privacy"] is None and metrics["utility"]["segmentation"]["dropped_sizes"] == [
        99
    ]
    assert metrics["fidelity"]["image_label_agreement"]["synthetic"]["n_images"] == 24
