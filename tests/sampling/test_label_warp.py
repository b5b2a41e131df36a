"""The seeded affine warp of translator label maps (sample.warp_labels)."""

from __future__ import annotations

import numpy as np
import pytest

from synthmed.config.schema import LabelWarpConfig
from synthmed.sampling.label_warp import apply_warp, draw_warp, warp_label_maps


def blob_map(size: int = 16) -> np.ndarray:
    label = np.zeros((size, size), np.uint8)
    label[3:12, 4:10] = 1
    label[5:8, 5:7] = 2
    return label


def test_a_quarter_turn_is_rot90_and_keeps_label_values_exact():
    label = blob_map()
    turned = apply_warp(label, {"rotate_deg": [90.0], "scale": 1.0, "translate_px": [0, 0]})
    assert set(np.unique(turned)) <= {0, 1, 2}
    assert any(np.array_equal(turned, np.rot90(label, k)) for k in (1, 3))
    same = apply_warp(label, {"rotate_deg": [0.0], "scale": 1.0, "translate_px": [0, 0]})
    assert np.array_equal(same, label)


def test_a_shift_moves_the_map_by_whole_pixels_with_background_padding():
    label = blob_map()
    moved = apply_warp(label, {"rotate_deg": [0.0], "scale": 1.0, "translate_px": [2.0, 0.0]})
    assert np.array_equal(moved[2:], label[:-2]) or np.array_equal(moved[:-2], label[2:])


def test_each_seed_has_its_own_warp_and_the_same_seed_the_same():
    labels = np.stack([blob_map()] * 3)
    a, rec_a = warp_label_maps(labels, [0, 1, 2], rotate=20, scale=0.1, translate=0.1)
    b, rec_b = warp_label_maps(labels[:2], [0, 1], rotate=20, scale=0.1, translate=0.1)
    assert np.array_equal(a[:2], b) and rec_a[:2] == rec_b  # batch-independent
    assert not np.array_equal(a[0], a[1]) and rec_a[0] != rec_a[1]
    for warped in a:
        assert set(np.unique(warped)) <= {0, 1, 2} and (warped == 2).any()


def test_3d_maps_draw_three_angles():
    volume = np.zeros((8, 10, 12), np.uint8)
    volume[2:6, 3:7, 4:9] = 1
    warp = draw_warp(5, rotate=10, scale=0.05, translate=0.05, shape=volume.shape)
    assert len(warp["rotate_deg"]) == 3 and len(warp["translate_px"]) == 3
    assert apply_warp(volume, warp).shape == volume.shape
    assert all(abs(a) <= 10 for a in warp["rotate_deg"]) and 0.95 <= warp["scale"] <= 1.05


def test_the_config_is_off_by_default_and_bounded():
    assert not LabelWarpConfig().enabled
    assert LabelWarpConfig(rotate=10).enabled
    with pytest.raises(ValueError):
        LabelWarpConfig(scale=1.5)
