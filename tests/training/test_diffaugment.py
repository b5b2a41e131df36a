"""Tests for DiffAugment (``diff_augment``) and the ADA probability controller."""

from __future__ import annotations

import pytest
import torch

from synthmed.training.diffaugment import (
    POLICIES,
    AdaptiveAugmentProbability,
    diff_augment,
    parse_policy,
)

ALL = ("translation", "cutout", "color")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pair(n: int = 16, spatial: tuple[int, ...] = (16, 16), binary: bool = False) -> torch.Tensor:
    """A pair batch whose label channel is an exact copy of its image channel."""
    gen = _gen(123)
    if binary:
        image = torch.where(torch.rand(n, 1, *spatial, generator=gen) > 0.5, 1.0, -1.0)
    else:
        image = torch.rand(n, 1, *spatial, generator=gen) * 2 - 1
    return torch.cat([image, image.clone()], dim=1)


def _changed_samples(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a != b).flatten(1).any(dim=1)


def _clamped_shift(x: torch.Tensor, shifts: tuple[int, ...]) -> torch.Tensor:
    """Reference: out[i] = x[clamp(i - s)] per spatial axis, one sample (C, *S)."""
    out = x
    for axis, shift in enumerate(shifts, start=1):
        size = x.shape[axis]
        index = (torch.arange(size) - shift).clamp(0, size - 1)
        out = out.index_select(axis, index)
    return out


# -- pair alignment -------------------------------------------------------------------------


@pytest.mark.parametrize("spatial", [(16, 16), (8, 12, 10)])
def test_geometric_ops_keep_image_and_label_aligned(spatial: tuple[int, ...]) -> None:
    x = _pair(spatial=spatial)
    out = diff_augment(x, ("translation", "cutout"), _gen(1), color_channels=1)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[:, 0], out[:, 1])
    assert _changed_samples(out, x).all()


# -- colour ---------------------------------------------------------------------------------


def test_color_touches_only_image_channels() -> None:
    x = _pair()
    x[:, 1] = torch.where(x[:, 1] > 0, 1.0, -1.0)
    out = diff_augment(x, ("color",), _gen(2), color_channels=1)
    assert torch.equal(out[:, 1], x[:, 1])
    assert _changed_samples(out[:, :1], x[:, :1]).all()


def test_color_channels_zero_leaves_everything_and_none_means_all() -> None:
    x = torch.rand(4, 3, 8, 8, generator=_gen(3)) * 2 - 1
    assert torch.equal(diff_augment(x, ("color",), _gen(4), color_channels=0), x)
    out = diff_augment(x, ("color",), _gen(4), color_channels=None)
    assert all(_changed_samples(out[:, c], x[:, c]).any() for c in range(3))


def test_saturation_scales_deviation_from_channel_mean() -> None:
    # Brightness and contrast keep the per-pixel channel spread ratio between pixels, so a
    # 3-channel image whose spread is not preserved must have been saturated.
    x = torch.rand(32, 3, 4, 4, generator=_gen(5)) * 2 - 1
    out = diff_augment(x, ("color",), _gen(6), color_channels=3)
    spread_in = x - x.mean(dim=1, keepdim=True)
    spread_out = out - out.mean(dim=1, keepdim=True)
    ratio = spread_out.flatten(1).norm(dim=1) / spread_in.flatten(1).norm(dim=1)
    assert ratio.min() < 0.5 and ratio.max() > 1.5  # factors span U(0,2) x U(0.5,1.5)


@pytest.mark.parametrize("bad", [-1, 3])
def test_color_channels_out_of_range_raises(bad: int) -> None:
    with pytest.raises(ValueError, match="color_channels"):
        diff_augment(torch.zeros(2, 2, 4, 4), ("color",), _gen(), color_channels=bad)


# -- translation / cutout -------------------------------------------------------------------


def test_translation_keeps_exact_label_values_and_shifts() -> None:
    x = _pair(binary=True)
    out = diff_augment(x, ("translation",), _gen(7))
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    assert _changed_samples(out, x).any()


@pytest.mark.parametrize("spatial", [(16, 16), (8, 8, 8)])
def test_translation_is_an_edge_replicated_integer_shift_within_range(
    spatial: tuple[int, ...],
) -> None:
    x = torch.rand(6, 2, *spatial, generator=_gen(8))
    out = diff_augment(x, ("translation",), _gen(9), translation_ratio=0.25)
    ranges = [torch.arange(-round(0.25 * n), round(0.25 * n) + 1) for n in spatial]
    grids = torch.cartesian_prod(*ranges).view(-1, len(spatial)).tolist()
    for i in range(x.shape[0]):
        matches = [s for s in grids if torch.equal(_clamped_shift(x[i], tuple(s)), out[i])]
        assert matches, f"sample {i} is not a clamped shift within range"


def test_cutout_zeroes_one_clipped_box_in_every_channel() -> None:
    x = torch.ones(32, 3, 16, 16)
    out = diff_augment(x, ("cutout",), _gen(10), cutout_ratio=0.25)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    for i in range(x.shape[0]):
        rows, cols = torch.nonzero(out[i, 0] == 0, as_tuple=True)
        assert rows.numel() > 0
        height = int(rows.max() - rows.min()) + 1
        width = int(cols.max() - cols.min()) + 1
        assert height <= 4 and width <= 4 and rows.numel() == height * width  # one box
    zeros = (out[:, 0] == 0).flatten(1).sum(dim=1)
    assert (zeros == 16).any()  # an unclipped box has side round(0.25 * 16) = 4


# -- determinism / gradients / shape --------------------------------------------------------


def test_same_seed_same_output_different_seed_differs() -> None:
    x = _pair(spatial=(8, 8, 8))
    a = diff_augment(x, ALL, _gen(11), color_channels=1, p=0.7)
    b = diff_augment(x, ALL, _gen(11), color_channels=1, p=0.7)
    c = diff_augment(x, ALL, _gen(12), color_channels=1, p=0.7)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_does_not_touch_global_rng() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    diff_augment(_pair(), ALL, _gen(13), color_channels=1, p=0.5)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("spatial", [(8, 8), (6, 6, 6)])
def test_gradient_flows_to_input(spatial: tuple[int, ...]) -> None:
    x = _pair(spatial=spatial).requires_grad_(True)
    out = diff_augment(x, ALL, _gen(14), color_channels=1)
    out.square().sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    assert x.grad[:, 1].abs().sum() > 0  # label channels get gradient through geometric ops


def test_preserves_dtype_and_shape_for_many_channels() -> None:
    x = torch.rand(3, 5, 6, 7, 8, generator=_gen(15), dtype=torch.float64)
    out = diff_augment(x, ALL, _gen(16), color_channels=2)
    assert out.shape == x.shape and out.dtype == torch.float64
    assert torch.isfinite(out).all()


def test_empty_policy_returns_input() -> None:
    x = _pair()
    assert diff_augment(x, (), _gen()) is x
    assert diff_augment(x, parse_policy(""), _gen()) is x


def test_string_policy_is_accepted() -> None:
    x = _pair()
    assert torch.equal(
        diff_augment(x, "translation,cutout", _gen(17)),  # type: ignore[arg-type]
        diff_augment(x, ("translation", "cutout"), _gen(17)),
    )


# -- probability p --------------------------------------------------------------------------


def test_p_zero_returns_input_exactly() -> None:
    x = _pair()
    out = diff_augment(x, ALL, _gen(18), color_channels=1, p=0.0)
    assert torch.equal(out, x)


def test_p_one_translation_changes_most_samples() -> None:
    x = _pair(n=64)
    out = diff_augment(x, ("translation",), _gen(19), p=1.0)
    assert _changed_samples(out, x).float().mean() > 0.85


def test_intermediate_p_gates_per_sample() -> None:
    x = _pair(n=64)
    changed = _changed_samples(diff_augment(x, ("cutout",), _gen(20), p=0.5), x)
    assert 0.2 < changed.float().mean() < 0.8


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_p_out_of_range_raises(p: float) -> None:
    with pytest.raises(ValueError, match="p must be in"):
        diff_augment(_pair(), ("translation",), _gen(), p=p)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="shape"):
        diff_augment(torch.zeros(4, 4), ("translation",), _gen())
    with pytest.raises(ValueError, match="cutout_ratio"):
        diff_augment(_pair(), ("cutout",), _gen(), cutout_ratio=1.5)


# -- parse_policy ---------------------------------------------------------------------------


def test_parse_policy_forms() -> None:
    assert parse_policy("translation,cutout") == ("translation", "cutout")
    assert parse_policy(" color , translation ") == ("color", "translation")
    assert parse_policy(["cutout"]) == ("cutout",)
    assert parse_policy("") == ()
    assert parse_policy([]) == ()
    assert set(POLICIES) == set(ALL)


def test_parse_policy_unknown_name_raises_with_name() -> None:
    with pytest.raises(ValueError, match="'flip'") as info:
        parse_policy("translation,flip")
    assert all(name in str(info.value) for name in POLICIES)


# -- ADA controller -------------------------------------------------------------------------


def _scores(sign: float, n: int = 8) -> torch.Tensor:
    return torch.full((n,), sign)


def test_ada_rises_only_at_interval_when_critic_overfits() -> None:
    ada = AdaptiveAugmentProbability(target=0.6, interval=4, speed_images=100)
    for _ in range(3):
        ada.update(_scores(2.0))
    assert ada.p == 0.0
    ada.update(_scores(2.0))
    assert ada.p == pytest.approx(32 / 100)


def test_ada_handles_patch_scores() -> None:
    ada = AdaptiveAugmentProbability(interval=1, speed_images=100)
    ada.update(torch.full((8, 1, 4, 4), 3.0))
    assert ada.p == pytest.approx(8 / 100)


def test_ada_stays_at_zero_and_falls_on_negative_scores() -> None:
    ada = AdaptiveAugmentProbability(interval=2, speed_images=100)
    for _ in range(10):
        ada.update(_scores(-1.0))
    assert ada.p == 0.0
    ada = AdaptiveAugmentProbability(interval=2, speed_images=100, initial=0.5)
    ada.update(_scores(-1.0))
    ada.update(_scores(-1.0))
    assert ada.p == pytest.approx(0.5 - 16 / 100)


def test_ada_clipped_at_max_p() -> None:
    ada = AdaptiveAugmentProbability(interval=1, speed_images=10, max_p=0.8)
    for _ in range(20):
        ada.update(_scores(1.0))
    assert ada.p == 0.8


def test_ada_state_dict_round_trip_mid_interval() -> None:
    ada = AdaptiveAugmentProbability(interval=4, speed_images=100, initial=0.2)
    for sign in (1.0, 1.0, 1.0, 1.0, 1.0, -1.0):  # one adjustment, then two pending updates
        ada.update(_scores(sign))
    state = ada.state_dict()
    assert all(type(v) in (int, float) for v in state.values())
    restored = AdaptiveAugmentProbability(interval=4, speed_images=100)
    restored.load_state_dict(state)
    assert restored.p == ada.p
    assert restored.state_dict() == state
    for _ in range(2):  # finish the interval: r_t = -0.5 < target, so p falls
        ada.update(_scores(-1.0))
        restored.update(_scores(-1.0))
    assert restored.p == ada.p != state["p"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target": 1.5},
        {"interval": 0},
        {"speed_images": 0},
        {"max_p": 1.2},
        {"initial": 0.9, "max_p": 0.8},
        {"initial": -0.1},
    ],
)
def test_ada_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="ADA"):
        AdaptiveAugmentProbability(**kwargs)
