"""Model packages: pickle-free, checksummed, same images as the run, tampering refused."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import synthmed
from synthmed.data.synthetic import read_synthetic_arrays
from synthmed.errors import InputError
from synthmed.hub import generate_dataset
from synthmed.packaging import (
    build_package,
    default_registry,
    install_package,
    list_models,
    load_package,
    package_digest,
    read_card,
    registry_dir,
)
from synthmed.sampling.export import generate_pairs, load_generator
from tests.export.helpers import tiny_run

METRICS = {
    "synthetic_dir": "/secret/location/synthetic",
    "utility": {"segmentation": {"arms": {"synthetic": {"dice_mean": 0.61, "per_seed": [1]}}}},
    "privacy": {"per_patient": {"p-007": 0.2}, "nn_ratio": 1.3},
    "provenance": {"checkpoint_sha256": "0" * 64},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = tiny_run(tmp_path_factory.mktemp("pkg"))
    (run / "metrics.json").write_text(json.dumps(METRICS))
    return run


@pytest.fixture(scope="module")
def package(run: Path) -> Path:
    return build_package(run, run.parent / "tiny.synthmed", name="tiny")


@pytest.fixture
def registry(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("SYNTHMED_MODELS", str(tmp_path / "registry"))
    return tmp_path / "registry"


def test_package_is_pickle_free_and_checksummed(package: Path, run: Path):
    names = sorted(p.name for p in package.iterdir())
    assert names == [
        "card.json", "card.md", "checksums.sha256", "config.yaml", "package.json",
        "weights.safetensors",
    ]  # fmt: skip
    for line in (package / "checksums.sha256").read_text().splitlines():  # sha256sum -c format
        digest, name = line.split("  ")
        assert hashlib.sha256((package / name).read_bytes()).hexdigest() == digest
    meta = json.loads((package / "package.json").read_text())
    assert meta["model_name"] == "wgan_gp_sn" and meta["label_names"] == ["background", "vessel"]
    assert meta["preprocessing"]["channels"] == "green"
    assert meta["sample_defaults"]["batch_size"] == 2
    assert set(meta["files"]) == set(names) - {"package.json", "checksums.sha256"}
    config_text = (package / "config.yaml").read_text()
    assert "phantom" in config_text and str(run.parent) not in config_text


def test_card_describes_without_patient_data(package: Path, run: Path):
    card = json.loads((package / "card.json").read_text())
    text = (package / "card.md").read_text() + json.dumps(card)
    for section in ("## Intended use", "## Training data", "## Evaluation", "## Limitations"):
        assert section in text
    assert "## Export gate" in text and "Decision: passed." in text  # the run's sampled set
    assert card["export_gate"]["near_copies"]["n"] == 3
    assert card["evaluation"]["utility.segmentation.arms.synthetic.dice_mean"] == 0.61
    assert card["evaluated_checkpoint_matches"] is False  # metrics.json names another checkpoint
    assert card["training_data"]["splits"]["train"]["n_patients"] > 0
    patients = [p for ids in json.loads((run / "split.json").read_text()).values() for p in ids]
    for secret in [*patients, "p-007", "/secret/location", str(run)]:
        assert secret not in text


def test_package_gives_the_runs_images_bit_identically(package: Path, run: Path):
    pkg = load_package(package)
    reference = load_generator(run / "checkpoints" / "last.pt", device="cpu")
    seeds = [3, 4, 5, 6, 7]
    ref_images, ref_labels = generate_pairs(reference, seeds, batch_size=2)
    images, labels = generate_pairs(pkg.generator, seeds, batch_size=2)
    np.testing.assert_array_equal(images, ref_images)
    np.testing.assert_array_equal(labels, ref_labels)
    one_call = synthmed.generate(package, n=5, seed=3)
    np.testing.assert_array_equal(one_call[0], ref_images)


def test_install_list_generate_round_trip(package: Path, run: Path, registry: Path, tmp_path):
    installed = install_package(package)
    assert installed == registry / "tiny.synthmed"
    [row] = list_models()
    assert row["name"] == "tiny" and row["model"] == "wgan_gp_sn"
    assert row["digest"] == package_digest(package)
    assert read_card("tiny").startswith("# Model card: tiny")
    out = generate_dataset("tiny", tmp_path / "gen", n=3, seed=0)
    np.testing.assert_array_equal(
        read_synthetic_arrays(out)[0], read_synthetic_arrays(run / "synthetic")[0]
    )
    nnunet = generate_dataset("tiny", tmp_path / "nn", n=2, fmt="nnunet")
    labels = json.loads((nnunet / "dataset.json").read_text())["labels"]
    assert labels == {"background": 0, "vessel": 1}


def tamper(package: Path, tmp_path: Path, how: str) -> Path:
    copy = tmp_path / "tampered.synthmed"
    shutil.copytree(package, copy)
    if how == "weights":
        data = bytearray((copy / "weights.safetensors").read_bytes())
        data[-1] ^= 1
        (copy / "weights.safetensors").write_bytes(bytes(data))
    elif how == "package.json":
        meta = json.loads((copy / "package.json").read_text())
        meta["model_kwargs"]["latent_dim"] = 9
        (copy / "package.json").write_text(json.dumps(meta))
    elif how == "extra":
        (copy / "payload.pt").write_bytes(b"not listed")
    elif how == "missing":
        (copy / "card.md").unlink()
    return copy


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("weights", "weights.safetensors: checksum mismatch"),
        ("package.json", "package.json: checksum mismatch"),
        ("extra", "payload.pt: unexpected file"),
        ("missing", "card.md: file listed in the package checksums is missing"),
    ],
)
def test_tampered_package_is_refused(package: Path, tmp_path: Path, how: str, message: str):
    copy = tamper(package, tmp_path, how)
    with pytest.raises(InputError, match=message):
        load_package(copy)
    with pytest.raises(InputError, match=message):
        install_package(copy, tmp_path / "registry")


def test_pinned_digest_and_unknown_names(package: Path, registry: Path):
    load_package(package, expected_digest=package_digest(package))
    with pytest.raises(InputError, match="digest differs"):
        load_package(package, expected_digest="0" * 64)
    with pytest.raises(InputError, match="installed: none"):
        synthmed.generate("nope", n=1)
    with pytest.raises(InputError, match="not a synthmed model package"):
        load_package(registry.parent)


def test_card_without_metrics_says_not_evaluated(run: Path, tmp_path: Path):
    plain = tmp_path / "run"
    shutil.copytree(run, plain, ignore=shutil.ignore_patterns("metrics.json", "*.synthmed"))
    card = json.loads((build_package(plain) / "card.json").read_text())
    assert card["evaluation"] == "not evaluated"
    assert any("No evaluation" in item for item in card["limitations"])


def test_registry_location(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("SYNTHMED_MODELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert registry_dir() == default_registry() == tmp_path / "synthmed" / "models"
    assert registry_dir(tmp_path / "mine") == tmp_path / "mine"
    assert list_models() == []
