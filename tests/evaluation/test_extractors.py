"""Feature extractors: pixels, the self-trained encoder (+ its cache), and user network files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from synthmed.errors import InputError
from synthmed.evaluation.fidelity.extractors import (
    EXTRACTORS,
    EncoderExtractor,
    FeatureExtractor,
    ModuleExtractor,
    PixelExtractor,
    data_hash,
    load_or_fit_encoder,
)


class TinyNet(nn.Module):
    """Module-level so a pickled instance can be re-imported by torch.load."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # a feature map: the extractor pools it


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(12, 1, 16, 16, generator=torch.Generator().manual_seed(0))


def test_registry_lists_all_kinds() -> None:
    assert EXTRACTORS.names() == ["encoder", "module", "pixels"]
    with pytest.raises(KeyError, match="valid names"):
        EXTRACTORS.get("inception")


def test_pixels_pool_2d_and_3d(images: torch.Tensor) -> None:
    ext = EXTRACTORS.build("pixels")
    assert isinstance(ext, FeatureExtractor)
    feats = ext.fit(images).embed(images.numpy())
    expected = torch.nn.functional.avg_pool2d(images, 1).flatten(1)  # 16x16 already
    assert torch.allclose(feats, expected)
    vol = torch.rand(3, 2, 16, 16, 16)
    assert PixelExtractor().embed(vol).shape == (3, 2 * 8**3)
    assert PixelExtractor(size=4, batch_size=2).embed(images).shape == (12, 16)


def test_data_hash_sees_values_shape_and_dtype(images: torch.Tensor) -> None:
    arr = images.numpy()
    assert data_hash(arr) == data_hash(images)
    changed = arr.copy()
    changed[0, 0, 0, 0] += 1e-3
    assert len({data_hash(arr), data_hash(changed), data_hash(arr.reshape(12, 1, 8, 32))}) == 3
    assert data_hash(arr) != data_hash(arr.astype(np.float64))


def test_encoder_is_deterministic_and_trains(images: torch.Tensor) -> None:
    a = EncoderExtractor(steps=20, seed=3, batch_size=8).fit(images)
    b = EncoderExtractor(steps=20, seed=3, batch_size=8).fit(images)
    fa, fb = a.embed(images), b.embed(images)
    assert fa.shape == (12, 16 + 32 + 32 * 2**2) and torch.equal(fa, fb)  # stage means + grid
    assert a.describe()["data_hash"] == data_hash(images)
    assert np.isfinite(a.meta["final_loss"])
    untrained = EncoderExtractor(steps=0, seed=3).fit(images)
    with torch.no_grad():
        errors = [nn.functional.mse_loss(e.model(images), images) for e in (a, untrained)]
    assert errors[0] < errors[1]


def test_encoder_3d_and_unfitted_error() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        EncoderExtractor().embed(torch.rand(2, 1, 8, 8))
    vol = torch.rand(4, 1, 8, 8, 8)
    enc = EncoderExtractor(steps=2, latent=4, widths=(4, 4), embed_grid=1).fit(vol)
    assert enc.embed(vol).shape == (4, 4 + 4 + 4)


def test_encoder_cache_reuses_and_refits(tmp_path, images: torch.Tensor) -> None:
    kw = {"steps": 5, "seed": 1, "batch_size": 4}
    first = load_or_fit_encoder(tmp_path, images, **kw)
    sidecar = json.loads((tmp_path / "fidelity_encoder.json").read_text())
    assert sidecar["data_hash"] == data_hash(images)
    (weights,) = [p for p in tmp_path.glob("fidelity_encoder.*") if p.suffix != ".json"]
    stamp = weights.stat().st_mtime_ns
    again = load_or_fit_encoder(tmp_path, images, **kw)
    assert weights.stat().st_mtime_ns == stamp  # read from the cache, not refitted
    assert torch.equal(first.embed(images), again.embed(images))
    weights.write_bytes(weights.read_bytes() + b"x")  # weights no longer match the sidecar
    assert torch.equal(
        load_or_fit_encoder(tmp_path, images, **kw).embed(images), again.embed(images)
    )
    assert weights.stat().st_mtime_ns != stamp  # refitted (same seed: same features)
    other = load_or_fit_encoder(tmp_path, images[:6], **kw)  # other data -> refit
    assert other.meta["data_hash"] == data_hash(images[:6])
    changed = load_or_fit_encoder(tmp_path, images[:6], **{**kw, "steps": 6})  # other settings
    assert changed.steps == 6
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        [weights.name, "fidelity_encoder.json"]
    )


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_encoder_save_load_round_trip(tmp_path, images: torch.Tensor, suffix: str) -> None:
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    enc = EncoderExtractor(steps=3, seed=2, batch_size=4).fit(images)
    enc.save(tmp_path / f"enc{suffix}")
    loaded = EncoderExtractor.load(tmp_path / f"enc{suffix}")
    assert torch.equal(loaded.embed(images), enc.embed(images))
    assert loaded.describe() == enc.describe()


def test_module_from_object_preprocesses(images: torch.Tensor) -> None:
    ext = ModuleExtractor(TinyNet(), input_size=8, channels=3, normalize=([0.5] * 3, [0.25] * 3))
    feats = ext.embed(images)
    assert feats.shape == (12, 4)
    net = ext.module
    x = torch.nn.functional.adaptive_avg_pool2d(images.repeat(1, 3, 1, 1), 8)
    x = (x - 0.5) / 0.25
    assert torch.allclose(feats, net(x).mean((2, 3)), atol=1e-5)


def test_module_file_torchscript_and_pickle_policy(tmp_path, images: torch.Tensor) -> None:
    net = TinyNet().eval()
    scripted, pickled = tmp_path / "net.ts", tmp_path / "net.pt"
    with warnings.catch_warnings():  # torch.jit is deprecated in new torch versions
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(net, torch.rand(1, 3, 8, 8)).save(str(scripted))
    torch.save(net, pickled)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    expected = net(images.repeat(1, 3, 1, 1)).mean((2, 3)).detach()
    from_script = ModuleExtractor(scripted, channels=3).embed(images)
    assert torch.allclose(from_script, expected, atol=1e-5)
    with pytest.raises(InputError, match="allow_pickle=True"):
        ModuleExtractor(pickled)
    trusted = ModuleExtractor(pickled, allow_pickle=True, channels=3).embed(images)
    assert torch.allclose(trusted, expected, atol=1e-5)
    with pytest.raises(InputError, match="not an nn.Module"):
        ModuleExtractor(tmp_path / "sd.pt", allow_pickle=True)
    with pytest.raises(InputError, match="not found"):
        ModuleExtractor(tmp_path / "missing.pt")
