"""The export gate of ``synthmed sample``: a copying generator is refused and nothing is
written; the override writes and records itself; an honest generator passes; near-copies are
dropped and counted; the gate can be switched off."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from synthmed import api
from synthmed.data.pipeline import load_splits
from synthmed.errors import InputError
from synthmed.evaluation.gate import GateRefused
from synthmed.evaluation.inputs import real_rows
from synthmed.evaluation.privacy.gate_rules import membership_rule, near_copy_rule
from synthmed.evaluation.privacy.memorization import (
    held_out_flag_rate,
    max_accepted_near_copies,
    near_copy_p_value,
)
from synthmed.sampling import export as sampling_export
from tests.test_cli import run_cli
from tests.training.test_training import tiny_config

N = 24  # samples per call: the training split holds 12 distinct 16x16 patches


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gate") / "run"
    api.train(tiny_config(2), folder, quiet=True)
    return folder


def _training_rows(run_dir: Path):
    config = api.load_run_config(run_dir)
    return real_rows(load_splits(config.data)["train"], config, "segmentation")


def _plant(monkeypatch, images: np.ndarray, labels: np.ndarray, copy_every: int = 1) -> None:
    """Every ``copy_every``-th seed returns a training pair; the others the real generator's."""
    honest = sampling_export.generate_pairs

    def generate(gen, seeds, threshold=0.0, batch_size=64, classes=None, conditions=None):
        out_img, out_lab = honest(gen, seeds, threshold, batch_size, classes, conditions)
        for k, s in enumerate(seeds):
            if s % copy_every == 0:
                out_img[k], out_lab[k] = images[s % len(images)], labels[s % len(images)]
        return out_img, out_lab

    monkeypatch.setattr(sampling_export, "generate_pairs", generate)


def _manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_held_out_level_and_binomial_limit() -> None:
    assert held_out_flag_rate(1, 0.01) == pytest.approx(0.5)  # below the only held-out value
    assert held_out_flag_rate(10_000, 0.01) == pytest.approx(0.01, rel=0.01)
    assert near_copy_p_value(1, 16, 0.01) == pytest.approx(1 - 0.99**16)  # 0.15: no evidence
    allowed = max_accepted_near_copies(16, 0.01, 0.01)
    assert allowed >= 1
    assert near_copy_p_value(allowed, 16, 0.01) >= 0.01 > near_copy_p_value(allowed + 1, 16, 0.01)
    assert max_accepted_near_copies(5, 0.5, 1e-9) == 5  # nothing is surprising enough


def test_rules_small_samples_and_copies() -> None:
    rng = np.random.default_rng(0)
    train, hold = rng.normal(size=(200, 32)), rng.normal(size=(200, 32))
    new = rng.normal(size=(16, 32))
    one_copy = np.concatenate([train[:1], new[1:]])
    verdict, mask = near_copy_rule(one_copy, train, hold, 200, 0.01, 0.01, metric="l2")
    assert mask[0] and verdict["n_flagged"] >= 1 and verdict["passed"], verdict
    copies, _ = near_copy_rule(train[:16], train, hold, 200, 0.01, 0.01, metric="l2")
    assert copies["n_flagged"] == 16 and not copies["passed"] and copies["p_value"] < 1e-20
    leak = membership_rule(train[:100], train[:100], hold[:100], 0.6, 0.01, metric="l2")
    assert leak["auc"] == pytest.approx(1.0) and not leak["passed"]
    fresh = membership_rule(new, train[:100], hold[:100], 0.6, 0.01, metric="l2")
    assert fresh["passed"] and fresh["p_value"] > 0.01
    tiny = membership_rule(train[:3], train[:3], hold[:3], 0.6, 0.01, metric="l2")
    assert tiny["auc"] == pytest.approx(1.0) and tiny["passed"], "3 vs 3 rows prove nothing"


def test_copying_generator_is_refused_in_one_line_and_nothing_is_written(
    run, tmp_path, monkeypatch, capsys
) -> None:
    earlier = api.sample(run, n=2, out=tmp_path / "earlier", device="cpu", quiet=True)
    before = {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()}
    real = _training_rows(run)
    _plant(monkeypatch, real.images, real.labels)
    out = tmp_path / "refused"
    with pytest.raises(GateRefused) as info:
        api.sample(run, n=N, out=out, device="cpu", quiet=True)
    assert f"near-copy rate 1 ({N}/{N}) > limit" in str(info.value)
    assert info.value.record["near_copies"]["n_flagged"] == N
    assert not out.exists(), "a refused dataset leaves no folder"
    assert [p.name for p in tmp_path.iterdir()] == ["earlier"], "and no temporary folder"

    code, _, err = run_cli(monkeypatch, capsys, "sample", str(run), "--n", str(N), "--out",
                           str(earlier), "--device", "cpu", "--quiet")  # fmt: skip
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: sample: refused by the export gate: near-copy rate 1")
    assert "held-out level" in lines[0] and "--allow-privacy-risk" in lines[0]
    after = {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()}
    assert after == before, "the earlier dataset in --out must be untouched"


def test_override_writes_drops_and_records_it(run, tmp_path, monkeypatch, capsys) -> None:
    real = _training_rows(run)
    _plant(monkeypatch, real.images, real.labels, copy_every=2)  # half the samples copy
    with pytest.raises(GateRefused, match="near-copy rate 0.5 "):
        api.sample(run, n=N, out=tmp_path / "no", device="cpu", quiet=True)
    reason = "internal test set, never shared; approved by the data steward"
    out = tmp_path / "yes"
    code, stdout, err = run_cli(monkeypatch, capsys, "sample", str(run), "--n", str(N), "--out",
                                str(out), "--allow-privacy-risk", reason, "--device", "cpu",
                                "--quiet")  # fmt: skip
    assert code == 0, err
    assert f"override: {reason}" in stdout
    gate = json.loads((out / "gate.json").read_text())
    assert gate["decision"] == "overridden" and gate["allow_privacy_risk"] == reason
    assert gate["failed_rules"] == ["near_copy_rate"]
    dropped = {int(d["seed"]) for d in gate["dropped"]}
    assert set(range(0, N, 2)) <= dropped and gate["n_dropped"] == len(dropped)
    rows = _manifest(out)
    assert len(rows) == N - len(dropped) == gate["n_after"]
    assert not dropped & {int(r["seed"]) for r in rows}
    assert all(r["export_gate"] == f"overridden: {reason}" for r in rows)
    assert all(r["near_copy_filtering"].startswith("applied: threshold=") for r in rows)
    assert len(list((out / "images").iterdir())) == len(rows), "dropped files are deleted"
    desc = json.loads((out / "dataset.json").read_text())
    assert (
        desc["export_gate"]["allow_privacy_risk"] == reason and "dropped" not in desc["export_gate"]
    )

    from synthmed.export import export_dataset

    exported = export_dataset(out, "nifti", tmp_path / "nifti", run_dir=run, quiet=True)
    provenance = json.loads((exported / "export.json").read_text())
    assert provenance["export_gate"]["decision"] == "overridden"
    assert provenance["export_gate"]["allow_privacy_risk"] == reason


def test_honest_generator_passes(run, tmp_path, monkeypatch) -> None:
    """New real patients (another phantom draw) are as far from training as held-out ones:
    the gate must let them through, with at most a held-out level of near-copies."""
    other = tiny_config(2, **{"data.train.phantom.seed": "7"})
    fresh = real_rows(load_splits(other.data)["train"], other, "segmentation")
    _plant(monkeypatch, fresh.images, fresh.labels)
    out = api.sample(run, n=N, out=tmp_path / "honest", device="cpu", quiet=True)
    gate = json.loads((out / "gate.json").read_text())
    assert gate["decision"] == "passed" and gate["failed_rules"] == []
    near = gate["near_copies"]
    assert near["n_flagged"] <= near["limit_count"] and near["p_value"] >= 0.01
    assert gate["membership"]["auc"] < 0.9
    assert all(r["export_gate"] == "passed" for r in _manifest(out))


def test_gate_off_by_config_and_bad_reason(tmp_path, monkeypatch) -> None:
    run = tmp_path / "off"
    api.train(tiny_config(2, **{"sample.gate.enabled": "false"}), run, quiet=True)
    real = _training_rows(run)
    _plant(monkeypatch, real.images, real.labels)
    out = api.sample(run, n=N, out=tmp_path / "copies", device="cpu", quiet=True)
    rows = _manifest(out)
    assert len(rows) == N and all(r["export_gate"] == "disabled" for r in rows)
    assert json.loads((out / "gate.json").read_text())["decision"] == "disabled"
    with pytest.raises(InputError, match="needs a reason"):
        api.sample(run, n=2, out=tmp_path / "x", allow_privacy_risk="  ", quiet=True)
    with pytest.raises(InputError, match="reason"):
        tiny_config(2, **{"sample.gate.allow_privacy_risk": "''"})


def test_run_without_held_out_rows(tmp_path) -> None:
    run = tmp_path / "noheld"
    cfg = tiny_config(2, **{"data.split.val_fraction": "0", "data.split.test_fraction": "0"})
    api.train(cfg, run, quiet=True)
    with pytest.raises(InputError, match="export gate cannot check this run.*held-out"):
        api.sample(run, n=2, out=tmp_path / "a", device="cpu", quiet=True)
    assert not (tmp_path / "a").exists()
    out = api.sample(run, n=2, out=tmp_path / "b", allow_privacy_risk="phantoms", quiet=True)
    gate = json.loads((out / "gate.json").read_text())
    assert gate["decision"] == "overridden" and gate["checked"] is False
    assert _manifest(out)[0]["export_gate"] == "overridden (not checked): phantoms"


def test_audit_only_keeps_everything_and_export_refuses_it(run, tmp_path, monkeypatch) -> None:
    """The reproduction runner's mode: every sample kept, the verdict recorded, and the
    folder cannot be exported without an override."""
    from synthmed.export import export_dataset

    real = _training_rows(run)
    _plant(monkeypatch, real.images, real.labels)
    out = api.sample(run, n=N, out=tmp_path / "audit", device="cpu", quiet=True, audit_only=True)
    gate = json.loads((out / "gate.json").read_text())
    # nothing dropped, so the copies also hand GAN-Leaks the training rows
    assert gate["decision"] == "audit only"
    assert gate["failed_rules"] == ["near_copy_rate", "membership_auc"]
    assert gate["near_copies"]["n_flagged"] == N and gate["n_dropped"] == 0
    assert gate["refusal"].startswith(f"near-copy rate 1 ({N}/{N}) > limit")
    assert len(_manifest(out)) == N
    with pytest.raises(InputError, match="sampled for evaluation only.*near-copy rate 1") as info:
        export_dataset(out, "nifti", tmp_path / "nifti", run_dir=run, quiet=True)
    assert "\n" not in str(info.value) and not (tmp_path / "nifti").exists()
    folder = export_dataset(
        out, "nifti", tmp_path / "nifti", run_dir=run, quiet=True, allow_privacy_risk="audit"
    )
    recorded = json.loads((folder / "export.json").read_text())["export_gate"]
    assert recorded["decision"] == "audit only" and recorded["export_allow_privacy_risk"] == "audit"
