"""Writers round-trip through the readers and leave no temporary files behind."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synthmed.config.schema import SourceConfig
from synthmed.data.readers import read_image, read_label
from synthmed.data.sources import load_source
from synthmed.data.writers import write_label_png, write_nifti, write_npz_medmnist, write_png


def test_png_float_scaled_8_and_16_bit(tmp_path):
    ramp = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    write_png(tmp_path / "a.png", ramp)
    write_png(tmp_path / "b.png", ramp[None], bits=16)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png").array[0], np.rint(ramp * 255))
    assert Image.open(tmp_path / "b.png").mode.startswith("I")
    np.testing.assert_array_equal(read_image(tmp_path / "b.png").array[0], np.rint(ramp * 65535))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_png_rgb_channel_first_and_last(tmp_path, rng):
    rgb = rng.integers(0, 256, (3, 5, 6), dtype=np.uint8)
    write_png(tmp_path / "cf.png", rgb)
    write_png(tmp_path / "cl.png", np.moveaxis(rgb, 0, -1))
    np.testing.assert_array_equal(read_image(tmp_path / "cf.png").array, rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "cl.png").array, rgb)


def test_png_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="16-bit"):
        write_png(tmp_path / "a.png", np.zeros((3, 4, 4), np.float32), bits=16)
    with pytest.raises(ValueError, match="do not fit"):
        write_png(tmp_path / "a.png", np.full((4, 4), 300))
    assert not list(tmp_path.iterdir())


def test_label_png_keeps_values(tmp_path):
    label = np.array([[0, 1, 2], [3, 0, 1]], dtype=np.int64)
    write_label_png(tmp_path / "l.png", label)
    np.testing.assert_array_equal(read_label(tmp_path / "l.png").array, label)


@pytest.mark.parametrize("shape", [(1, 5, 6), (2, 5, 6), (1, 4, 5, 6), (2, 4, 5, 6)])
def test_nifti_round_trip(tmp_path, rng, shape):
    array = rng.random(shape).astype(np.float32)
    spacing = (2.0, 0.5, 0.7)[-(len(shape) - 1) :]
    write_nifti(tmp_path / "a.nii.gz", array, spacing=spacing)
    data = read_image(tmp_path / "a.nii.gz")
    np.testing.assert_allclose(data.array, array)
    assert data.spacing == pytest.approx(spacing)


def test_nifti_label_round_trip_keeps_affine(tmp_path):
    label = np.zeros((1, 3, 4, 5), np.int64)
    label[0, 1, 2, 3] = 2
    affine = np.array([[-1.0, 0, 0, 10], [0, -1, 0, 5], [0, 0, 3, -2], [0, 0, 0, 1]])
    write_nifti(tmp_path / "l.nii", label, affine=affine)
    read = read_label(tmp_path / "l.nii")
    np.testing.assert_array_equal(read.array, label[0])
    np.testing.assert_allclose(read.affine, affine)


def test_npz_medmnist_round_trip(tmp_path, rng):
    train = (rng.random((4, 1, 8, 8)).astype(np.float32), np.array([0, 1, 1, 0]))
    test = (rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8), np.array([[1], [0]]))
    path = write_npz_medmnist(tmp_path / "set.npz", {"train": train, "test": test})
    with np.load(path) as npz:
        assert npz["train_images"].shape == (4, 8, 8) and npz["train_images"].dtype == np.uint8
        assert npz["train_labels"].shape == (4, 1) and npz["test_images"].shape == (2, 8, 8, 3)
    items = load_source(SourceConfig(kind="npz", npz=path, npz_splits=["train", "test"]))
    assert [i.class_id for i in items] == [0, 1, 1, 0, 1, 0]
    np.testing.assert_allclose(items[0].image / 255, train[0][0], atol=1 / 255)
    assert items[4].image.shape == (3, 8, 8)
