"""Patches: shapes, foreground share (Kossen 2021), FOV, padding and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from synthmed.config.schema import PatchConfig
from synthmed.data.patches import cut_patches, extract_patches
from synthmed.errors import InputError


def test_shapes_and_foreground_centres(make_item):
    items = [make_item(f"p{k}", shape=(2, 40, 36), seed=k) for k in range(3)]
    cfg = PatchConfig(size=16, per_image=10, foreground_fraction=0.3, seed=4)
    patches = extract_patches(items, cfg)
    assert patches.images.shape == (30, 2, 16, 16) and patches.images.dtype == np.float32
    assert patches.labels.shape == (30, 16, 16) and patches.labels.dtype == np.int64
    assert patches.patient_ids == ["p0"] * 10 + ["p1"] * 10 + ["p2"] * 10
    assert patches.foreground.sum() == 9
    fg = patches.foreground
    assert (patches.labels[fg, 8, 8] > 0).all()  # centre pixel of fg-centred patches
    for k, (y, x), is_fg in zip(patches.item_index, patches.centres, fg, strict=True):
        assert not is_fg or items[k].label[y, x] > 0


def test_deterministic_for_a_seed(make_item):
    items = [make_item("a", seed=1), make_item("b", seed=2)]
    cfg = PatchConfig(size=8, per_image=6, seed=11)
    first, second = extract_patches(items, cfg), extract_patches(items, cfg)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.centres, second.centres)
    other = extract_patches(items, cfg.model_copy(update={"seed": 12}))
    assert not np.array_equal(first.centres, other.centres)


def test_random_patches_inside_image_or_fov(make_item):
    plain = extract_patches([make_item()], PatchConfig(size=8, per_image=50, foreground_fraction=0))
    assert not plain.foreground.any()
    assert (plain.centres >= 4).all() and (plain.centres <= 32 - 4).all()
    item = make_item(fov=True)
    fov = extract_patches([item], PatchConfig(size=8, per_image=50, foreground_fraction=0))
    assert item.meta["fov"][fov.centres[:, 0], fov.centres[:, 1]].all()


def test_small_image_padded_and_empty_label(make_item):
    item = make_item(shape=(1, 5, 6), lesion=False)
    patches = extract_patches([item], PatchConfig(size=8, per_image=3), pad_mode="constant")
    assert patches.images.shape == (3, 1, 8, 8) and not patches.foreground.any()
    np.testing.assert_array_equal(patches.images[0, 0, 1:6, 1:7], item.image[0])
    reflect = extract_patches([item], PatchConfig(size=8, per_image=1))
    assert reflect.images.shape == (1, 1, 8, 8) and reflect.images.min() > 0


def test_3d_patches(make_item):
    items = [make_item(shape=(1, 12, 12, 12))]
    patches = extract_patches(items, PatchConfig(size=8, per_image=4), spatial_dims=3)
    assert patches.images.shape == (4, 1, 8, 8, 8) and patches.labels.shape == (4, 8, 8, 8)
    assert (patches.labels[patches.foreground, 4, 4, 4] == 1).all()
    with pytest.raises(InputError, match="slice_axis"):
        extract_patches(items, PatchConfig(size=8, per_image=4), spatial_dims=2)


def test_cut_patches_matches_slicing(rng):
    array = rng.random((2, 20, 20))
    out = cut_patches(array, np.array([[10, 10], [5, 15]]), 6)
    np.testing.assert_array_equal(out[0], array[:, 7:13, 7:13])
    np.testing.assert_array_equal(out[1], array[:, 2:8, 12:18])
