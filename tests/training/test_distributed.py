"""Training under torchrun on CPU (gloo): 2 ranks x batch B train exactly what 1 process with
batch 2B trains, the ranks stay identical, and rank 0 alone writes the run folder."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synthmed import api
from synthmed.checkpoints import load_checkpoint
from synthmed.config.loading import load_run_config
from tests.training.test_training import TINY

DIFFUSION = [
    "model.name=diffusion_pairs",
    "train.method=diffusion",
    "model.options={channels: [4, 8], attention: [false, true], sample_steps: 2}",
]
# WGAN-GP with every DiffAugment op at p = 0.5: each rank augments its slice of the batch
DIFFAUGMENT = ["train.diffaugment.policy=[translation, cutout, color]", "train.diffaugment.p=0.5"]
# latent diffusion: 3 autoencoder steps (the last fits the latent scale), then the U-Net
LATENT = [
    "model.name=diffusion_pairs",
    "train.method=diffusion",
    "model.options={channels: [4, 8], attention: [false, false], sample_steps: 2, "
    "latent: {channels: 2, widths: [4, 8], norm_groups: 4, steps: 3}}",
]
METHODS = {"wgan_gp": [], "diffusion": DIFFUSION, "diffaugment": DIFFAUGMENT, "latent": LATENT}


def _overrides(method: str, steps: int, batch: int) -> list[str]:
    return (
        TINY
        + METHODS[method]
        + [
            f"train.steps={steps}",
            f"train.batch_size={batch}",
            "train.checkpoint_every=100",
        ]
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(run: Path, overrides: list[str], resume: bool = False) -> None:
    """``synthmed train`` in 2 gloo processes (``python -m torch.distributed.run``)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    cmd += ["--master-port", str(_free_port()), "-m", "synthmed", "train", "--preset", "demo-gan"]
    cmd += [a for o in overrides for a in ("--set", o)] + ["--out", str(run), "--quiet"]
    cmd += ["--resume"] if resume else []
    src = str(Path(api.__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _one_process(run: Path, overrides: list[str], resume: bool = False) -> None:
    cfg, _ = load_run_config(None, preset="demo-gan", overrides=overrides)  # as the CLI does
    api.train(cfg, run, resume=resume, quiet=True)


def _log(run: Path) -> list[dict[str, float]]:
    with (run / "train_log.csv").open(newline="") as fh:
        return [{k: float(v) for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def _assert_same_training(a: Path, b: Path) -> None:
    log_a, log_b = _log(a), _log(b)
    assert [r["step"] for r in log_a] == [r["step"] for r in log_b]
    for ra, rb in zip(log_a, log_b, strict=True):
        assert ra.keys() == rb.keys()
        for key in ra:
            expected = pytest.approx(rb[key], rel=1e-4, abs=1e-5, nan_ok=True)
            assert ra[key] == expected, (ra["step"], key)  # NaN: the other latent phase's loss
    sa, sb = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (a, b))
    assert sa["step"] == sb["step"]
    for net in ("generator", "critic"):
        far, total = 0, 0
        for key, value in sa.get(net, {}).items():
            if value.is_floating_point():
                # Adam divides a near-zero gradient (e.g. a zero-initialised conv's bias) by its
                # own size, so summation-order noise can move such a weight by a good part of
                # lr (1.1e-4 = lr / 4.6 seen for one bias of the tiny diffusion U-Net when the
                # two sides ran with different thread counts); a missing gradient sync moves
                # MOST weights by ~lr per step. So: all but 1% of the weights within lr / 5.
                diff = (value.double() - sb[net][key].double()).abs()
                far += int((diff > 1e-4 + 1e-4 * sb[net][key].double().abs()).sum())
                total += diff.numel()
            else:
                assert torch.equal(value, sb[net][key]), key
        assert far <= 0.01 * total, f"{net}: {far} of {total} weights differ by more than lr / 5"


@pytest.mark.parametrize("method", [m for m in METHODS if m != "latent"])
def test_two_ranks_train_what_one_process_with_twice_the_batch_trains(tmp_path, method):
    two, one = tmp_path / "two", tmp_path / "one"
    _torchrun(two, _overrides(method, steps=3, batch=2))
    _one_process(one, _overrides(method, steps=3, batch=4))
    _assert_same_training(two, one)
    summary = json.loads((two / "train_summary.json").read_text())
    assert summary["replicas_identical"] is True  # all ranks' parameters compared bitwise
    assert (summary["world_size"], summary["global_batch_size"]) == (2, 4)
    assert len(_log(two)) == 3  # rank 0 alone logs: one row per step


def test_two_ranks_train_latent_diffusion_as_one_process_with_twice_the_batch(tmp_path):
    """Both phases: the autoencoder (gradients averaged outside DDP, noise sliced from the
    global draw, the latent scale rank 0's) and the U-Net in DDP on the cached latents."""
    two, one = tmp_path / "two", tmp_path / "one"
    _torchrun(two, _overrides("latent", steps=5, batch=2))
    _one_process(one, _overrides("latent", steps=5, batch=4))
    _assert_same_training(two, one)
    summary = json.loads((two / "train_summary.json").read_text())
    assert summary["replicas_identical"] is True  # U-Net and autoencoder, bitwise on both
    gen = load_checkpoint(two / "checkpoints" / "last.pt")["generator"]
    scale = float(load_checkpoint(one / "checkpoints" / "last.pt")["generator"]["codec.scale"])
    assert int(gen["codec.steps_done"]) == 3 and float(gen["codec.scale"]) != 1.0
    assert float(gen["codec.scale"]) == pytest.approx(scale, rel=1e-4)
    log = _log(two)
    assert [r["step"] for r in log if r["loss"] == r["loss"]] == [4.0, 5.0]  # U-Net phase


def test_two_rank_run_resumes_in_one_process(tmp_path):
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    _torchrun(resumed, _overrides("wgan_gp", steps=2, batch=2))
    ckpts = sorted(p.name for p in (resumed / "checkpoints").iterdir())
    assert ckpts == ["last.pt"] and not list(resumed.rglob("*.tmp*"))
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["step"] == 2
    _one_process(resumed, _overrides("wgan_gp", steps=3, batch=4), resume=True)
    _one_process(straight, _overrides("wgan_gp", steps=3, batch=4))
    assert [int(r["step"]) for r in _log(resumed)] == [1, 2, 3]
    _assert_same_training(resumed, straight)


def test_nproc_quick_run_resumes_in_two_processes(tmp_path):
    """``synthmed train --nproc 2 --quick`` end to end on phantoms, then resumed by the same
    command with ``--resume``: it continues from step 2, rank 0 alone writes each log row and
    checkpoint once, and the result is what 1 process with twice the batch trains straight."""
    from tests.torchrun import output, synthmed_cli

    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    for steps, resume in ((2, []), (3, ["--resume"])):
        sets = [a for o in _overrides("wgan_gp", steps, batch=2) for a in ("--set", o)]
        done = synthmed_cli(
            "train", "--preset", "demo-gan", "--quick", *sets, "--out", str(resumed),
            "--nproc", "2", *resume,
        )  # fmt: skip
        assert done.returncode == 0, output(done)
        assert done.stdout.count(f"trained {steps} steps") == 1, output(done)  # rank 0 reports
        assert load_checkpoint(resumed / "checkpoints" / "last.pt")["step"] == steps
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["last.pt"]
    assert not list(resumed.rglob("*.tmp*"))
    assert [int(r["step"]) for r in _log(resumed)] == [1, 2, 3]  # each row written once
    cfg, _ = load_run_config(
        None, preset="demo-gan", quick=True, overrides=_overrides("wgan_gp", 3, batch=4)
    )
    api.train(cfg, straight, quiet=True)
    _assert_same_training(resumed, straight)


def test_torchrun_restart_continues_the_run(tmp_path, monkeypatch):
    """``torchrun --max-restarts K`` runs the failed command again: in a restarted worker a
    run folder with a checkpoint is resumed instead of refused."""
    from synthmed.errors import InputError

    run = tmp_path / "run"
    _one_process(run, _overrides("wgan_gp", steps=2, batch=4))
    with pytest.raises(InputError, match="already holds a trained model"):
        _one_process(run, _overrides("wgan_gp", steps=3, batch=4))
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    _one_process(run, _overrides("wgan_gp", steps=3, batch=4))
    assert [int(r["step"]) for r in _log(run)] == [1, 2, 3]
    fresh = tmp_path / "fresh"  # a restart before the first checkpoint starts from scratch
    _one_process(fresh, _overrides("wgan_gp", steps=1, batch=4))
    assert [int(r["step"]) for r in _log(fresh)] == [1]


# pix2pix: batch-norm U-Net generator with dropout 0.5, its only noise (the global generator)
PIX2PIX = ["model.name=pix2pix", "train.method=pix2pix", "model.options={dropout: 0.5}"]


def test_dropout_differs_per_rank_and_repeats_for_the_same_step():
    from synthmed.training.ddp import seed_global_rng

    def mask(rank: int, step: int) -> torch.Tensor:
        seed_global_rng(5, rank, step)
        return torch.nn.functional.dropout(torch.ones(256), 0.5)

    assert torch.equal(mask(0, 3), mask(0, 3)) and torch.equal(mask(1, 3), mask(1, 3))
    assert not torch.equal(mask(0, 3), mask(1, 3))  # the ranks drop different units
    assert not torch.equal(mask(0, 3), mask(0, 4))  # and new ones each step


def _dropout_worker(rank: int, port: int, run: str, out: str) -> None:
    """One rank of a 2-rank pix2pix run (the environment torchrun sets) that records where
    the generator's dropout layers zeroed their output in each training forward."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
    )  # fmt: skip
    torch.set_num_threads(1)
    dropped, forward = [], torch.nn.Dropout.forward

    def recording(self, x):
        y = forward(self, x)
        if self.training and self.p > 0:  # MONAI blocks hold Dropout(0.0) layers too
            dropped.append(y == 0)  # the inputs (after a norm layer) are never exactly 0
        return y

    torch.nn.Dropout.forward = recording
    overrides = [o for o in _overrides("wgan_gp", 2, batch=2) if o != "train.n_critic=2"]
    _one_process(Path(run), [*overrides, *PIX2PIX])  # joins the process group from the env
    torch.save(dropped, f"{out}.{rank}")


def test_the_ranks_of_a_pix2pix_run_drop_different_units(tmp_path):
    import torch.multiprocessing as mp

    out = str(tmp_path / "dropped")
    mp.spawn(_dropout_worker, args=(_free_port(), str(tmp_path / "run"), out), nprocs=2)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 2 * 2  # 2 dropout layers x 2 steps
    for a, b in zip(*ranks, strict=True):  # every dropout forward of every step
        assert a.shape == b.shape and not torch.equal(a, b)


def test_two_rank_pix2pix_with_dropout_resumes_exactly(tmp_path):
    """Under torchrun the loop seeds the global generator per (seed, rank, step): a 2-rank
    pix2pix run resumed after step 2 ends bit for bit where the straight 2-rank run ends."""
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    overrides = [o for o in _overrides("wgan_gp", 3, batch=2) if not o.startswith("train.steps")]
    _torchrun(resumed, [*overrides, *PIX2PIX, "train.steps=2"])
    _torchrun(resumed, [*overrides, *PIX2PIX, "train.steps=3"], resume=True)
    _torchrun(straight, [*overrides, *PIX2PIX, "train.steps=3"])
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (resumed, straight))
    for net in ("generator", "critic"):
        assert a[net].keys() == b[net].keys()
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    assert [r["step"] for r in _log(resumed)] == [1.0, 2.0, 3.0]
    assert _log(resumed) == _log(straight)
