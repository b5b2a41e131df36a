"""The GPU fast path (train.fast_path): resolution per device, and the CPU-checkable paths."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from synthmed import api
from synthmed.checkpoints import load_checkpoint
from synthmed.config.schema import FastPathConfig
from synthmed.training import methods
from synthmed.training.fast_path import (
    CompileSwap,
    FastPath,
    data_channels_last,
    resolve_fast_path,
    to_channels_last,
)
from tests.training.test_training import tiny_config, weights

OLD_PATH = {  # what training did before the fast path existed (fused Adam on CPU and CUDA)
    "train.fast_path.autocast": "off",
    "train.fast_path.channels_last": "off",
    "train.fast_path.compile": "off",
    "train.fast_path.fused_adam": "on",
}


def test_auto_is_on_for_cuda_and_off_for_cpu_except_fused_adam():
    assert resolve_fast_path("cpu") == FastPath(fused_adam=True)
    assert resolve_fast_path(torch.device("cuda", 1)) == FastPath(True, True, True, True)
    assert resolve_fast_path("mps") == FastPath()  # no fused Adam kernels assumed there


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_explicit_settings_win_on_every_device(device):
    on = FastPathConfig(autocast="bf16", channels_last="on", compile="on", fused_adam="on")
    off = {"autocast": "off", "channels_last": "off", "compile": "off", "fused_adam": "off"}
    assert resolve_fast_path(device, on) == FastPath(True, True, True, True)
    assert resolve_fast_path(device, off) == FastPath()
    mixed = resolve_fast_path(device, {"compile": "off", "channels_last": "on"})
    assert (mixed.compile, mixed.channels_last) == (False, True)
    assert mixed.autocast == (device == "cuda")


def test_precision_bf16_on_cpu_still_warns_and_trains_in_fp32(caplog):
    with caplog.at_level(logging.WARNING):
        fast = resolve_fast_path("cpu", None, precision="bf16")
    assert not fast.autocast and "fp32 instead" in caplog.text
    assert resolve_fast_path("cuda", None, precision="bf16").autocast
    assert FastPath(autocast=True).describe()["autocast"] == "bf16"


def _losses(run: Path) -> list[dict[str, str]]:
    with (run / "train_log.csv").open(newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def _float_losses(run: Path) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items()} for row in _losses(run)]


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fast") / "auto"
    api.train(tiny_config(2), run, quiet=True)
    return run


def test_auto_on_cpu_changes_nothing(auto_run: Path, tmp_path: Path):
    old = tmp_path / "old"
    api.train(tiny_config(2, **OLD_PATH), old, quiet=True)
    assert _losses(auto_run) == _losses(old)  # the CSV's text: bit for bit
    a, b = weights(auto_run / "checkpoints" / "last.pt"), weights(old / "checkpoints" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    summary = json.loads((auto_run / "train_summary.json").read_text())
    assert summary["fast_path"] == {
        "autocast": "off",
        "channels_last": False,
        "compile": False,
        "fused_adam": True,
    }


def test_everything_off_matches_auto_within_tolerance(auto_run: Path, tmp_path: Path):
    off = tmp_path / "off"
    api.train(tiny_config(2, **{**OLD_PATH, "train.fast_path.fused_adam": "off"}), off, quiet=True)
    for ra, rb in zip(_float_losses(auto_run), _float_losses(off), strict=True):
        assert ra == pytest.approx(rb, rel=1e-4, abs=1e-5)


def test_channels_last_on_cpu_trains_like_nchw(auto_run: Path, tmp_path: Path):
    nhwc = tmp_path / "nhwc"
    api.train(tiny_config(2, **{"train.fast_path.channels_last": "on"}), nhwc, quiet=True)
    for ra, rb in zip(_float_losses(auto_run), _float_losses(nhwc), strict=True):
        assert ra == pytest.approx(rb, rel=1e-3, abs=1e-4)
    a, b = weights(auto_run / "checkpoints" / "last.pt"), weights(nhwc / "checkpoints" / "last.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)
    assert json.loads((nhwc / "train_summary.json").read_text())["fast_path"]["channels_last"]


def test_channels_last_converts_4d_weights_and_data_only():
    net = to_channels_last(nn.Sequential(nn.Conv2d(2, 4, 3), nn.Conv3d(4, 4, 1)))
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert net[1].weight.is_contiguous()  # 5D: left as it is
    assert data_channels_last(torch.zeros(3, 2, 8, 8)).is_contiguous(
        memory_format=torch.channels_last
    )
    volume = torch.zeros(3, 2, 4, 4, 4)
    assert data_channels_last(volume) is volume


def test_bf16_autocast_on_cpu_runs_with_the_penalty_in_fp32(tmp_path: Path, monkeypatch):
    seen = []
    penalty = methods.gradient_penalty

    def spy(critic, real, fake, alpha=None):
        scores = critic(real[:1])
        seen.append((real.dtype, fake.dtype, scores.dtype, torch.is_autocast_enabled("cpu")))
        return penalty(critic, real, fake, alpha=alpha)

    monkeypatch.setattr(methods, "gradient_penalty", spy)
    run = tmp_path / "bf16"
    api.train(tiny_config(1, **{"train.fast_path.autocast": "bf16"}), run, quiet=True)
    assert seen and all(s == (torch.float32,) * 3 + (False,) for s in seen)
    rows = _float_losses(run)
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in rows)
    assert json.loads((run / "train_summary.json").read_text())["fast_path"]["autocast"] == "bf16"


def test_eager_unwraps_compiled_modules_without_compiling():
    net = nn.Linear(2, 1)
    wrapper = torch.compile(net)  # compiles lazily: nothing is compiled until called
    assert methods.eager(wrapper) is net and methods.eager(net) is net
    model = nn.Module()
    model.generator = net
    swap = CompileSwap(model, ["generator"])
    with swap:
        assert model.generator is not net and methods.eager(model.generator) is net
    assert model.generator is net
    assert list(wrapper.parameters())[0] is net.weight  # shared: optimisers and EMA see them


def _compiler_works() -> bool:
    return shutil.which("g++") is not None or shutil.which("cc") is not None


@pytest.mark.slow  # inductor compiles C++ kernels: about a minute on a 2-core CPU
@pytest.mark.skipif(not _compiler_works(), reason="torch.compile needs a C++ compiler")
def test_compiled_run_trains_and_writes_plain_checkpoints(tmp_path: Path):
    run = tmp_path / "compiled"
    api.train(tiny_config(2, **{"train.fast_path.compile": "on"}), run, quiet=True)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    keys = [*state["generator"], *state["critic"], *state["generator_ema"]]
    assert keys and not any("_orig_mod" in k for k in keys)
    assert json.loads((run / "train_summary.json").read_text())["fast_path"]["compile"]
    api.train(tiny_config(3), run, resume=True, quiet=True)  # loads without compile
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3


def test_compile_swaps_the_trained_networks_but_never_a_private_critic():
    from types import SimpleNamespace

    from synthmed.training.loop import _step_swap

    model = nn.Module()
    model.generator, model.critic = nn.Linear(2, 2), nn.Linear(2, 1)
    ctx = SimpleNamespace(optimizers={"g": None, "d": None}, private=None)
    on = FastPath(compile=True)
    assert list(_step_swap(model, ctx, "cpu", 1, 4, on).replacements) == ["generator", "critic"]
    ctx.private = object()  # DP-SGD: Opacus hooks the critic's modules
    assert list(_step_swap(model, ctx, "cpu", 1, 4, on).replacements) == ["generator"]
    assert _step_swap(model, ctx, "cpu", 1, 4, FastPath()).replacements == {}  # no swap
    diffusion = SimpleNamespace(optimizers={"g": None}, private=None)
    assert list(_step_swap(model, diffusion, "cpu", 1, 4, on).replacements) == ["generator"]
