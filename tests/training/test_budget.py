"""Training by wall-time budget: the step estimate, the lr schedule, and the stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthmed import api
from synthmed.config.schema import parse_budget
from synthmed.training.budget import WARMUP_STEPS, StepBudget, lr_factor
from tests.training.test_training import tiny_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_parse_budget_units_and_errors() -> None:
    assert parse_budget("90s") == 90 and parse_budget("20m") == 1200
    assert parse_budget("1.5h") == 5400 and parse_budget("45") == 45
    for bad in ("soon", "-3m", "0s"):
        with pytest.raises(ValueError, match="budget"):
            parse_budget(bad)


def test_estimate_follows_the_measured_speed() -> None:
    clock = FakeClock()
    budget = StepBudget(100.0, clock=clock)
    for step in range(1, WARMUP_STEPS + 1):
        clock.now += 5.0  # slow warm-up steps do not count
        assert budget.estimate_total(step) is None
    for step in range(WARMUP_STEPS + 1, WARMUP_STEPS + 11):
        clock.now += 1.0
        total = budget.estimate_total(step)
    # 35 s spent, 65 s left at 1 step/s
    assert total == WARMUP_STEPS + 10 + 65
    assert not budget.exhausted()
    clock.now = 100.0
    assert budget.exhausted()


def test_resumed_budget_counts_time_already_spent() -> None:
    clock = FakeClock()
    budget = StepBudget(60.0, spent=50.0, clock=clock)
    assert budget.elapsed() == 50.0
    clock.now = 10.0
    assert budget.exhausted()


def test_lr_schedules() -> None:
    assert lr_factor("constant", 50, 100) == 1.0
    assert lr_factor("linear", 40, 100) == 1.0
    assert lr_factor("linear", 76, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 1, 100) == pytest.approx(1.0)
    assert lr_factor("cosine", 51, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 101, 100) == pytest.approx(0.0)
    assert lr_factor("cosine", 10, None) == 1.0  # speed not measured yet
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor("step", 1, 10)


def test_budgeted_run_stops_on_time_and_reports_speed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = tiny_config(10**6, **{"train.budget": "3s", "train.lr_schedule": "cosine"})
    result = api.train(cfg, run, quiet=True)
    summary = json.loads((run / "train_summary.json").read_text())
    assert 1 <= result.steps < 10**6  # stopped by the clock, not by train.steps
    assert 3.0 <= result.seconds < 60  # ran until the budget, and stopped soon after it
    assert summary["steps"] == result.steps and summary["budget"] == "3s"
    assert summary["steps_per_second"] > 0
