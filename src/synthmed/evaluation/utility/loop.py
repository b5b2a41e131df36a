"""The one small training loop behind the utility U-Nets and classifiers.

Random batches from an in-memory tensor, optional on-the-fly augmentation, fused Adam, and
model selection with early stopping on a REAL validation score: the weights kept are those
with the best validation score, and training stops once that score has not improved for
``patience`` validations (so arms with little data do not burn the full step budget), but
never before ``min_steps``: a segmenter of rare lesions often scores its best early guess
before it first predicts only background, and stopping in that dip keeps the guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from synthmed.progress import stage

DEFAULT_PATIENCE = 5

Augment = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class FitOptions:
    """Optimisation budget and model-selection rule.

    Attributes:
        steps: maximum optimiser steps.
        batch_size: rows per step (drawn with replacement).
        lr: Adam learning rate.
        val_every: steps between validations (the last step is always validated).
        patience: validations without improvement before stopping; None never stops early.
        min_steps: no early stop before this step (None: from the first validation).
        foreground_fraction: share of every batch drawn from the rows ``fit`` is told hold
            foreground (nnU-Net forces a third): the rest, and every row when 0, uniformly.
    """

    steps: int
    batch_size: int
    lr: float
    val_every: int
    patience: int | None = DEFAULT_PATIENCE
    min_steps: int | None = None
    foreground_fraction: float = 0.0


def draw_batch(
    n_rows: int, opts: FitOptions, rng: torch.Generator, foreground: torch.Tensor | None
) -> torch.Tensor:
    """Row indices of one batch, with replacement. ``foreground`` (bool per row): the first
    ``round(foreground_fraction * batch_size)`` indices come from its True rows, so rare
    lesions are in every batch and a segmenter does not settle on predicting background
    (uniform draws alone, as before, when the fraction is 0 or no row has foreground)."""
    n_fg = round(opts.foreground_fraction * opts.batch_size)
    rows = foreground.nonzero().flatten() if foreground is not None and n_fg else None
    if rows is None or len(rows) == 0:
        return torch.randint(n_rows, (opts.batch_size,), generator=rng)
    forced = rows[torch.randint(len(rows), (n_fg,), generator=rng)]
    return torch.cat([forced, torch.randint(n_rows, (opts.batch_size - n_fg,), generator=rng)])


def make_adam(model: nn.Module, lr: float, device: str | torch.device) -> torch.optim.Adam:
    """Adam, fused where torch supports it (+7-10% per step on CPU, see PERFORMANCE.md)."""
    fused = torch.device(device).type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=lr, fused=fused)


class _BestKeeper:
    """Keeps the best weights seen at validation and counts validations without improvement."""

    def __init__(self, patience: int | None) -> None:
        self.patience, self.best, self.best_step, self.bad = patience, -math.inf, 0, 0
        self.state: dict[str, torch.Tensor] | None = None
        self.curve: list[list[float]] = []

    def update(self, model: nn.Module, step: int, score: float) -> bool:
        """Record one validation; True when training should stop."""
        self.curve.append([step, score])
        comparable = -math.inf if math.isnan(score) else score
        if self.state is None or comparable > self.best:
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.best, self.best_step, self.bad = comparable, step, 0
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience


def fit(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    validate: Callable[[nn.Module], float] | None,
    opts: FitOptions,
    rng: torch.Generator,
    device: str | torch.device = "cpu",
    augment: Augment | None = None,
    desc: str = "fit",
    quiet: bool = True,
    foreground: torch.Tensor | None = None,
) -> dict[str, object]:
    """Train ``model`` in place and load the weights best on validation.

    Args:
        inputs: (N, C, *spatial) float, kept on the CPU; batches move to ``device``.
        targets: (N, ...) per-row targets (label maps or classes).
        validate: higher is better; NaN counts as "no improvement". None: no model
            selection, all steps run and the last weights are kept.
        rng: the only source of batch and augmentation randomness.
        foreground: (N,) bool, rows with foreground, for ``opts.foreground_fraction``.

    Returns:
        History: ``steps_run``, ``stopped_early``, ``best_step``, ``best_val``,
        ``val_curve`` ([step, score] pairs) and ``final_train_loss``.
    """
    opt = make_adam(model, opts.lr, device)
    keeper, loss, step = _BestKeeper(opts.patience), torch.zeros(()), 0
    with stage(desc, opts.steps, quiet) as bar:
        for step in range(1, opts.steps + 1):
            model.train()
            idx = draw_batch(len(inputs), opts, rng, foreground)
            x, y = inputs[idx], targets[idx]
            if augment is not None:
                x, y = augment(x, y, rng)
            loss = loss_fn(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.advance(1)
            if validate is not None and (step % opts.val_every == 0 or step == opts.steps):
                score = float(validate(model))
                bar.advance(0, f"val {score:.3f}")
                if keeper.update(model, step, score) and step >= (opts.min_steps or 0):
                    break
    if keeper.state is not None:
        model.load_state_dict(keeper.state)
    model.eval()
    return {
        "steps_run": step,
        "stopped_early": step < opts.steps,
        "best_step": keeper.best_step,
        "best_val": keeper.best if math.isfinite(keeper.best) else math.nan,
        "val_curve": keeper.curve,
        "final_train_loss": float(loss.detach()),
    }
