"""Tests for the mask GAN (Guibas 2017 stage I, Platscher 2021) and label-map decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthmed.data.pairs import decode_pairs
from synthmed.models.mask_gan import MaskGANModel, decode_mask
from synthmed.models.registry import MODELS
from tests.models.tiny import tiny_model


def _build(size=(16, 16), label_channels: int = 1, **options) -> MaskGANModel:
    return tiny_model("mask_gan", size, label_channels, **options)


@pytest.mark.parametrize("size", [(16, 16), (8, 8, 8)])
@pytest.mark.parametrize("label_channels", [1, 3])
def test_generates_valid_label_maps(size: tuple[int, ...], label_channels: int) -> None:
    gan = _build(size, label_channels)
    assert (gan.kind, gan.image_channels, gan.label_channels) == ("mask", 1, label_channels)
    channels = gan.generate(torch.randn(4, 8) * 5)
    assert channels.shape == (4, label_channels, *size)
    assert gan.critic(channels).shape == (4,)
    labels = gan.decode(channels)
    assert labels.shape == (4, *size) and labels.dtype == torch.long
    assert labels.min() >= 0 and labels.max() <= label_channels  # K = label_channels + 1
    assert torch.equal(labels, decode_pairs(channels, 0)[1])


def test_decode_threshold_and_argmax() -> None:
    channels = torch.tensor([[-0.9, 0.5, 0.95], [-0.5, 0.7, 0.3]]).view(1, 2, 1, 3)
    assert decode_mask(channels).tolist() == [[[0, 2, 1]]]  # background, argmax + 1
    assert decode_mask(channels, threshold=0.8).tolist() == [[[0, 0, 1]]]


def test_min_component_size_is_off_by_default_and_drops_specks() -> None:
    mask = -torch.ones(1, 1, 8, 8)
    mask[0, 0, 1:4, 1:4] = 1  # 9-pixel blob
    mask[0, 0, 6, 6] = 1  # 1-pixel speck
    mask[0, 0, 5, 5] = 1  # diagonal neighbour: one component of 2 with full connectivity
    assert int((decode_mask(mask) > 0).sum()) == 11
    cleaned = decode_mask(mask, min_component_size=3)
    expected = np.zeros((8, 8), dtype=np.int64)
    expected[1:4, 1:4] = 1
    assert np.array_equal(cleaned[0].numpy(), expected)
    assert int((decode_mask(mask, min_component_size=2) > 0).sum()) == 11


def test_spectral_norm_option_and_bad_channels() -> None:
    assert _build(spectral_norm=True).critic.spectral_norm
    assert not _build().critic.spectral_norm
    with pytest.raises(ValueError, match="label_channels"):
        _build(label_channels=0)
    assert "mask_gan" in MODELS.names()


@pytest.mark.parametrize("size,output", [((8, 8), (32, 32)), ((8, 8, 8), (16, 16, 16))])
def test_output_size_scales_soft_channels_before_decoding(size, output) -> None:
    """A mask GAN trained small (mask_stage.size) samples at the data's size."""
    from synthmed.models.base import synthesize_pairs

    gan = _build(size, output_size=output)
    small = gan.generate(torch.randn(2, 8))
    assert small.shape[2:] == size  # the critic trains at the small size
    pairs = synthesize_pairs(gan, torch.randn(2, 8))
    assert pairs.shape == (2, 2, *output)
    blob = -torch.ones(1, 1, *size)
    blob[(0, 0, *[slice(s // 4, 3 * s // 4) for s in size])] = 1.0
    up = gan.to_output_size(blob)
    assert up.shape[2:] == output and up.min() >= -1 and up.max() <= 1
    # linear scaling then thresholding keeps the blob where it was, at the new size
    labels = decode_mask(up)[0]
    centre = tuple(o // 2 for o in output)
    assert labels[centre] == 1 and labels[(0,) * len(output)] == 0
    assert _build(size).to_output_size(blob) is blob
