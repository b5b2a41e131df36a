"""Preprocessing: channels, intensity ranges, label-safe resizing, slicing, ROI crops."""

from __future__ import annotations

import numpy as np
import pytest

from synthmed.config.schema import PreprocessConfig
from synthmed.data.preprocess import (
    crop_or_pad,
    lesion_roi_crop,
    normalize,
    preprocess_items,
    resize_item,
    select_channels,
    slice_volume,
)
from synthmed.data.types import Item
from synthmed.errors import InputError


def test_select_channels(rng):
    rgb = rng.random((3, 4, 5)).astype(np.float32)
    assert select_channels(rgb, "keep") is rgb
    np.testing.assert_array_equal(select_channels(rgb, "green"), rgb[1:2])
    np.testing.assert_array_equal(select_channels(rgb, "first"), rgb[:1])
    np.testing.assert_array_equal(select_channels(rgb, [2, 0]), rgb[[2, 0]])
    grey = select_channels(rgb, "grey")
    np.testing.assert_allclose(grey[0], 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2], 1e-6)
    assert select_channels(rgb[:1], "green").shape == (1, 4, 5)
    with pytest.raises(InputError, match="do not exist"):
        select_channels(rgb, [3])


def test_percentile_in_unit_range(rng):
    image = rng.normal(100, 40, (2, 16, 16)).astype(np.float32)
    out = normalize(image, "percentile", (1, 99))
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert 0.4 < np.median(out) < 0.6


def test_statistics_inside_fov_only():
    image = np.zeros((1, 8, 8), np.float32)
    image[0, 2:6, 2:6] = np.linspace(10, 20, 16).reshape(4, 4)
    fov = np.zeros((8, 8), bool)
    fov[2:6, 2:6] = True
    out = normalize(image, "minmax", fov=fov)
    assert out[0, 2, 2] == 0 and out[0, 5, 5] == 1  # black surround did not set the minimum


def test_ct_window_maps_known_hu():
    hu = np.array([[[-1000, -160, 40, 240, 1000]]], np.float32)
    out = normalize(hu, "ct_window", ct_window=(40, 400))
    np.testing.assert_allclose(out[0, 0], [0, 0, 0.5, 1, 1])


def test_zscore_and_constant_image():
    out = normalize(np.arange(10, dtype=np.float32)[None, None], "zscore")
    assert abs(out.mean()) < 1e-6 and abs(out.std() - 1) < 1e-5
    assert not normalize(np.full((1, 4, 4), 7.0), "percentile").any()


def test_resize_keeps_labels_integer_and_in_set(make_item):
    item = make_item(shape=(1, 30, 30))
    item.label[item.label > 0] = 3
    small = resize_item(item, [17, 13])
    assert small.image.shape == (1, 17, 13) and small.label.shape == (17, 13)
    assert small.label.dtype == item.label.dtype
    assert set(np.unique(small.label)) <= {0, 3}
    vol = resize_item(make_item(shape=(1, 8, 10, 12)), [4])
    assert vol.image.shape == (1, 4, 4, 4) and set(np.unique(vol.label)) <= {0, 1}
    with pytest.raises(InputError, match="does not fit"):
        resize_item(item, [4, 4, 4])


def test_slices_keep_patient_and_drop_empty(make_item):
    volume = make_item("pat-7", shape=(2, 6, 16, 16))
    volume.label[:] = 0
    volume.label[2:4, 5:8, 5:8] = 1
    volume = volume.with_(spacing=(3.0, 0.5, 0.5))
    slices = slice_volume(volume, axis=0)
    assert len(slices) == 6 and all(s.patient_id == "pat-7" for s in slices)
    assert slices[3].image.shape == (2, 16, 16) and slices[3].meta["slice_index"] == 3
    assert slices[3].spacing == (0.5, 0.5)
    kept = slice_volume(volume, axis=0, only_labelled=True)
    assert [s.meta["slice_index"] for s in kept] == [2, 3]
    assert len(slice_volume(volume, axis=2)) == 16


def test_preprocess_items_pipeline(make_item):
    volume = make_item("p1", shape=(3, 4, 20, 20), fov=True)
    volume.label[volume.label > 0] = 2
    cfg = PreprocessConfig(channels="green", slice_axis=0, resize=[10, 10], label_mode="binary")
    out = preprocess_items([volume], cfg)
    assert len(out) == 4 and out[0].image.shape == (1, 10, 10)
    assert all(o.patient_id == "p1" for o in out)
    assert out[0].meta["fov"].shape == (10, 10) and out[0].meta["fov"].dtype == bool
    assert set(np.unique(np.stack([o.label for o in out]))) <= {0, 1}
    assert 0 <= min(o.image.min() for o in out) and max(o.image.max() for o in out) <= 1


def test_preprocess_error_names_source(make_item):
    with pytest.raises(InputError, match="mem:p0"):
        preprocess_items([make_item()], PreprocessConfig(channels=[3]))


def test_crop_or_pad():
    array = np.arange(2 * 5 * 7).reshape(2, 5, 7)
    out = crop_or_pad(array, (7, 5))
    assert out.shape == (2, 7, 5)
    np.testing.assert_array_equal(out[:, 1:6], array[:, :, 1:6])
    assert not out[:, 0].any() and crop_or_pad(array, 3).shape == (2, 3, 3)


def test_lesion_roi_crop_centres_lesion():
    label = np.zeros((40, 40), np.uint8)
    label[10:16, 20:24] = 1
    item = Item(image=np.random.default_rng(0).random((1, 40, 40), np.float32), label=label)
    roi = lesion_roi_crop(item, size=16, margin=0.5)
    top, left, side = roi.meta["roi"]
    assert side == 12 and (top, left) == (7, 16)
    assert roi.image.shape == (1, 16, 16) and roi.label.shape == (16, 16)
    rows, cols = np.nonzero(roi.label)
    assert abs(rows.mean() - 7.5) < 1 and abs(cols.mean() - 7.5) < 1


def test_patient_scope_keeps_an_empty_slice_dark(rng):
    """Per image, a slice holding only scanner noise is stretched to full range; with the
    patient's statistics it stays as dark as it is next to the patient's other slices."""
    tissue = Item(image=rng.uniform(100, 200, (1, 16, 16)).astype(np.float32), patient_id="p")
    noise = Item(image=rng.uniform(0, 5, (1, 16, 16)).astype(np.float32), patient_id="p")
    other = Item(image=rng.uniform(0, 5, (1, 16, 16)).astype(np.float32), patient_id="q")
    per_image = preprocess_items([tissue, noise, other], PreprocessConfig())
    assert per_image[1].image.max() == pytest.approx(1.0)
    scoped = preprocess_items([tissue, noise, other], PreprocessConfig(normalize_scope="patient"))
    assert scoped[1].image.max() < 0.05 and scoped[0].image.max() == pytest.approx(1.0)
    assert scoped[2].image.max() == pytest.approx(1.0)  # patient q: its own statistics
