"""Image+label pair encoding (Kossen 2021: one tensor, label channels in tanh range)."""

import numpy as np
import torch

from synthmed.data.pairs import decode_pairs, encode_pairs


def test_binary_round_trip():
    rng = np.random.default_rng(0)
    images = rng.random((3, 1, 8, 8)).astype(np.float32)
    labels = (rng.random((3, 8, 8)) > 0.7).astype(np.int64)
    pairs = encode_pairs(images, labels, num_classes=2)
    assert pairs.shape == (3, 2, 8, 8) and pairs.min() >= -1 and pairs.max() <= 1
    img, lab = decode_pairs(pairs, image_channels=1, threshold=0.8)
    np.testing.assert_allclose(img.numpy(), images, atol=1e-6)
    np.testing.assert_array_equal(lab.numpy(), labels)


def test_multiclass_round_trip_and_threshold():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=(2, 6, 6))
    pairs = encode_pairs(np.zeros((2, 3, 6, 6), np.float32), labels, num_classes=4)
    assert pairs.shape[1] == 3 + 3
    _, lab = decode_pairs(pairs, image_channels=3)
    np.testing.assert_array_equal(lab.numpy(), labels)
    weak = pairs.clone()
    weak[:, 3:] = weak[:, 3:] * 0.5  # foreground channels only reach 0.5
    _, lab_weak = decode_pairs(weak, image_channels=3, threshold=0.8)
    assert int(lab_weak.max()) == 0
    assert torch.equal(decode_pairs(weak, 3, threshold=0.0)[1], lab)
