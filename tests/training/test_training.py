"""Training loop: weights move, checkpoints are complete, resume is exact on CPU."""

from pathlib import Path

import pytest
import torch

from synthmed import api
from synthmed.checkpoints import load_checkpoint
from synthmed.config import resolve_config
from synthmed.errors import InputError
from synthmed.models.build import build_model

TINY = [
    "data.train.phantom.n_patients=6",
    "data.train.phantom.size=32",
    "data.patches.size=16",
    "data.patches.per_image=4",
    "model.base_channels=4",
    "model.latent_dim=8",
    "train.batch_size=4",
    "train.n_critic=2",
    "train.device=cpu",
    "train.sample_every=100",
    "train.log_every=1",
]


def tiny_config(steps: int, **extra: str):
    overrides = TINY + [f"train.steps={steps}", "train.checkpoint_every=2"]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return resolve_config({"name": "t"}, preset="demo-gan", overrides=overrides)


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)
    return {
        **{f"g.{k}": v for k, v in state["generator"].items()},
        **{f"d.{k}": v for k, v in state["critic"].items()},
        **{f"ema.{k}": v for k, v in state.get("generator_ema", {}).items()},
    }


def test_two_steps_change_weights_and_log(tmp_path: Path):
    run = tmp_path / "run"
    api.train(tiny_config(2), run, quiet=True)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    torch.manual_seed(0)  # the loop seeds with train.seed before building the model
    initial = build_model(state["model_name"], state["model_kwargs"])
    after = weights(run / "checkpoints" / "last.pt")
    for prefix, net in (("g.", initial.generator), ("d.", initial.critic)):
        before = {f"{prefix}{k}": v for k, v in net.state_dict().items()}
        changed = [
            k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])
        ]
        assert changed, f"two steps must change the {prefix[0]} weights"
        assert all(torch.isfinite(after[k]).all() for k in before)
    assert (run / "config.yaml").is_file() and (run / "split.json").is_file()
    assert (run / "samples" / "real.png").is_file() and (
        run / "samples" / "step_0000002.png"
    ).is_file()
    log_rows = (run / "train_log.csv").read_text().strip().splitlines()
    assert len(log_rows) == 1 + 2
    assert not list(run.rglob("*.tmp*")), "no temporary files may be left behind"


AUGMENTED = {
    "train.diffaugment.policy": "[translation,cutout,color]",
    "train.diffaugment.adaptive": "true",
    "train.lr_schedule": "linear",
}


@pytest.mark.parametrize("extra", [{}, AUGMENTED], ids=["plain", "diffaugment-ada-linear-lr"])
def test_resume_reproduces_next_step_exactly(tmp_path: Path, extra: dict):
    straight = tmp_path / "straight"
    api.train(tiny_config(3, **extra), straight, quiet=True)
    resumed = tmp_path / "resumed"
    api.train(tiny_config(2, **extra), resumed, quiet=True)
    api.train(tiny_config(3, **extra), resumed, resume=True, quiet=True)
    a, b = (
        weights(straight / "checkpoints" / "last.pt"),
        weights(resumed / "checkpoints" / "last.pt"),
    )
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["step"] == 3
    rows = (resumed / "train_log.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3]


def test_existing_run_needs_resume(tmp_path: Path):
    run = tmp_path / "run"
    api.train(tiny_config(1), run, quiet=True)
    with pytest.raises(InputError, match="--resume"):
        api.train(tiny_config(1), run, quiet=True)


def test_resume_refuses_changed_model(tmp_path: Path):
    run = tmp_path / "run"
    api.train(tiny_config(1), run, quiet=True)
    with pytest.raises(InputError, match="differ"):
        api.train(tiny_config(2, **{"model.base_channels": "8"}), run, resume=True, quiet=True)
