"""Latent diffusion (model.options.latent): shapes on the latent grid in 2D and 3D, the
autoencoder phase then the diffusion phase through the shared loop, exact resume inside the
autoencoder phase, the EMA copying the frozen codec, batch-independent seeds, bad options."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from synthmed import api
from synthmed.checkpoints import load_checkpoint
from synthmed.errors import InputError
from synthmed.models.base import synthesize_pairs
from tests.models.test_diffusion import build, loss_before_and_after, onehot, randomized, z_for
from tests.training.test_training import tiny_config

LATENT = {"channels": 2, "widths": [4, 8], "norm_groups": 4, "steps": 3}


@pytest.mark.parametrize("size", [(8, 8), (8, 8, 8)])
@pytest.mark.parametrize(
    "name,label_channels", [("diffusion_pairs", 1), ("diffusion_translator", 2)]
)
def test_latent_models_diffuse_a_smaller_grid_and_decode_the_pair_layout(
    name, label_channels, size
) -> None:
    model = build(name, size, label_channels, latent=LATENT)
    grid = tuple(s // 2 for s in size)  # two widths: one downsampling
    assert model.codec is not None and model.noise_shape == (2, *grid)
    assert model.latent_dim == 2 * math.prod(grid)
    n = 2
    cond = onehot(n, size, label_channels + 1) if model.needs_condition else None
    with torch.no_grad():
        out = synthesize_pairs(model, z_for(model, n), None, cond)
    assert out.shape == (n, 1 + label_channels, *size)
    assert out.min() >= -1 and out.max() <= 1
    if cond is not None:  # the map that made the image is still its label
        assert torch.equal(out[:, 1:], cond[:, 1:] * 2 - 1)


def test_the_autoencoder_loss_falls_on_a_fixed_batch() -> None:
    codec = build("diffusion_pairs", latent=LATENT).codec
    rows = torch.rand(8, 2, 8, 8) * 2 - 1
    before, after = loss_before_and_after(
        lambda: codec.loss(rows, torch.Generator().manual_seed(1)), codec, steps=10
    )
    assert after < before


def test_same_seed_same_sample_whatever_the_batch_in_latent_space() -> None:
    from synthmed.sampling.export import latents_for_seeds

    model = randomized(build("diffusion_pairs", latent=LATENT))
    seeds = [3, 4, 5]
    with torch.no_grad():
        together = model.synthesize(latents_for_seeds(seeds, model.latent_dim))
        alone = model.synthesize(latents_for_seeds(seeds[1:2], model.latent_dim))
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(together[0], together[1])


def test_bad_latent_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown model.options.latent"):
        build("diffusion_pairs", latent={"chanels": 4})
    with pytest.raises(ValueError, match="divisible by the latent factor 4"):
        build("diffusion_pairs", size=(6, 6), latent={**LATENT, "widths": [4, 8, 8]})
    with pytest.raises(ValueError, match="latent.steps"):
        build("diffusion_pairs", latent={**LATENT, "steps": 0})


LATENT_RUN = {
    "model.name": "diffusion_pairs",
    "train.method": "diffusion",
    "model.options": (
        "{channels: [4, 8], attention: [false, false], sample_steps: 2, "
        "latent: {channels: 2, widths: [4, 8], norm_groups: 4, steps: 3}}"
    ),
    "sample.n": "3",
}


def test_the_loop_trains_the_autoencoder_then_the_unet_and_resumes_exactly(
    tmp_path: Path,
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    api.train(tiny_config(5, **LATENT_RUN), straight, quiet=True)
    api.train(tiny_config(2, **LATENT_RUN), resumed, quiet=True)  # stops inside phase 1
    api.train(tiny_config(5, **LATENT_RUN), resumed, resume=True, quiet=True)
    a, b = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (straight, resumed))
    assert set(a["optimizers"]) == {"g", "ae"}
    for part in ("generator", "generator_ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    gen, ema = a["generator"], a["generator_ema"]
    assert int(gen["codec.steps_done"]) == 3 and float(gen["codec.scale"]) != 1.0
    codec_keys = [k for k in gen if k.startswith("codec.")]
    assert codec_keys and all(torch.equal(gen[k], ema[k]) for k in codec_keys)  # copied
    with (straight / "train_log.csv").open() as fh:
        log = list(csv.DictReader(fh))
    phase1, phase2 = log[:3], log[3:]
    assert all(math.isfinite(float(r["recon"])) and r["loss"] == "nan" for r in phase1)
    assert all(math.isfinite(float(r["loss"])) and r["recon"] == "nan" for r in phase2)
    folder = api.sample(straight, quiet=True)
    assert len(list((folder / "images").iterdir())) == 3


def test_latent_diffusion_is_refused_for_a_gan_method(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="train.method"):
        api.train(tiny_config(1, **{**LATENT_RUN, "train.method": "wgan_gp"}), tmp_path / "r")
