"""Model selection and early stopping of the shared training loop."""

from __future__ import annotations

import math

import torch
from torch import nn

from synthmed.evaluation.utility.loop import FitOptions, fit


def _toy() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Linear(3, 2), torch.rand(8, 3), torch.randint(0, 2, (8,))


def _scripted(scores: list[float], seen: list[torch.Tensor]):
    """A validation that returns the given scores in turn and records the weights it saw."""
    it = iter(scores)

    def validate(net: nn.Module) -> float:
        seen.append(net.weight.detach().clone())
        return next(it)

    return validate


def test_keeps_best_weights_and_stops_after_patience() -> None:
    model, x, y = _toy()
    seen: list[torch.Tensor] = []
    validate = _scripted([0.1, 0.5, 0.4, 0.5, 0.3, 0.9], seen)
    opts = FitOptions(steps=60, batch_size=4, lr=0.1, val_every=5, patience=3)
    hist = fit(model, x, y, nn.CrossEntropyLoss(), validate, opts, torch.Generator().manual_seed(0))
    # 0.5 at step 10 is not beaten by 0.4, 0.5 (ties do not count), 0.3 -> stop at step 25
    assert hist["steps_run"] == 25 and hist["stopped_early"]
    assert hist["best_step"] == 10 and hist["best_val"] == 0.5
    assert len(seen) == 5 and torch.equal(model.weight, seen[1])
    assert not torch.equal(seen[1], seen[-1])  # training did move the weights


def test_nan_never_counts_as_improvement_and_none_disables_stopping() -> None:
    model, x, y = _toy()
    scores = [math.nan, 0.2, math.nan, math.nan]
    opts = FitOptions(steps=8, batch_size=4, lr=0.1, val_every=2, patience=None)
    hist = fit(model, x, y, nn.CrossEntropyLoss(), _scripted(scores, []), opts,
               torch.Generator().manual_seed(0))  # fmt: skip
    assert hist["steps_run"] == 8 and not hist["stopped_early"] and hist["best_step"] == 4


def test_without_validation_all_steps_run_and_last_weights_stay() -> None:
    model, x, y = _toy()
    opts = FitOptions(steps=7, batch_size=4, lr=0.1, val_every=2, patience=1)
    hist = fit(model, x, y, nn.CrossEntropyLoss(), None, opts, torch.Generator().manual_seed(0))
    assert hist["steps_run"] == 7 and hist["val_curve"] == [] and math.isnan(hist["best_val"])
    assert math.isfinite(hist["final_train_loss"])


def test_min_steps_carries_training_through_an_early_dip() -> None:
    """The LGG failure: a first guess scores best, the next validations dip (the U-Net
    predicts only background), the lesion is learnt later. Patience alone stops in the dip
    and keeps the guess; with min_steps training goes on and keeps the later, better weights."""
    scores = [0.15, 0.0, 0.0, 0.0, 0.6, 0.7, 0.65, 0.6, 0.6, 0.6]
    model, x, y = _toy()
    opts = FitOptions(steps=50, batch_size=4, lr=0.1, val_every=5, patience=3)
    hist = fit(model, x, y, nn.CrossEntropyLoss(), _scripted(scores, []), opts,
               torch.Generator().manual_seed(0))  # fmt: skip
    assert hist["steps_run"] == 20 and hist["best_step"] == 5 and hist["best_val"] == 0.15
    model, x, y = _toy()
    floor = FitOptions(steps=50, batch_size=4, lr=0.1, val_every=5, patience=3, min_steps=25)
    hist = fit(model, x, y, nn.CrossEntropyLoss(), _scripted(scores, []), floor,
               torch.Generator().manual_seed(0))  # fmt: skip
    # past step 25 patience counts as before: 0.7 at step 30, then three without a better one
    assert hist["steps_run"] == 45 and hist["stopped_early"]
    assert hist["best_step"] == 30 and hist["best_val"] == 0.7


def test_draw_batch_forces_foreground_rows_and_keeps_uniform_draws_at_zero() -> None:
    from synthmed.evaluation.utility.loop import draw_batch

    fg = torch.zeros(100, dtype=torch.bool)
    fg[[3, 70]] = True  # two rare lesion rows in a hundred
    plain = FitOptions(steps=1, batch_size=8, lr=0.1, val_every=1)
    # fraction 0: exactly the uniform draws of before (committed results stay reproducible)
    a = draw_batch(100, plain, torch.Generator().manual_seed(4), fg)
    assert torch.equal(a, torch.randint(100, (8,), generator=torch.Generator().manual_seed(4)))
    half = FitOptions(steps=1, batch_size=8, lr=0.1, val_every=1, foreground_fraction=0.5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        idx = draw_batch(100, half, gen, fg)
        assert len(idx) == 8 and fg[idx[:4]].all()
    # no labelled row at all: uniform, not an error
    none = draw_batch(
        100, half, torch.Generator().manual_seed(1), torch.zeros(100, dtype=torch.bool)
    )
    assert len(none) == 8
