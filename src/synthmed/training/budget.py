"""Training by wall time: how many steps a budget buys, and the lr schedule over them.

A lab with a laptop or one GPU knows how long it can train, not how many steps that is on its
machine. ``StepBudget`` measures the speed as training goes and keeps an estimate of the total
number of steps, so a step-based learning-rate schedule (``lr_factor``) ends when the time
does instead of being cut off half way.
"""

from __future__ import annotations

import math
import time

WARMUP_STEPS = 5  # first steps are slower (allocator, kernels): not used for the speed


def lr_factor(schedule: str, step: int, total: int | None) -> float:
    """Multiplier of the base learning rate at ``step`` (1-based) of ``total``.

    ``constant``: 1. ``linear``: 1 for the first half, then linearly to 0 at ``total``
    (pix2pix, Isola 2017). ``cosine``: half a cosine from 1 to 0. An unknown ``total`` (the
    first steps of a budgeted run, before its speed is measured) gives 1.
    """
    if schedule == "constant" or not total:
        return 1.0
    progress = min(max((step - 1) / max(total, 1), 0.0), 1.0)
    if schedule == "linear":
        return 1.0 if progress < 0.5 else 2.0 * (1.0 - progress)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr_schedule '{schedule}' (constant, linear, cosine)")


class StepBudget:
    """Wall-time budget of a run; ``spent`` continues from a resumed checkpoint."""

    def __init__(self, seconds: float, spent: float = 0.0, clock=time.perf_counter) -> None:
        self.seconds = float(seconds)
        self.clock = clock
        self.start = clock() - spent
        self._warm: tuple[int, float] | None = None  # (step, time) once warm-up is over

    def elapsed(self) -> float:
        return self.clock() - self.start

    def exhausted(self) -> bool:
        return self.elapsed() >= self.seconds

    def steps_per_second(self, step: int) -> float | None:
        """Measured speed since the end of the warm-up; None before there is one."""
        now = self.clock()
        if self._warm is None:
            if step >= WARMUP_STEPS:
                self._warm = (step, now)
            return None
        done, t0 = step - self._warm[0], now - self._warm[1]
        return done / t0 if done > 0 and t0 > 0 else None

    def estimate_total(self, step: int) -> int | None:
        """Steps the whole budget buys at the measured speed (at least ``step``)."""
        rate = self.steps_per_second(step)
        if rate is None:
            return None
        remaining = max(self.seconds - self.elapsed(), 0.0)
        return max(step, step + int(remaining * rate))
