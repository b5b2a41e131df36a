"""Sampling: one seed -> one image, whatever n or batch; manifest with provenance."""

import csv
from pathlib import Path

import numpy as np
import pytest

from synthmed import __version__, api
from synthmed.checkpoints import file_sha256
from synthmed.data.synthetic import read_synthetic_arrays
from synthmed.errors import InputError
from synthmed.sampling.export import generate_pairs, load_generator
from tests.training.test_training import tiny_config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("sampling") / "run"
    api.train(tiny_config(2), run, quiet=True)
    return run


def test_same_seed_same_image_independent_of_batch(trained_run: Path):
    gen = load_generator(trained_run / "checkpoints" / "last.pt", device="cpu")
    img_a, lab_a = generate_pairs(gen, [5, 6, 7], batch_size=3)
    again, _ = generate_pairs(gen, [5, 6, 7], batch_size=3)
    np.testing.assert_array_equal(img_a, again)  # same request: bit-identical
    img_b, lab_b = generate_pairs(gen, [7], batch_size=1)
    # another batching may pick another conv kernel: equal up to float rounding
    np.testing.assert_allclose(img_a[2], img_b[0], atol=1e-5)
    assert not np.array_equal(img_a[0], img_a[1])


def test_export_png_and_nifti_with_manifest(trained_run: Path, tmp_path: Path):
    out = api.sample(
        trained_run,
        n=5,
        seed=10,
        formats=["png", "nifti"],
        out=tmp_path / "syn",
        device="cpu",
        quiet=True,
    )
    with (out / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["seed"]) for r in rows] == [10, 11, 12, 13, 14]
    sha = file_sha256(trained_run / "checkpoints" / "last.pt")
    for row in rows:
        assert row["checkpoint_sha256"] == sha and row["synthmed_version"] == __version__
        assert row["model"] == "wgan_gp_sn" and len(row["config_hash"]) == 64
        for key in ("image_png", "label_png", "image_nifti", "label_nifti"):
            assert (out / row[key]).is_file()
        assert f"seed{int(row['seed']):08d}" in row["image_png"]
    png_images, png_labels = read_synthetic_arrays(out)
    assert png_images.shape == (5, 1, 16, 16) and png_labels.shape == (5, 16, 16)
    again = api.sample(
        trained_run, n=5, seed=10, formats=["png"], out=tmp_path / "again", device="cpu", quiet=True
    )
    np.testing.assert_array_equal(read_synthetic_arrays(again)[0], png_images)


def test_nifti_only_round_trip(trained_run: Path, tmp_path: Path):
    out = api.sample(
        trained_run, n=2, formats=["nifti"], out=tmp_path / "nii", device="cpu", quiet=True
    )
    images, labels = read_synthetic_arrays(out)
    gen = load_generator(trained_run / "checkpoints" / "last.pt", device="cpu")
    ref_images, ref_labels = generate_pairs(gen, [0, 1])
    np.testing.assert_allclose(images, ref_images, atol=1e-6)
    np.testing.assert_array_equal(labels, ref_labels)


def test_bad_format_and_untrained_run(trained_run: Path, tmp_path: Path):
    with pytest.raises(InputError, match="format"):
        api.sample(trained_run, n=1, formats=["jpeg"], out=tmp_path / "x", quiet=True)
    with pytest.raises(InputError, match="config.yaml"):
        api.sample(tmp_path / "empty", n=1, quiet=True)
