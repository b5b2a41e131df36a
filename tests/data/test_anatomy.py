"""Anatomy classes derived from an image under a lesion-only label map (data.anatomy)."""

from __future__ import annotations

import numpy as np
import pytest

from synthmed.config.schema import AnatomyConfig, DataConfig, PreprocessConfig
from synthmed.data.anatomy import derive_anatomy, foreground_mask, tissue_classes
from synthmed.data.preprocess import preprocess_items
from synthmed.data.types import Item
from synthmed.errors import InputError


def head_phantom(size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(1, H, W) image: black outside a disc, inside it three vertical bands of intensity
    0.3 / 0.6 / 0.9 (expected classes 1 / 2 / 3); a 4x4 lesion in the middle band."""
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (0.42 * size) ** 2
    expected = np.where(xx < 12, 1, np.where(xx < 20, 2, 3)) * disc
    image = np.choose(expected, [0.0, 0.3, 0.6, 0.9]).astype(np.float32)[None]
    lesion = np.zeros((size, size), np.uint8)
    lesion[14:18, 14:18] = 1
    expected = expected.astype(np.uint8)
    expected[lesion > 0] = 4
    return image, lesion, expected


def test_known_regions_give_known_classes_with_the_lesion_on_top():
    image, lesion, expected = head_phantom()
    out = derive_anatomy(image, lesion, AnatomyConfig(classes=3, smooth=0.0))
    assert out.dtype == np.uint8 and out.shape == lesion.shape
    np.testing.assert_array_equal(out, expected)


def test_quantile_method_and_determinism_with_smoothing():
    image, lesion, expected = head_phantom()
    cfg = AnatomyConfig(classes=3, method="quantile", smooth=1.0)
    first = derive_anatomy(image, lesion, cfg)
    np.testing.assert_array_equal(first, derive_anatomy(image.copy(), lesion.copy(), cfg))
    assert set(np.unique(first)) == {0, 1, 2, 3, 4}
    assert (first[lesion > 0] == 4).all() and (
        first[expected == 0] == 0
    ).mean() > 0.9  # blur: 1-px rim


def test_tissue_classes_equal_shares_and_fallback():
    ramp = np.linspace(0, 1, 300)
    counts = np.bincount(tissue_classes(ramp, 3, "quantile"))
    assert counts.tolist() == [100, 100, 100]
    two_values = np.array([0.2] * 10 + [0.7] * 10)  # too few distinct values for multi-Otsu
    assert tissue_classes(two_values, 3, "multiotsu").max() <= 2


def test_empty_image_keeps_only_the_lesion():
    image = np.zeros((1, 16, 16), np.float32)
    lesion = np.zeros((16, 16), np.uint8)
    lesion[3:6, 3:6] = 1
    assert not foreground_mask(image[0]).any()
    out = derive_anatomy(image, lesion, AnatomyConfig(classes=2))
    assert set(np.unique(out)) == {0, 3} and (out == 3).sum() == 9


def test_preprocess_items_derives_anatomy_after_label_mode():
    image, lesion, expected = head_phantom()
    item = Item(image=image * 200, label=lesion * 255, patient_id="p", source="mem:p")
    cfg = PreprocessConfig(
        normalize="minmax", label_mode="binary", anatomy={"classes": 3, "smooth": 0.0}
    )
    (out,) = preprocess_items([item], cfg)
    np.testing.assert_array_equal(out.label, expected)


def test_missing_channel_is_an_input_error_naming_the_key():
    image, lesion, _ = head_phantom()
    item = Item(image=image, label=lesion, patient_id="p", source="mem:p")
    cfg = PreprocessConfig(anatomy={"channel": 2})
    with pytest.raises(InputError, match=r"data\.preprocess\.anatomy\.channel 2"):
        preprocess_items([item], cfg)


def test_label_names_gain_the_tissue_classes():
    train = {"kind": "phantom", "phantom": {}, "label_names": ["background", "tumour"]}
    plain = DataConfig(train=train)
    assert plain.label_names() == ["background", "tumour"]
    derived = DataConfig(train=train, preprocess={"anatomy": {"classes": 2}})
    assert derived.label_names() == ["background", "tissue_1", "tissue_2", "tumour"]
    named = DataConfig(train=train, preprocess={"anatomy": {"classes": 1, "names": ["brain"]}})
    assert named.label_names() == ["background", "brain", "tumour"]
