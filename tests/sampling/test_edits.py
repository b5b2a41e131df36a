"""Lesion edits (Shin et al. 2018): lesions stay inside the organ, ``move`` keeps the area."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthmed.data.phantoms import PHANTOMS
from synthmed.errors import InputError
from synthmed.sampling.edit_plan import (
    EditRecord,
    edits_to_manifest,
    lesion_stats,
    make_tumour_cases,
    random_edit,
)
from synthmed.sampling.edits import (
    EditError,
    insert_lesion,
    lesion_components,
    move_lesion,
    organ_mask_from_label,
    remove_lesion,
    rotate_lesion,
    scale_lesion,
    valid_offsets,
)

TUMOUR = 4


def _brain_like(size: int = 64, centre=(22, 36), radii=(6.0, 6.0)) -> tuple[np.ndarray, np.ndarray]:
    """Ellipse organ with WM core and CSF ventricle (labels 1-3) and an elliptic tumour (4)."""
    yy, xx = np.mgrid[:size, :size] * (64 / size)
    organ = ((yy - 32) / 28) ** 2 + ((xx - 32) / 22) ** 2 < 1
    label = np.where(organ, 2, 0).astype(np.int64)
    label[organ & (((yy - 32) / 18) ** 2 + ((xx - 32) / 13) ** 2 < 1)] = 3
    label[organ & (((yy - 32) / 6) ** 2 + ((xx - 32) / 4) ** 2 < 1)] = 1
    tumour = ((yy - centre[0]) / radii[0]) ** 2 + ((xx - centre[1]) / radii[1]) ** 2 < 1
    label[tumour] = TUMOUR
    return label, organ


@pytest.fixture(scope="module")
def brains():
    return PHANTOMS.get("brain")(n_patients=2, size=64)


def _inside(label: np.ndarray, organ: np.ndarray) -> bool:
    return not ((label == TUMOUR) & ~organ).any()


def _area(label: np.ndarray) -> int:
    return int((label == TUMOUR).sum())


def test_move_keeps_area_and_organ_and_fills_vacated_pixels(brains):
    item = brains[0]
    label, organ = item.label, item.meta["brain"]
    original = label.copy()
    offsets = valid_offsets(label, TUMOUR, organ)
    offset = offsets[np.argmax(np.abs(offsets).sum(axis=1))]  # the farthest valid move
    moved = move_lesion(label, TUMOUR, offset, organ)
    assert _area(moved) == _area(label) and _inside(moved, organ)
    old, new = label == TUMOUR, moved == TUMOUR
    assert np.isin(moved[old & ~new], [1, 2, 3]).all()  # vacated pixels refilled with tissue
    assert not (organ & (moved == 0)).any()
    np.testing.assert_array_equal(moved[~old & ~new], label[~old & ~new])  # rest untouched
    np.testing.assert_array_equal(label, original)  # the input is never edited in place


def test_move_outside_errors_and_clip_lands_inside():
    label, organ = _brain_like()
    with pytest.raises(EditError, match="clip=True"):
        move_lesion(label, TUMOUR, (-20, 0), organ)
    with pytest.raises(EditError):
        move_lesion(label, TUMOUR, (0, 200), organ)  # off the array altogether
    assert issubclass(EditError, InputError)
    clipped = move_lesion(label, TUMOUR, (-20, 0), organ, clip=True)
    assert _inside(clipped, organ) and _area(clipped) == _area(label)
    (_, c0), (_, c1) = lesion_stats(label, TUMOUR), lesion_stats(clipped, TUMOUR)
    assert c1[0] < c0[0] - 5  # went as far towards the requested spot as it could


@pytest.mark.parametrize("factor", [0.7, 1.5])
def test_scale_changes_area_by_factor_squared(factor):
    label, organ = _brain_like(centre=(32, 32))
    scaled = scale_lesion(label, TUMOUR, factor, organ)
    assert _area(scaled) / _area(label) == pytest.approx(factor**2, rel=0.15)
    assert _inside(scaled, organ) and not (organ & (scaled == 0)).any()


def test_scale_clips_to_organ_or_raises():
    label, organ = _brain_like(centre=(9, 32))
    with pytest.raises(EditError, match="leave the organ"):
        scale_lesion(label, TUMOUR, 2.0, organ, clip=False)
    scaled = scale_lesion(label, TUMOUR, 2.0, organ)
    assert _inside(scaled, organ) and _area(label) < _area(scaled) < 4 * _area(label)


@pytest.mark.parametrize("angle", [30.0, 90.0, -135.0])
def test_rotate_keeps_area_and_organ(angle):
    label, organ = _brain_like(centre=(30, 32), radii=(3.0, 8.0))
    rotated = rotate_lesion(label, TUMOUR, angle, organ)
    assert _area(rotated) == pytest.approx(_area(label), rel=0.05)
    assert _inside(rotated, organ)
    if angle == 90.0:  # a wide ellipse becomes a tall one
        rows, cols = np.nonzero(rotated == TUMOUR)
        assert np.ptp(rows) > np.ptp(cols)


def test_insert_into_healthy_map(brains):
    healthy = remove_lesion(brains[0].label, TUMOUR, brains[0].meta["brain"])
    organ = brains[0].meta["brain"]
    assert _area(healthy) == 0 and not (organ & (healthy == 0)).any()
    lesion = lesion_components(brains[1].label, TUMOUR)[0]
    out = insert_lesion(healthy, lesion, (36.0, 30.0), TUMOUR, organ)
    area, centre = lesion_stats(out, TUMOUR)
    assert area == lesion.sum() and _inside(out, organ)
    assert np.allclose(centre, (36.0, 30.0), atol=1.0)
    with pytest.raises(EditError):
        insert_lesion(healthy, lesion, (1.0, 1.0), TUMOUR, organ)
    assert _inside(insert_lesion(healthy, lesion, (1.0, 1.0), TUMOUR, organ, clip=True), organ)


def test_components_and_single_component_move():
    label, organ = _brain_like(centre=(32, 32))
    label[12:14, 30:32] = TUMOUR  # a second, smaller lesion
    comps = lesion_components(label, TUMOUR)
    assert [c.sum() for c in comps] == sorted((c.sum() for c in comps), reverse=True)
    moved = move_lesion(label, TUMOUR, (2, 0), organ, component=1)
    assert (moved[14:16, 30:32] == TUMOUR).all() and (moved == TUMOUR)[comps[0]].all()
    assert organ_mask_from_label(label, (1, 2, 3)).sum() == ((label > 0) & (label < 4)).sum()


def test_errors_are_readable():
    label, organ = _brain_like()
    with pytest.raises(EditError, match="no lesion"):
        move_lesion(np.where(label == TUMOUR, 2, label), TUMOUR, (1, 1), organ)
    with pytest.raises(EditError, match="offset"):
        move_lesion(label, TUMOUR, (1, 1, 1), organ)
    with pytest.raises(EditError, match="integer array"):
        move_lesion(label.astype(float), TUMOUR, (1, 1), organ)
    with pytest.raises(EditError, match="kinds"):
        random_edit(label, TUMOUR, np.random.default_rng(0), kinds=("warp",))


def test_random_edit_is_deterministic_and_recorded():
    label, organ = _brain_like()
    runs = [random_edit(label, TUMOUR, np.random.default_rng(7), organ) for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    for seed in range(6):
        out, rec = random_edit(label, TUMOUR, np.random.default_rng(seed), organ, max_shift=4)
        assert _inside(out, organ) and rec.area_after == _area(out)
        if rec.kind == "move":
            assert rec.area_after == rec.area_before
            assert max(abs(v) for v in rec.parameters["offset"]) <= 4
        text = rec.to_manifest()
        assert " " not in text and EditRecord.from_manifest(text) == rec


def test_make_tumour_cases_meets_sizes_inside_organ(brains):
    healthy = [b.label for b in brains]
    organs = [b.meta["brain"] for b in brains]
    bank = {"p1": lesion_components(brains[1].label, TUMOUR)[0]}
    cases = make_tumour_cases(
        healthy,
        bank,
        3,
        np.random.default_rng(0),
        sizes=[30, 60, 90],
        organ_masks=organs,
        case_ids=["a", "b"],
    )
    assert len(cases) == 3
    for i, (label, rec) in enumerate(cases):
        assert rec.kind == "insert" and rec.source == "ab"[i % 2]
        assert rec.area_after == _area(label) == pytest.approx([30, 60, 90][i], rel=0.2)
        assert _inside(label, organs[i % 2])
    assert len(json.loads(edits_to_manifest([r for _, r in cases]))) == 3
    at = make_tumour_cases(
        healthy, bank, 1, np.random.default_rng(0), locations=[(30, 34)], organ_masks=organs
    )
    assert np.allclose(at[0][1].centre_after, (30, 34), atol=1.0)


def test_3d_move_scale_rotate():
    zz, yy, xx = np.mgrid[:16, :16, :16]
    organ = (zz - 8) ** 2 + (yy - 8) ** 2 + (xx - 8) ** 2 < 49
    label = np.where(organ, 3, 0).astype(np.int64)
    label[(zz - 8) ** 2 + (yy - 6) ** 2 + (xx - 8) ** 2 < 5] = TUMOUR
    moved = move_lesion(label, TUMOUR, (1, 3, -2), organ)
    assert _area(moved) == _area(label) and _inside(moved, organ)
    assert np.isin(moved[organ & (moved != TUMOUR)], [3]).all()
    assert _inside(scale_lesion(label, TUMOUR, 1.5, organ), organ)
    assert _inside(rotate_lesion(label, TUMOUR, 45.0, organ), organ)


_HYP_LABEL, _HYP_ORGAN = _brain_like(size=32, centre=(11, 18), radii=(3.0, 3.0))


@settings(max_examples=60, deadline=None)
@given(st.integers(-16, 16), st.integers(-16, 16))
def test_any_successful_move_stays_inside_with_equal_area(dy, dx):
    try:
        moved = move_lesion(_HYP_LABEL, TUMOUR, (dy, dx), _HYP_ORGAN)
    except EditError:
        assert [dy, dx] not in valid_offsets(_HYP_LABEL, TUMOUR, _HYP_ORGAN).tolist()
        return
    assert _area(moved) == _area(_HYP_LABEL) and _inside(moved, _HYP_ORGAN)
    assert not (_HYP_ORGAN & (moved == 0)).any()


def test_failed_edit_draws_retry_then_leave_the_map_unedited(monkeypatch):
    """One impossible draw (a tiny lesion rotated to nothing) must not abort a whole export."""
    from synthmed.sampling import conditions, edit_plan
    from synthmed.sampling.edits import EditError

    label = np.zeros((16, 16), np.int64)
    label[4:10, 4:10] = 1
    real_edit, calls = edit_plan.random_edit, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise EditError("rotated lesion is empty")
        return real_edit(*args, **kwargs)

    monkeypatch.setattr(edit_plan, "random_edit", flaky)
    maps, records = conditions._edited(label[None], [0], np.array([0]), lesion_value=1)
    assert calls["n"] == 3 and json.loads(records[0])["kind"] in ("move", "scale", "rotate")

    def never(*args, **kwargs):
        raise EditError("no room")

    monkeypatch.setattr(edit_plan, "random_edit", never)
    maps, records = conditions._edited(label[None], [0], np.array([0]), lesion_value=1)
    assert records == [""] and np.array_equal(maps[0], label)


def test_lesion_only_maps_keep_edits_inside_the_imaged_organ():
    """LGG-style maps hold the tumour alone: the brain seen in the image bounds the edits."""
    from synthmed.sampling import conditions
    from synthmed.sampling.edits import organ_mask_from_image

    yy, xx = np.mgrid[:48, :48]
    brain = (yy - 24) ** 2 + (xx - 24) ** 2 <= 14**2
    image = np.where(brain, 0.7, 0.02)[None].repeat(3, axis=0)
    image[:, 20:24, 20:24] = 0.0  # a dark spot inside the brain: a hole, filled
    label = np.zeros((48, 48), np.int64)
    label[22:27, 26:31] = 1
    organ = organ_mask_from_image(image)
    assert np.array_equal(organ, brain)
    n = 24
    maps, records = conditions._edited(
        np.repeat(label[None], n, 0), list(range(n)), np.zeros(n, int), 1, image[None]
    )
    assert all(records)
    for edited in maps:
        assert edited.any() and not (edited.astype(bool) & ~brain).any()
