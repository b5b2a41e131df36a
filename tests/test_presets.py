"""Every preset: quick scale resolves, and 2 training steps + 4 samples work on phantoms."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from synthmed import api
from synthmed.config import list_presets, resolve_config
from synthmed.data.synthetic import read_synthetic_arrays

PAPER_PRESETS = [
    "kossen2021-dcgan",
    "kossen2021-wgan-gp",
    "kossen2021-wgan-gp-sn",
    "fridadar2018-dcgan-per-class",
    "fridadar2018-acgan",
    "shin2018-pix2pix",
    "platscher2021-pix2pix",
    "platscher2021-spade",
    "platscher2021-mask-gan",
    "guibas2017-dual-gan",
]
DIFFUSION_PRESETS = [
    "diffusion-pairs",
    "diffusion-class",
    "diffusion-mask-to-image",
    "diffusion-dual",
]


def smoke_overrides(preset: str) -> list[str]:
    """Shrink a preset to seconds: tiny phantoms, 2 steps, width 4."""
    cfg = resolve_config(preset=preset, quick=True)
    out = [
        "data.train.phantom.n_patients=6",
        "model.base_channels=4",
        "train.steps=2",
        "train.batch_size=2",
        "train.checkpoint_every=1",
        "train.sample_every=2",
        "train.device=cpu",
        "sample.n=4",
    ]
    if cfg.data.preprocess.lesion_roi:
        out += [
            "data.train.phantom.size=32",
            "data.train.phantom.images_per_patient=1",
            "data.preprocess.lesion_roi=16",
        ]
    else:
        out += ["data.train.phantom.size=32"]
    if cfg.data.patches is not None:
        out += ["data.patches.size=16", "data.patches.per_image=2"]
    if cfg.mask_stage is not None:
        out += [
            "mask_stage.model.base_channels=4",
            "mask_stage.train.steps=2",
            "mask_stage.train.batch_size=2",
            "mask_stage.train.device=cpu",
        ]
    tiny_unet = ["options.channels=[4,8,8]", "options.sample_steps=2"]
    if cfg.model.name.startswith("diffusion"):
        out += [f"model.{o}" for o in tiny_unet]
    if cfg.mask_stage is not None and cfg.mask_stage.model.name.startswith("diffusion"):
        out += [f"mask_stage.model.{o}" for o in tiny_unet]
    return out


def test_every_paper_has_a_preset():
    assert set(PAPER_PRESETS) <= set(list_presets())


@pytest.mark.parametrize("preset", PAPER_PRESETS + DIFFUSION_PRESETS)
def test_preset_trains_and_samples(preset: str, tmp_path: Path):
    cfg = resolve_config(
        {"name": preset}, preset=preset, quick=True, overrides=smoke_overrides(preset)
    )
    run = tmp_path / "run"
    api.train(cfg, run, quiet=True)
    out = api.sample(run, n=4, out=tmp_path / "syn", device="cpu", quiet=True)
    images, labels = read_synthetic_arrays(out)
    assert len(images) == 4 and np.isfinite(images).all()
    assert images.min() >= 0 and images.max() <= 1
    with (out / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    if cfg.train.per_class or cfg.model.name in ("acgan", "diffusion_class"):
        assert {r["class"] for r in rows} == {"0", "1", "2"} or len({r["class"] for r in rows}) > 1
    if cfg.mask_stage is not None:
        assert all(r["label_source"] == "mask_gan" for r in rows)
    if cfg.sample.edit_lesions:
        assert all(r["edits"] for r in rows)


def test_image_only_per_class_on_medmnist_npz(tmp_path: Path):
    """Frid-Adar on classification data without masks (BreastMNIST layout): image-only
    generators per class, class-balanced export with the class in the manifest."""
    from synthmed.data.writers import write_npz_medmnist

    rng = np.random.default_rng(0)
    labels = np.arange(24) % 2
    images = (rng.random((24, 16, 16)) * 100 + labels[:, None, None] * 120).astype(np.uint8)
    npz = tmp_path / "tiny.npz"
    write_npz_medmnist(
        npz, {"train": (images[:16], labels[:16]), "test": (images[16:], labels[16:])}
    )
    user = {
        "name": "npz",
        "data": {
            "train": {"kind": "npz", "npz": str(npz), "npz_splits": ["train"]},
            "test": {"kind": "npz", "npz": str(npz), "npz_splits": ["test"]},
            "preprocess": {"normalize": "minmax", "label_mode": "binary", "lesion_roi": None},
            "split": {"val_fraction": 0.25, "test_fraction": 0.0},
        },
    }
    overrides = [
        "model.base_channels=4",
        "train.steps=2",
        "train.batch_size=2",
        "train.device=cpu",
        "train.checkpoint_every=1",
    ]
    cfg = resolve_config(user, preset="fridadar2018-dcgan-per-class", overrides=overrides)
    run = tmp_path / "run"
    api.train(cfg, run, quiet=True)
    assert (run / "classes" / "class_0" / "checkpoints" / "last.pt").is_file()
    assert (run / "classes" / "class_1" / "checkpoints" / "last.pt").is_file()
    out = api.sample(run, n=6, out=tmp_path / "syn", device="cpu", quiet=True)
    images_syn, labels_syn = read_synthetic_arrays(out)
    assert images_syn.shape == (6, 1, 16, 16) and labels_syn is None
    with (out / "manifest.csv").open() as fh:
        assert [r["class"] for r in csv.DictReader(fh)] == ["0", "1", "0", "1", "0", "1"]


def test_shin_new_tumour_cases_at_chosen_size_and_centre(tmp_path: Path, monkeypatch, capsys):
    """Shin 2018: N new cases with chosen lesion sizes/centres via the CLI; edits recorded."""
    import json
    import sys

    from synthmed.cli import main

    cfg = resolve_config(
        {"name": "shin"},
        preset="shin2018-pix2pix",
        quick=True,
        overrides=smoke_overrides("shin2018-pix2pix"),
    )
    run = tmp_path / "run"
    api.train(cfg, run, quiet=True)
    argv = [
        "synthmed",
        "sample",
        str(run),
        "--n",
        "4",
        "--label-source",
        "cases",
        "--lesion-size",
        "20",
        "--lesion-size",
        "40",
        "--lesion-centre",
        "16,14",
        "--out",
        str(tmp_path / "cases"),
        "--device",
        "cpu",
        "--quiet",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    _, labels = read_synthetic_arrays(tmp_path / "cases")
    with (tmp_path / "cases" / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for label, row, target in zip(labels, rows, [20, 40, 20, 40], strict=True):
        record = json.loads(row["edits"])
        assert row["label_source"] == "cases" and record["kind"] == "insert"
        area = int((label == 4).sum())
        assert area == record["area_after"] and abs(area - target) <= 0.5 * target
        ys, xs = np.nonzero(label == 4)
        assert abs(ys.mean() - 16) <= 4 and abs(xs.mean() - 14) <= 4


def test_edit_lesions_on_lesion_only_maps_with_empty_slices(tmp_path: Path):
    """Real tumour-mask data (LGG-like): binary maps, some without tumour. Maps without a
    lesion stay unedited (empty `edits`), the others get one recorded edit."""
    from synthmed.data.writers import write_label_png, write_png

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(8):
        label = np.zeros((32, 32), np.uint8)
        if i % 2 == 0:
            label[10:16, 12:18] = 255
        write_png(root / "images" / f"case{i:02d}.png", rng.random((32, 32)).astype(np.float32))
        write_label_png(root / "labels" / f"case{i:02d}.png", label)
    user = {
        "data": {
            "train": {
                "kind": "folders",
                "root": str(root),
                "image_glob": "images/*.png",
                "label_glob": "labels/*.png",
                "id_regex": r"case(\d+)",
                "label_values": [0, 255],
            },
            "preprocess": {"label_mode": "binary"},
        }
    }
    overrides = [
        "model.base_channels=4",
        "train.steps=1",
        "train.batch_size=2",
        "train.device=cpu",
        "train.checkpoint_every=1",
    ]
    cfg = resolve_config(user, preset="shin2018-pix2pix", overrides=overrides)
    api.train(cfg, tmp_path / "run", quiet=True)
    out = api.sample(tmp_path / "run", n=6, out=tmp_path / "syn", device="cpu", quiet=True)
    with (out / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    _, labels = read_synthetic_arrays(out)
    for row, label in zip(rows, labels, strict=True):
        assert bool(row["edits"]) == bool(label.any())
