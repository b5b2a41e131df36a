"""train.privacy: DP-SGD on the critic (Opacus), its accounting, and where epsilon is recorded."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from synthmed import api
from synthmed.checkpoints import load_checkpoint
from synthmed.config import resolve_config
from synthmed.errors import InputError
from synthmed.models.build import build_model
from tests.test_presets import smoke_overrides
from tests.training.test_training import tiny_config, weights

pytest.importorskip("opacus")

DP = {"train.privacy.epsilon": "10", "train.privacy.delta": "1e-3", "train.privacy.noise_seed": "0"}

# every adversarial method, at smoke scale; options that read real rows in the generator step
# (refused under DP) switched off
METHOD_PRESETS = {
    "kossen2021-wgan-gp": [],
    "kossen2021-wgan-gp-sn": [],
    "kossen2021-dcgan": [
        "model.options.minibatch_discrimination=false",
        "train.options.feature_matching=false",
    ],
    "fridadar2018-acgan": [],
    "platscher2021-pix2pix": ["train.options.l1_weight=0"],
    "platscher2021-spade": ["train.options.l1_weight=0", "train.options.fm_weight=0"],
}


def dp_preset_config(preset: str, steps: int = 3, epsilon: str = "10"):
    overrides = smoke_overrides(preset) + METHOD_PRESETS[preset]
    overrides += [f"train.steps={steps}", f"train.privacy.epsilon={epsilon}"]
    overrides += ["train.privacy.delta=1e-3", "train.privacy.noise_seed=0"]
    return resolve_config({"name": preset}, preset=preset, quick=True, overrides=overrides)


def summary(run: Path) -> dict:
    return json.loads((run / "train_summary.json").read_text())["privacy"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train.privacy.epsilon", "0"),
        ("train.privacy.epsilon", "-1"),
        ("train.privacy.epsilon", ".nan"),
        ("train.privacy.delta", "0"),
        ("train.privacy.delta", "1"),
        ("train.privacy.max_grad_norm", "0"),
    ],
)
def test_bad_privacy_values_are_refused_in_one_line(key: str, value: str):
    extra = {**DP, key: value}
    with pytest.raises(InputError) as info:
        tiny_config(3, **extra)
    assert key in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"train.budget": "10s"}, "train.steps, not train.budget"),
        ({"train.select.every": "2"}, "train.select.every"),
        (
            {"train.diffaugment.policy": "[translation]", "train.diffaugment.adaptive": "true"},
            "ADA",
        ),
    ],
)
def test_settings_dp_cannot_account_for_are_refused(extra: dict, match: str):
    with pytest.raises(InputError, match=match) as info:
        tiny_config(3, **DP, **extra)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("preset", "extra", "match"),
    [
        ("kossen2021-dcgan", ["train.options.feature_matching=false"], "minibatch"),
        ("kossen2021-dcgan", ["model.options.minibatch_discrimination=false"], "feature_matching"),
        ("platscher2021-pix2pix", ["train.options.l1_weight=10"], "l1_weight"),
        ("diffusion-pairs", [], "no critic"),
        ("platscher2021-mask-gan", [], "mask_stage.train.privacy"),
    ],
)
def test_real_data_outside_the_private_critic_is_refused(tmp_path, preset, extra, match):
    overrides = smoke_overrides(preset) + extra
    overrides += ["train.privacy.epsilon=10", "train.privacy.delta=1e-3"]
    if preset.startswith("diffusion"):
        overrides += ["train.method=diffusion"]
    cfg = resolve_config({"name": preset}, preset=preset, quick=True, overrides=overrides)
    with pytest.raises(InputError, match=match):
        api.train(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists(), "a refused run leaves no folder behind"


def test_delta_must_be_below_one_over_the_training_rows(tmp_path):
    cfg = tiny_config(3, **{**DP, "train.privacy.delta": "0.5"})
    with pytest.raises(InputError, match=r"below 1 / \d+ training rows"):
        api.train(cfg, tmp_path / "run", quiet=True)


@pytest.mark.parametrize("preset", list(METHOD_PRESETS))
def test_dp_run_of_every_adversarial_method_stays_within_epsilon(tmp_path, preset):
    cfg = dp_preset_config(preset)
    run = tmp_path / "run"
    api.train(cfg, run, quiet=True)
    record = summary(run)
    critic_steps = cfg.train.n_critic if preset.startswith(("kossen", "frid")) else 1
    assert record["dp_steps"] == record["planned_dp_steps"] == 3 * critic_steps
    assert 0 < record["epsilon"] <= 10.0 and record["epsilon"] > 9.0  # the whole budget, no more
    assert record["noise_multiplier"] > 0 and record["sampling"] == "poisson"
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["privacy"]["record"]["epsilon"] == record["epsilon"]
    assert not any("running_mean" in k for k in state["critic"]), "no BatchNorm in a DP critic"


def test_batch_norm_becomes_group_norm_and_spectral_norm_a_projection():
    from synthmed.training.privacy import SpectralBound, make_critic_private

    kw = {"image_channels": 1, "label_channels": 1, "spatial_size": [16, 16]}
    model = build_model("dcgan", {**kw, "latent_dim": 8, "base_channels": 4})
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.critic.modules())
    changes = make_critic_private(model.critic)
    assert changes["batch_norm_to_group_norm"] >= 1
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.critic.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.critic.modules())
    sn = build_model("wgan_gp_sn", {**kw, "latent_dim": 8, "base_channels": 4})
    assert make_critic_private(sn.critic)["spectral_norm_removed"]
    with torch.no_grad():
        for p in sn.critic.parameters():
            p.mul_(5.0)  # push every layer far above spectral norm 1
    SpectralBound(sn.critic)
    for m in sn.critic.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            assert torch.linalg.matrix_norm(m.weight.flatten(1), ord=2) <= 1.0 + 1e-3


def _private_critic(epsilon: float, max_grad_norm: float = 1.0, accountant: str = "rdp"):
    from synthmed.config.schema import PrivacyConfig, TrainConfig
    from synthmed.training.privacy import build_private_critic, make_critic_private

    kw = {"image_channels": 1, "label_channels": 1, "spatial_size": [16, 16]}
    model = build_model("wgan_gp", {**kw, "latent_dim": 8, "base_channels": 4})
    changes = make_critic_private(model.critic)
    pcfg = PrivacyConfig(
        epsilon=epsilon,
        delta=1e-3,
        max_grad_norm=max_grad_norm,
        noise_seed=0,
        accountant=accountant,
    )
    tcfg = TrainConfig(batch_size=4, steps=2, n_critic=1, privacy=pcfg)
    opt = torch.optim.Adam(model.critic.parameters(), 1e-4)
    return model, build_private_critic(model, opt, tcfg, 32, 1, changes)


def test_each_row_gradient_is_clipped_before_it_is_summed():
    """No noise (epsilon inf): the averaged gradient of 6 rows with huge losses is bounded by
    6 x C / (2 x batch); unclipped it would be ~1e6 times larger."""
    model, priv = _private_critic(math.inf, max_grad_norm=0.5)
    assert priv.noise_multiplier == 0.0 and priv.record()["epsilon"] == "inf"
    x = torch.randn(6, 2, 16, 16)

    def loss():
        return (1e6 * model.critic(x)).sum(), None

    priv.step(loss)
    params = [p for p in model.critic.parameters() if p.requires_grad]
    assert all(p.grad_sample.shape[0] == 6 for p in params), "one gradient per row"
    per_row = torch.stack([p.grad_sample.flatten(1).norm(dim=1) for p in params]).norm(dim=0)
    assert (per_row > 100).all(), "the rows' raw gradients are far above the clipping bound"
    total = torch.cat([p.grad.flatten() for p in params]).norm()
    assert 0.1 < float(total) <= 6 * 0.5 / (2 * 4) + 1e-6


def test_a_run_without_noise_records_infinite_epsilon_and_reads_its_config_back(tmp_path):
    run = tmp_path / "run"
    api.train(tiny_config(2, **{**DP, "train.privacy.epsilon": ".inf"}), run, quiet=True)
    assert math.isinf(api.load_run_config(run).train.privacy.epsilon)
    record = summary(run)
    assert record["epsilon"] == "inf" and record["noise_multiplier"] == 0.0
    folder = api.sample(run, n=2, device="cpu", quiet=True)
    desc = json.loads((folder / "dataset.json").read_text())["privacy"]
    assert not desc["differentially_private"] and "no guarantee" in desc["statement"]


def test_noise_is_added_at_finite_epsilon():
    model, priv = _private_critic(1.0)
    assert priv.noise_multiplier > 0.5
    x = torch.zeros(1, 2, 16, 16)
    priv.step(lambda: ((model.critic(x) * 0).sum(), None))  # zero gradient: only noise is left
    total = torch.cat([p.grad.flatten() for p in model.critic.parameters()]).norm()
    assert float(total) > 0.0


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_the_accountant_spends_the_planned_budget(accountant: str):
    """Two planned steps (TrainConfig.steps 2, one critic step each): epsilon after both is
    at most the target and close to it; after one it is smaller."""
    model, priv = _private_critic(2.0, accountant=accountant)
    x = torch.randn(3, 2, 16, 16)
    priv.step(lambda: (model.critic(x).sum(), None))
    after_one = priv.epsilon()
    priv.step(lambda: (model.critic(x).sum(), None))
    assert priv.dp_steps == 2 and 0 < after_one < priv.epsilon() <= 2.0 + 1e-6
    assert priv.epsilon() > 1.8


def test_resume_continues_the_accountant_exactly(tmp_path):
    """An interrupted run (its step-2 checkpoint as last.pt) resumed to 3 steps equals the
    straight run: the accountant counts on, noise and Poisson draws continue bit-exactly."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    api.train(tiny_config(3, **DP), straight, quiet=True)
    shutil.copytree(straight, resumed)
    step2 = resumed / "checkpoints" / "step_0000002.pt"
    shutil.copy(step2, resumed / "checkpoints" / "last.pt")
    assert load_checkpoint(step2)["privacy"]["record"]["dp_steps"] == 2 * 2  # n_critic 2
    api.train(tiny_config(3, **DP), resumed, resume=True, quiet=True)
    a, b = summary(straight), summary(resumed)
    assert b["dp_steps"] == a["dp_steps"] == 3 * 2 and b["epsilon"] == a["epsilon"] <= 10
    wa, wb = (
        weights(straight / "checkpoints" / "last.pt"),
        weights(resumed / "checkpoints" / "last.pt"),
    )
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_extending_a_private_run_replans_the_noise_within_epsilon(tmp_path):
    run = tmp_path / "run"
    api.train(tiny_config(2, **{**DP, "train.privacy.epsilon": "20"}), run, quiet=True)
    first = summary(run)
    assert first["epsilon"] <= 20
    api.train(tiny_config(3, **{**DP, "train.privacy.epsilon": "30"}), run, resume=True, quiet=True)
    second = summary(run)
    assert second["dp_steps"] == 3 * 2 and first["epsilon"] < second["epsilon"] <= 30
    with pytest.raises(InputError, match="already spent"):
        cfg = tiny_config(4, **{**DP, "train.privacy.epsilon": "1"})
        api.train(cfg, run, resume=True, quiet=True)


def test_resume_refuses_a_changed_privacy_setting(tmp_path):
    run = tmp_path / "run"
    api.train(tiny_config(2), run, quiet=True)
    with pytest.raises(InputError, match="without train.privacy"):
        api.train(tiny_config(3, **DP), run, resume=True, quiet=True)


def test_epsilon_reaches_dataset_json_card_and_report(tmp_path):
    from synthmed.packaging.package import build_package

    run = tmp_path / "run"
    api.train(tiny_config(3, **DP), run, quiet=True)
    record = summary(run)
    folder = api.sample(run, n=4, device="cpu", quiet=True)
    desc = json.loads((folder / "dataset.json").read_text())["privacy"]
    assert desc["differentially_private"] and desc["epsilon"] == record["epsilon"]
    assert desc["stages"]["generator"]["delta"] == 1e-3
    pkg = build_package(run, name="dp")
    card = json.loads((pkg / "card.json").read_text())
    assert card["differential_privacy"]["epsilon"] == record["epsilon"]
    assert f"epsilon {record['epsilon']} spent" in (pkg / "card.md").read_text()
    assert "<removed" in (pkg / "config.yaml").read_text(), "the noise seed is not shipped"
    from synthmed.report.html import _dp_view

    assert _dp_view(run, folder)["epsilon"] == record["epsilon"]


def test_the_critic_attack_rebuilds_a_private_critic(tmp_path):
    """LOGAN loads the checkpoint's critic: a DP one (here spectral norm removed) must fit."""
    from synthmed.evaluation.inputs import load_inputs
    from synthmed.evaluation.privacy_eval import critic_scores

    run = tmp_path / "run"
    api.train(tiny_config(2, **DP), run, quiet=True)
    assert summary(run)["critic_changes"]["spectral_norm_removed"]
    folder = api.sample(run, n=4, device="cpu", quiet=True)
    inputs = load_inputs(api.load_run_config(run), run, folder)
    scores = critic_scores(inputs)
    assert scores is not None and np.isfinite(scores["members"]).all()


def test_plain_runs_are_marked_not_private(tmp_path):
    run = tmp_path / "run"
    api.train(tiny_config(2), run, quiet=True)
    folder = api.sample(run, n=2, device="cpu", quiet=True)
    desc = json.loads((folder / "dataset.json").read_text())["privacy"]
    assert desc == {
        "differentially_private": False,
        "statement": "trained without differential privacy (train.privacy not set)",
    }
    assert summary(run) is None
