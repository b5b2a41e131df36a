"""Built-in phantoms: shapes, label sets, determinism, and enough anatomy for a GAN to learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from synthmed.data.phantoms import (
    BRAIN_CLASS_NAMES,
    BRAIN_LABEL_NAMES,
    FUNDUS_LABEL_NAMES,
    PHANTOMS,
)
from synthmed.data.types import Item
from synthmed.errors import InputError

SIZE = 64


@pytest.fixture(scope="module")
def fundus() -> list[Item]:
    return PHANTOMS.build("fundus", n_patients=12, size=SIZE, seed=0)


@pytest.fixture(scope="module")
def brain() -> list[Item]:
    return PHANTOMS.build("brain", n_patients=12, images_per_patient=2, size=SIZE, seed=0)


def test_registry_names() -> None:
    assert {"fundus", "brain", "brain3d"} <= set(PHANTOMS.names())
    with pytest.raises(KeyError, match="valid names"):
        PHANTOMS.get("xray")


def test_fundus_shapes_dtypes_ranges(fundus: list[Item]) -> None:
    assert len(fundus) == 12
    for i, item in enumerate(fundus):
        assert item.image.shape == (3, SIZE, SIZE) and item.image.dtype == np.float32
        assert 0.0 <= item.image.min() and item.image.max() <= 1.0
        assert item.label.shape == (SIZE, SIZE) and item.label.dtype == np.int64
        assert set(np.unique(item.label)) <= set(range(len(FUNDUS_LABEL_NAMES)))
        assert item.class_id is None and item.spacing is None
        assert item.patient_id == f"fundus-{i:03d}"
        assert item.source == f"phantom:fundus:p{i:03d}:i0"
        fov = item.meta["fov"]
        assert fov.shape == (SIZE, SIZE) and fov.dtype == bool
        assert not item.label[~fov].any()  # vessels only inside the field of view


def test_fundus_looks_like_a_retina(fundus: list[Item]) -> None:
    for item in fundus:
        fov = item.meta["fov"]
        assert item.image[:, ~fov].mean() < 0.05  # dark outside the circular FOV
        red, green, blue = item.image[:, fov].mean(axis=1)
        assert red > green > blue  # orange-red background
        # vessels are darker than their surroundings (illumination varies over the image)
        green = item.image[1]
        local = green - ndimage.uniform_filter(green, 7)
        vessel, back = item.label.astype(bool) & fov, ~item.label.astype(bool) & fov
        assert local[vessel].mean() < local[back].mean() - 0.01
        assert item.image[:, fov].std(axis=1).min() > 0.02  # structure, not a flat disc


def test_fundus_vessel_fraction_and_connectivity(fundus: list[Item]) -> None:
    for item in fundus:
        vessels = item.label.astype(bool)
        assert 0.05 <= vessels[item.meta["fov"]].mean() <= 0.15
        components, _ = ndimage.label(vessels, structure=np.ones((3, 3)))
        sizes = np.bincount(components.ravel())[1:]
        assert sizes.max() >= 0.8 * sizes.sum()  # one tree, not scattered lines


def test_brain_shapes_labels_and_classes(brain: list[Item]) -> None:
    assert len(brain) == 24
    for item in brain:
        assert item.image.shape == (1, SIZE, SIZE) and item.image.dtype == np.float32
        assert 0.0 <= item.image.min() and item.image.max() <= 1.0
        assert item.label.shape == (SIZE, SIZE) and item.label.dtype == np.int64
        assert set(np.unique(item.label)) == set(range(len(BRAIN_LABEL_NAMES)))
        assert item.class_id in range(len(BRAIN_CLASS_NAMES))
        assert item.meta["lesion"] == BRAIN_CLASS_NAMES[item.class_id]
    assert {item.class_id for item in brain} == {0, 1, 2}


def test_brain_tumour_inside_brain(brain: list[Item]) -> None:
    for item in brain:
        tumour = item.label == 4
        assert tumour.sum() >= 3
        assert item.meta["brain"][tumour].all()


def test_brain_contrast_is_flair_like(brain: list[Item]) -> None:
    for item in brain:
        mean = [item.image[0][item.label == k].mean() for k in range(5)]
        assert mean[0] < mean[3] and mean[1] < mean[3]  # background and CSF dark
        assert mean[2] > mean[3]  # grey matter brighter than white matter
        assert item.image[0][item.meta["brain"]].std() > 0.05


def test_brain_slices_of_one_patient(brain: list[Item]) -> None:
    first, second = brain[0], brain[1]
    assert first.patient_id == second.patient_id == "brain-000"
    assert first.source.endswith(":i0") and second.source.endswith(":i1")
    assert first.class_id == second.class_id
    assert first.meta["slice_z"] != second.meta["slice_z"]
    overlap = (first.label == 4) & (second.label == 4)
    assert overlap.sum() >= 0.5 * min((first.label == 4).sum(), (second.label == 4).sum())
    assert (first.label == second.label).mean() > 0.8  # same anatomy, slightly moved
    assert not np.array_equal(first.image, second.image)


@pytest.mark.parametrize("kind", ["fundus", "brain"])
def test_patients_differ(kind: str) -> None:
    items = PHANTOMS.build(kind, n_patients=3, size=32, seed=0)
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        assert np.abs(items[a].image - items[b].image).mean() > 0.01
        assert not np.array_equal(items[a].label, items[b].label)


@pytest.mark.parametrize("kind", ["fundus", "brain"])
def test_deterministic_and_seed_sensitive(kind: str) -> None:
    build = PHANTOMS.get(kind)
    a = build(n_patients=3, images_per_patient=2, size=32, seed=5)
    b = build(n_patients=3, images_per_patient=2, size=32, seed=5)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.label, y.label)
    c = build(n_patients=3, images_per_patient=2, size=32, seed=6)
    assert not np.array_equal(a[0].image, c[0].image)
    # adding patients or images leaves earlier ones untouched
    more = build(n_patients=4, images_per_patient=3, size=32, seed=5)
    assert np.array_equal(more[0].image, a[0].image)
    assert np.array_equal(more[3].label, a[2].label)


@pytest.mark.parametrize("size", [32, 48, 128])
def test_other_sizes(size: int) -> None:
    for kind, channels in [("fundus", 3), ("brain", 1)]:
        item = PHANTOMS.build(kind, n_patients=1, size=size, seed=1)[0]
        assert item.image.shape == (channels, size, size)
        assert item.label.shape == (size, size) and item.label.max() >= 1


def test_anatomy_is_the_same_at_every_size() -> None:
    small = PHANTOMS.build("brain", n_patients=1, size=32, seed=2)[0]
    large = PHANTOMS.build("brain", n_patients=1, size=128, seed=2)[0]
    pooled = large.label[1::4, 1::4]  # pixel centres of the 32 px grid lie between these
    assert (pooled == small.label).mean() > 0.6
    assert small.class_id == large.class_id


def test_brain3d_volume() -> None:
    (item,) = PHANTOMS.build("brain3d", n_patients=1, size=24, seed=0)
    assert item.image.shape == (1, 24, 24, 24) and item.image.dtype == np.float32
    assert item.label.shape == (24, 24, 24) and item.label.dtype == np.int64
    assert (item.label == 4).any() and item.meta["brain"][item.label == 4].all()
    assert item.spatial_dims == 3


def test_bad_arguments() -> None:
    with pytest.raises(InputError):
        PHANTOMS.build("brain", n_patients=1, size=8)
    with pytest.raises(InputError):
        PHANTOMS.build("fundus", n_patients=1, seed=-1)
    assert PHANTOMS.build("fundus", n_patients=0) == []
