"""The one GAN training loop: device, precision, seeds, logging, sample grids, checkpoints.

The method (``synthmed.training.methods``) decides what one step does; this module decides
when to log, save and resume. Resuming from a checkpoint restores weights, optimiser moments
and every RNG state, so on CPU the next step is bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synthmed import __version__, distributed
from synthmed.checkpoints import load_checkpoint, save_checkpoint
from synthmed.config.loading import config_hash, config_to_dict
from synthmed.config.schema import RunConfig, TrainConfig, parse_budget
from synthmed.data.arrays import GanData
from synthmed.data.pairs import decode_pairs, onehot_condition, split_pairs
from synthmed.determinism import seed_everything
from synthmed.devices import resolve_device
from synthmed.errors import InputError
from synthmed.models.base import synthesize_with
from synthmed.models.build import build_model, model_kwargs
from synthmed.progress import stage
from synthmed.report.figures import pair_grid, save_png
from synthmed.training.budget import StepBudget, lr_factor
from synthmed.training.ddp import DDPSwap, seed_global_rng
from synthmed.training.diffaugment import AdaptiveAugmentProbability, CriticAugment
from synthmed.training.ema import GeneratorEMA
from synthmed.training.fast_path import (
    CompileSwap,
    FastPath,
    autocast_context,
    data_channels_last,
    resolve_fast_path,
    to_channels_last,
)
from synthmed.training.methods import METHODS, StepContext
from synthmed.training.module_swap import ModuleSwap
from synthmed.training.tensorboard import TensorBoardLogger

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    checkpoint: Path
    last_losses: dict[str, float]
    steps_per_second: float = 0.0


class _LossLog:
    """CSV loss log whose columns are the method's loss names (fixed by the first row).

    On resume, rows after the checkpoint's step are dropped first, so the log matches an
    uninterrupted run.
    """

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path, self.rows, self.fields = path, [], None
        if resume_step and path.is_file():
            with path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                self.fields = reader.fieldnames
                self.rows = [r for r in reader if int(r["step"]) <= resume_step]
        self.fh = path.open("w", newline="")
        self.writer = None
        if self.fields:
            self._start(self.fields)

    def _start(self, fields) -> None:
        self.writer = csv.DictWriter(self.fh, fieldnames=list(fields), extrasaction="ignore")
        self.writer.writeheader()
        self.writer.writerows(self.rows)

    def write(self, row: dict[str, float]) -> None:
        if self.writer is None:
            self._start(["step", "seconds", *[k for k in row if k not in ("step", "seconds")]])
        self.writer.writerow(row)
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def _payload(
    ctx: StepContext, step: int, cfg: RunConfig, kwargs: dict, data: GanData, extra: dict
) -> dict:
    return {
        "format": "synthmed-checkpoint-1",
        "step": step,
        "model_name": cfg.model.name,
        "model_kwargs": kwargs,
        "num_classes": data.num_classes,
        "generator": ctx.model.generator.state_dict(),
        **({} if ctx.model.critic is None else {"critic": ctx.model.critic.state_dict()}),
        "optimizers": {name: opt.state_dict() for name, opt in ctx.optimizers.items()},
        "rng": ctx.rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "config": config_to_dict(cfg),
        "config_hash": config_hash(cfg),
        "synthmed_version": __version__,
        **extra,
    }


def _extra_state(ema: GeneratorEMA | None, ctx: StepContext, budget: StepBudget | None) -> dict:
    """What the loop adds to a checkpoint beyond the method's state."""
    extra: dict[str, Any] = {"augment": ctx.augment.state_dict() if ctx.augment else {}}
    if ctx.private is not None:  # accountant, noise RNG, projection; record["epsilon"] spent
        extra["privacy"] = ctx.private.state_dict()
    if ema is not None:
        extra["generator_ema"] = ema.state_dict()
    if budget is not None:
        extra["budget_spent_s"] = budget.elapsed()
    return extra


def _restore(ctx: StepContext, state: dict[str, Any], ema: GeneratorEMA | None) -> int:
    ctx.model.generator.load_state_dict(state["generator"])
    if ctx.model.critic is not None:
        ctx.model.critic.load_state_dict(state["critic"])
    # checkpoints written before methods declared their optimisers hold opt_g / opt_d
    saved = state.get("optimizers") or {"g": state.get("opt_g"), "d": state.get("opt_d")}
    for name, opt in ctx.optimizers.items():
        if saved.get(name) is None:
            raise InputError(f"the checkpoint has no state for optimiser '{name}'")
        opt.load_state_dict(saved[name])
    ctx.rng.set_state(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    if ema is not None:
        if "generator_ema" not in state:
            raise InputError("train.ema_decay is set but the checkpoint has no EMA weights")
        ema.load_state_dict(state["generator_ema"])
    if ctx.augment is not None:
        ctx.augment.load_state_dict(state.get("augment", {}))
    if ctx.private is not None:  # the accountant continues: epsilon is not restarted
        ctx.private.load_state_dict(state["privacy"])
    return int(state["step"])


def _check_resume_privacy(ctx: StepContext, state: dict[str, Any]) -> None:
    """A private run resumes only a private checkpoint, and a plain run only a plain one."""
    if (ctx.private is None) != ("privacy" not in state):
        was = "with" if "privacy" in state else "without"
        raise InputError(
            f"--resume: the checkpoint was trained {was} train.privacy; keep that setting "
            "(the critic's layers and the privacy accounting differ)"
        )


def _save(ctx: StepContext, run_dir: Path, step: int, cfg, kwargs, data, extra, keep) -> Path:
    payload = _payload(ctx, step, cfg, kwargs, data, extra)
    last = save_checkpoint(run_dir / "checkpoints" / "last.pt", payload)
    if keep:
        save_checkpoint(run_dir / "checkpoints" / f"step_{step:07d}.pt", payload)
    return last


@dataclass
class _GridInputs:
    """Fixed inputs for the sample grids, so grids from step to step are comparable."""

    z: torch.Tensor | None
    classes: torch.Tensor | None
    condition: torch.Tensor | None

    @classmethod
    def make(cls, model, data: GanData, seed: int, n: int = 16) -> _GridInputs:
        z = None
        if model.latent_dim:
            z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
        classes = torch.arange(n) % model.num_classes if model.needs_classes else None
        condition = None
        if model.needs_condition:
            rows = data.pairs[torch.linspace(0, len(data.pairs) - 1, n).long()]
            condition = onehot_condition(split_pairs(rows, data.image_channels)[1])
        return cls(z, classes, condition)


def _sample_grid(ctx: StepContext, data: GanData, inputs: _GridInputs, path: Path, tb, step, ema):
    generator = None if ema is None else ema.module
    pairs = synthesize_with(ctx.model, generator, *vars(inputs).values())
    images, labels = decode_pairs(pairs, data.image_channels)
    rgb = pair_grid(images.numpy(), labels.numpy(), ncol=8)
    save_png(path, rgb, min_size=512)
    if tb is not None:
        tb.log_image("samples", step, rgb)


def make_augment(
    tcfg: TrainConfig, rng: torch.Generator, shard: tuple[int, int] = (0, 1)
) -> CriticAugment | None:
    """The run's DiffAugment (None when ``train.diffaugment.policy`` is empty); ``shard`` =
    (rank, world_size): each rank augments its slice of the global batch."""
    da = tcfg.diffaugment
    if not da.policy:
        return None
    adaptive = None
    if da.adaptive and tcfg.method == "wgan_gp":
        log.warning(
            "train.diffaugment.adaptive with wgan_gp: a Wasserstein critic's sign is not a "
            "real/fake decision, so the ADA controller will drive p to %g",
            da.p,
        )
    if da.adaptive:  # ADA starts without augmentation and may raise p up to train.diffaugment.p
        adaptive = AdaptiveAugmentProbability(target=da.target, initial=0.0, max_p=da.p)
    return CriticAugment(da.policy, rng, p=da.p, adaptive=adaptive, shard=shard)


def make_selector(cfg: RunConfig, data: GanData, run_dir: Path, model, device, start: int):
    """The run's checkpoint selector (None when ``train.select.every`` is 0, for mask GANs,
    whose samples are label maps the image encoder cannot judge, or without validation data)."""
    scfg = cfg.train.select
    if not scfg.every or model.label_only:
        return None
    from synthmed.training.selection import CheckpointSelector, build_reference, read_curve

    ref = build_reference(cfg, data.splits, run_dir, str(device))
    if ref is None:
        return None
    inputs = _GridInputs.make(model, data, cfg.train.seed + 2, n=scfg.n)
    return CheckpointSelector(cfg, ref, inputs, run_dir, read_curve(run_dir, start))


def _set_lr(ctx: StepContext, tcfg: TrainConfig, lr_of: dict[str, str], factor: float) -> None:
    """Each optimiser at its base learning rate (the config field its method names) x factor."""
    for name, opt in ctx.optimizers.items():
        base = getattr(tcfg, lr_of[name])
        for group in opt.param_groups:
            group["lr"] = base * factor


def train_gan(
    cfg: RunConfig, data: GanData, run_dir: Path, resume: bool = False, quiet: bool = False
) -> TrainResult:
    """Train ``cfg.model`` on ``data`` into ``run_dir`` (checkpoints/, samples/, train_log.csv,
    train_summary.json): ``train.steps`` steps, or as many as ``train.budget`` allows."""
    tcfg = cfg.train
    seed_everything(tcfg.seed)  # the same on every rank: replicas start equal, rngs in step
    device = distributed.local_device(resolve_device(tcfg.device))
    rank, world, main = distributed.rank(), distributed.world_size(), distributed.is_main()
    quiet = quiet or not main
    kwargs = model_kwargs(cfg, data)
    model = distributed.sync_batchnorm(build_model(cfg.model.name, kwargs).to(device), device)
    try:
        method = METHODS.get(tcfg.method)
    except KeyError as exc:
        raise InputError(f"train.method: {exc.args[0]}") from None
    changes = _prepare_private_critic(tcfg, model, len(data.pairs), world, method)
    fast = resolve_fast_path(device, tcfg.fast_path, tcfg.precision)
    _channels_last(model, fast, private=changes is not None)
    try:
        optimizers = method.optimizers(model, tcfg, device)
    except ValueError as exc:  # e.g. an adversarial method for a model without a critic
        raise InputError(
            f"train.method '{tcfg.method}' with model '{cfg.model.name}': {exc}"
        ) from None
    private = None
    if changes is not None:
        from synthmed.training.privacy import build_private_critic

        steps = method.critic_steps(tcfg)
        private = build_private_critic(
            model, optimizers["d"], tcfg, len(data.pairs), steps, changes
        )
        optimizers["d"] = private.optimizer  # DP-SGD: clip per sample, add noise, then Adam
    rng = torch.Generator().manual_seed(tcfg.seed)
    ctx = StepContext(
        model,
        optimizers.get("g"),
        optimizers.get("d"),
        _training_tensor(data.pairs, device, fast),
        rng,
        tcfg,
        device,
        autocast_context(device, fast),
        classes=None if data.classes is None else data.classes.to(device),
        image_channels=data.image_channels,
        augment=make_augment(tcfg, rng, (rank, world)),
        optimizers=optimizers,
        rank=rank,
        world_size=world,
        private=private,
    )
    ema = GeneratorEMA(model.generator, tcfg.ema_decay) if tcfg.ema_decay > 0 else None
    start, spent = 0, 0.0
    if resume:
        state = load_checkpoint(run_dir / "checkpoints" / "last.pt", device)
        _check_resume_privacy(ctx, state)
        start, spent = _restore(ctx, state, ema), float(state.get("budget_spent_s", 0.0))
        log.info("resumed %s at step %d", run_dir, start)
    budget = StepBudget(parse_budget(tcfg.budget), spent) if tcfg.budget else None
    swap = _step_swap(model, ctx, device, world, tcfg.batch_size, fast, method.ddp_modules)
    log.info("fast path on %s: %s", device, fast.describe())
    grid_inputs = _GridInputs.make(model, data, tcfg.seed + 1)
    # rank 0 alone writes: log, TensorBoard, grids, checkpoints, selection, summary
    selector = make_selector(cfg, data, run_dir, model, device, start) if main else None
    loss_log = _LossLog(run_dir / "train_log.csv", start) if main else None
    tb = TensorBoardLogger(run_dir / "tensorboard") if main else None
    t0, losses, step = time.perf_counter(), {}, start
    total: int | None = None if budget else tcfg.steps
    bar_total = int(budget.seconds) if budget else tcfg.steps - start
    try:
        with stage(f"train {cfg.model.name}", bar_total, quiet) as bar:
            shown = int(spent)
            while True:
                step += 1
                if budget is not None:
                    total = _agreed_total(budget.estimate_total(step) or total, device)
                _set_lr(ctx, tcfg, method.lr_of, lr_factor(tcfg.lr_schedule, step, total))
                if world > 1:  # dropout differs per rank, reproducibly (one process: as before)
                    seed_global_rng(tcfg.seed, rank, step)
                with swap:
                    out = method(ctx)
                if ema is not None:
                    ema.update(model.generator, max(1, step - model.ema_start))
                done = _done(budget, step, tcfg.steps, device)
                if step % tcfg.log_every == 0 or done:
                    losses = distributed.mean_losses(_host_losses(out, device), device)
                    if ctx.augment is not None:
                        losses["augment_p"] = ctx.augment.p
                    if main:
                        tb.log_scalars(step, losses)
                        seconds = round(time.perf_counter() - t0, 2)
                        loss_log.write({"step": step, "seconds": seconds, **losses})
                    bar.advance(0, " ".join(f"{k}={v:.3g}" for k, v in list(losses.items())[:2]))
                if main and (step % tcfg.sample_every == 0 or done):
                    path = run_dir / "samples" / f"step_{step:07d}.png"
                    _sample_grid(ctx, data, grid_inputs, path, tb, step, ema)
                if main and step % tcfg.checkpoint_every == 0 and not done:
                    extra = _extra_state(ema, ctx, budget)
                    _save(ctx, run_dir, step, cfg, kwargs, data, extra, keep=True)
                if selector is not None and selector.due(step, done):
                    generator = model.generator if ema is None else ema.module
                    selector.consider(
                        model,
                        generator,
                        data.image_channels,
                        step,
                        lambda path, s=step: save_checkpoint(
                            path,
                            _payload(ctx, s, cfg, kwargs, data, _extra_state(ema, ctx, budget)),
                        ),
                    )
                if budget is not None:
                    now = int(min(budget.elapsed(), budget.seconds))
                    bar.advance(now - shown)
                    shown = now
                else:
                    bar.advance(1)
                if done:
                    break
        last = run_dir / "checkpoints" / "last.pt"
        if main:
            extra = _extra_state(ema, ctx, budget)
            last = _save(ctx, run_dir, step, cfg, kwargs, data, extra, keep=False)
    finally:
        if main:
            loss_log.close()
            tb.close()
    seconds = time.perf_counter() - t0
    rate = (step - start) / seconds if seconds > 0 else 0.0
    nets = [m for m in (model.generator, model.critic) if m is not None]
    identical = distributed.replicas_identical(nets, device)
    if main:
        privacy = None if private is None else private.record()
        _write_summary(run_dir, tcfg, step, start, seconds, rate, world, identical, privacy, fast)
    distributed.barrier()  # every rank returns once the checkpoint and summary exist
    if not identical:
        raise RuntimeError("the ranks' networks differ after training (DDP out of step)")
    return TrainResult(run_dir, step, seconds, last, losses, rate)


def _host_losses(out: dict[str, torch.Tensor], device) -> dict[str, float]:
    """The step's loss tensors as floats in one device-to-host copy (the only host sync of a
    step, made at the logging interval)."""
    if not out:
        return {}
    values = torch.stack([torch.as_tensor(v).detach().double().to(device) for v in out.values()])
    return dict(zip(out, values.tolist(), strict=True))


def _privacy_unit(cfg: RunConfig) -> str:
    """What one DP record is: a training row. With patches an image gives several rows, and
    its (and its patient's) protection follows by group privacy (Dwork & Roth 2014, Thm 2.2)."""
    patches = cfg.data.patches
    if patches is None:
        return "one training row (an image or slice; a patient with k rows: k x epsilon)"
    return (
        f"one training row, a patch: an image gives {patches.per_image} patches, so a whole "
        f"image is protected at up to {patches.per_image} x epsilon (group privacy)"
    )


def _prepare_private_critic(tcfg: TrainConfig, model, n_rows: int, world: int, method):
    """Under ``train.privacy``: refuse what DP-SGD cannot account for, then rebuild the critic
    for per-sample gradients (before its optimiser exists); returns what changed, or None."""
    if tcfg.privacy is None:
        return None
    from synthmed.training.privacy import check_private_run, make_critic_private

    check_private_run(tcfg, n_rows, world, method.critic_steps)
    return make_critic_private(model.critic)


def _channels_last(model, fast: FastPath, private: bool) -> None:
    """NHWC for the 2D networks (fast path); a DP-SGD critic keeps its layout (Opacus'
    per-sample hooks are only tested here in NCHW)."""
    if not fast.channels_last:
        return
    to_channels_last(model.generator)
    if model.critic is not None and not private:
        to_channels_last(model.critic)


def _training_tensor(pairs: torch.Tensor, device, fast: FastPath) -> torch.Tensor:
    """The whole training set, moved to the device once (NHWC with channels_last)."""
    pairs = pairs.to(device)
    return data_channels_last(pairs) if fast.channels_last else pairs


def _step_swap(
    model, ctx: StepContext, device, world: int, batch: int, fast: FastPath, ddp_modules=None
) -> ModuleSwap:
    """What the method's networks are during a step: their DDP versions (world size > 1;
    built after any resume so every rank starts from the checkpoint's weights; the method's
    ``ddp_modules`` when it names them) and/or their compiled versions (fast path; a DP-SGD
    critic stays eager: Opacus hooks its modules)."""
    names = ["generator"] + (["critic"] if "d" in ctx.optimizers else [])
    compiled = tuple(n for n in names if fast.compile and not (n == "critic" and ctx.private))
    if world == 1:
        return CompileSwap(model, list(compiled)) if compiled else ModuleSwap(model, {})
    log.info("global batch %d = %d per rank x %d ranks", batch * world, batch, world)
    if ddp_modules is not None:
        names = ddp_modules(model)
        compiled = tuple(n for n in names if fast.compile)
    return DDPSwap(model, names, device, compiled)


def _agreed_total(total: int | None, device) -> int | None:
    """A budgeted run's estimated total steps (the lr schedule's horizon), rank 0's on all."""
    (value,) = distributed.broadcast_values([-1.0 if total is None else float(total)], device)
    return None if value < 0 else int(value)


def _done(budget: StepBudget | None, step: int, steps: int, device) -> bool:
    """Whether this step is the last; a wall-time budget is rank 0's clock on every rank."""
    if budget is None:
        return step >= steps
    return bool(distributed.broadcast_values([float(budget.exhausted())], device)[0])


def _write_summary(
    run_dir: Path,
    tcfg: TrainConfig,
    step,
    start,
    seconds,
    rate,
    world=1,
    identical=True,
    privacy: dict | None = None,
    fast: FastPath | None = None,
) -> None:
    """``train_summary.json``: the steps a run made and how fast (a budgeted run's steps are
    what repeats it exactly: ``train.steps`` = ``steps`` with no budget), and under
    ``train.privacy`` the accountant's epsilon spent."""
    from synthmed.atomic import write_json

    write_json(
        run_dir / "train_summary.json",
        {
            "steps": step,
            "steps_this_process": step - start,
            "seconds_this_process": round(seconds, 2),
            "steps_per_second": round(rate, 3),
            "world_size": world,
            "batch_size_per_rank": tcfg.batch_size,
            "global_batch_size": tcfg.batch_size * world,
            "replicas_identical": identical,
            "budget": tcfg.budget,
            "lr_schedule": tcfg.lr_schedule,
            "ema_decay": tcfg.ema_decay,
            "diffaugment": tcfg.diffaugment.model_dump(),
            "privacy": privacy,
            "fast_path": (fast or FastPath()).describe(),
        },
    )
