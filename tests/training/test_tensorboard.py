"""Optional TensorBoard logger: event files when installed, a quiet no-op otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from synthmed.training.tensorboard import TensorBoardLogger


def test_event_file_holds_scalars_images_and_metrics(tmp_path: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TensorBoardLogger(tmp_path / "tb") as tb:
        assert tb.enabled
        tb.log_scalars(1, {"loss_d": -1.5, "loss_g": 0.25})
        tb.log_scalars(2, {"loss_d": -1.0, "loss_g": 0.5})
        tb.log_image("samples", 2, np.zeros((8, 8, 3), np.uint8))
        tb.log_metrics({"utility": {"dice": 0.7, "ok": True, "note": "x"}})
    [event_file] = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(event_file)).Reload()
    assert [e.value for e in acc.Scalars("train/loss_g")] == [0.25, 0.5]
    assert acc.Scalars("metrics/utility/dice")[0].value == pytest.approx(0.7)
    assert acc.Tags()["images"] == ["samples"]


def test_without_tensorboard_it_is_a_no_op(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails
    with caplog.at_level("INFO"):
        tb = TensorBoardLogger(tmp_path / "tb")
    assert not tb.enabled and "not installed" in caplog.text
    tb.log_scalars(1, {"loss": 1.0})
    tb.log_image("x", 1, np.zeros((4, 4), np.uint8))
    tb.log_metrics({"a": 1.0})
    tb.close()
    assert not (tmp_path / "tb").exists()
