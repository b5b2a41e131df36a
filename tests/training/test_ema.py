"""EMA of the generator weights: the update maths, the checkpoint, and sampling with it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from synthmed import api
from synthmed.checkpoints import load_checkpoint
from synthmed.training.ema import GeneratorEMA, ema_decay
from tests.training.test_training import tiny_config


def test_decay_ramps_up_to_its_ceiling() -> None:
    assert ema_decay(1, 0.999) == pytest.approx(2 / 11)
    assert ema_decay(90, 0.999) == pytest.approx(91 / 100)
    assert ema_decay(10**6, 0.999) == 0.999
    assert ema_decay(5, 0.0) == 0.0
    with pytest.raises(ValueError, match="decay"):
        ema_decay(1, 1.0)


def test_update_is_the_exponential_average_and_copies_buffers() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = GeneratorEMA(net, decay=0.5)
    start = [p.detach().clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net.train()(torch.randn(8, 3))  # moves the batch-norm running statistics
    ema.update(net, step=100)  # ramp-up (101/110) is above 0.5: decay 0.5
    for old, new, p in zip(start, ema.module.parameters(), net.parameters(), strict=True):
        assert torch.allclose(new, 0.5 * old + 0.5 * p.detach())
    assert torch.equal(ema.module[1].running_mean, net[1].running_mean)
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_checkpoint_holds_ema_and_sampling_uses_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    api.train(tiny_config(4, **{"sample.n": "4"}), run, quiet=True)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["generator_ema"].keys() == state["generator"].keys()
    moved = [k for k, v in state["generator"].items() if v.is_floating_point()]
    assert any(not torch.equal(state["generator"][k], state["generator_ema"][k]) for k in moved)
    ema_dir = api.sample(run, out=tmp_path / "ema", quiet=True)
    with (ema_dir / "manifest.csv").open() as fh:
        assert {row["generator_weights"] for row in csv.DictReader(fh)} == {"ema"}


def test_ema_off_stores_no_copy_and_samples_raw(tmp_path: Path) -> None:
    run = tmp_path / "run"
    api.train(tiny_config(2, **{"train.ema_decay": "0", "sample.n": "2"}), run, quiet=True)
    assert "generator_ema" not in load_checkpoint(run / "checkpoints" / "last.pt")
    out = api.sample(run, out=tmp_path / "raw", quiet=True)
    with (out / "manifest.csv").open() as fh:
        assert {row["generator_weights"] for row in csv.DictReader(fh)} == {"raw"}
