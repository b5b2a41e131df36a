"""``synthmed reproduce NAME --quick``: the smoke version on built-in phantoms, end to end."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from synthmed.checkpoints import load_checkpoint
from synthmed.cli import app
from synthmed.errors import InputError
from synthmed.reproduce import run_experiment, runner
from synthmed.reproduce.spec import REAL_ARM


def test_quick_segmentation_experiment(tmp_path, monkeypatch):
    """Kossen smoke run: baselines trained once per fold and kept when an arm is added."""
    out = tmp_path / "kossen"
    first = run_experiment(
        "kossen2021-drive", out, quick=True, seeds=2, arms=["wgan-gp-sn"], quiet=True
    )
    first_real = [r for r in first["rows"] if r["arm"] == REAL_ARM]
    with pytest.raises(InputError, match="run before; pass --reuse"):
        run_experiment("kossen2021-drive", out, quick=True, seeds=2, quiet=True)
    # adding the DCGAN arm: the stored WGAN-GP-SN evaluation keeps carrying the baselines
    results = run_experiment(
        "kossen2021-drive",
        out,
        quick=True,
        seeds=2,
        arms=["dcgan", "wgan-gp-sn"],
        quiet=True,
        reuse=True,
    )
    assert json.loads((out / "results.json").read_text())["experiment"] == "kossen2021-drive"
    assert (out / "results.md").read_text().startswith("## Kossen-style")
    assert [r["arm"] for r in results["runs"]] == ["dcgan", "wgan-gp-sn"]
    for run in results["runs"]:
        assert (out / run["report"]).is_file() and run["generator_steps"] == 3
    times = results["runs"][1]["wall_times"]
    assert "train_s" not in times and "evaluate_s" not in times  # nothing retrained
    dcgan_metrics = json.loads((out / "fold0" / "dcgan" / "metrics.json").read_text())
    assert "real" not in dcgan_metrics["evaluation"]["utility"]["protocols"]
    rows = results["rows"]
    real_rows = [r for r in rows if r["arm"] == REAL_ARM]
    assert {r["protocol"] for r in real_rows} == {"real", "real+classic-aug"}
    assert len(real_rows) == 2 * 2 * 2  # protocols x sizes (1, all) x seeds: once, not per arm
    assert real_rows == first_real
    assert {(r["arm"], r["protocol"]) for r in rows if r["arm"] != REAL_ARM} == {
        (arm, p)
        for arm in ("dcgan", "wgan-gp-sn")
        for p in ("synthetic-only", "pretrain-synthetic+finetune-real")
    }
    claims = {c["id"]: c for c in results["claims"]}
    assert claims["transfer-one-patient"]["n_pairs"] == 2
    assert claims["transfer-one-patient"]["verdict"] in {"holds", "reversed", "inconclusive"}
    sets = results["synthetic_sets"]
    assert len(sets) == 2 and sets[0]["privacy"]["logan_auc"] is not None
    assert results["scale"].startswith("quick") and results["data"] == "built-in phantoms"

    # an interrupted arm (last.pt at an earlier checkpoint, never sampled) is trained on
    arm_dir = out / "fold0" / "dcgan"
    shutil.copy(arm_dir / "checkpoints" / "step_0000002.pt", arm_dir / "checkpoints" / "last.pt")
    shutil.rmtree(arm_dir / "synthetic")  # sampling writes the folder whole, or not at all
    resumed = run_experiment(
        "kossen2021-drive", out, quick=True, seeds=2, arms=["dcgan"], quiet=True, reuse=True
    )
    assert {"train_s", "sample_s", "evaluate_s"} <= set(resumed["runs"][0]["wall_times"])
    assert load_checkpoint(arm_dir / "checkpoints" / "last.pt")["step"] == 3

    # other evaluation settings: the trained arms are kept, the evaluation is made again
    original = runner.arm_config
    monkeypatch.setattr(
        runner, "arm_config", lambda *a, **k: _with_utility_steps(original(*a, **k))
    )
    changed = run_experiment(
        "kossen2021-drive", out, quick=True, seeds=2, arms=["wgan-gp-sn"], quiet=True, reuse=True
    )
    times = changed["runs"][0]["wall_times"]
    assert "train_s" not in times and "evaluate_s" in times
    stored = json.loads((out / "fold0" / "wgan-gp-sn" / "metrics.json").read_text())
    assert stored["evaluation"]["utility"]["steps"] == 5

    monkeypatch.setattr(runner, "arm_config", lambda *a, **k: _with_steps(original(*a, **k), 99))
    with pytest.raises(InputError, match="trained with other .* settings"):
        run_experiment("kossen2021-drive", out, quick=True, seeds=2, arms=["dcgan"], reuse=True)


def _with_utility_steps(cfg):
    utility = cfg.evaluate.utility.model_copy(update={"steps": 5})
    return cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"utility": utility})})


def _with_steps(cfg, steps):
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps": steps})})


def test_quick_classification_experiment_via_cli(tmp_path):
    """The Frid-Adar experiment (image classes only) through the command line."""
    out, copy = tmp_path / "fa", tmp_path / "bench"
    args = ["reproduce", "fridadar2018-breastmnist", "--quick", "--seeds", "2"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--results", str(copy), "-q"])
    assert result.exit_code == 0, result.output
    assert "dcgan-sensitivity:" in result.output and "results:" in result.output
    results = json.loads((copy / "results.json").read_text())
    assert results["task"] == "classification"
    cells = {(c["arm"], c["protocol"]) for c in results["cells"]}
    assert ("acgan", "real+synthetic:2+classic-aug") in cells
    assert ("dcgan-per-class", "synthetic-only") in cells
    assert ("dcgan-per-class", "real+synthetic:300/class+classic-aug") in cells  # the sweep
    beats = next(c for c in results["claims"] if c["id"] == "dcgan-beats-acgan")
    assert beats["n_pairs"] == 2 and beats["versus_arm"] == "acgan"
    # per-class arms keep their checkpoints in classes/class_K: still recognised as trained
    again = CliRunner().invoke(app, [*args, "--out", str(out), "-q"])
    assert isinstance(again.exception, InputError) and "pass --reuse" in str(again.exception)
    again = CliRunner().invoke(app, [*args, "--out", str(out), "--reuse", "-q"])
    assert again.exit_code == 0, again.output
    rerun = json.loads((out / "results.json").read_text())
    assert all("train_s" not in run["wall_times"] for run in rerun["runs"])
    assert rerun["rows"] == results["rows"]


def test_cli_lists_experiments_and_names_missing_data(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(app, ["reproduce", "--list"])
    assert listed.exit_code == 0 and "shin2018-lgg:" in listed.output
    missing = runner.invoke(
        app,
        ["reproduce", "shin2018-lgg", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")],
    )
    assert missing.exit_code != 0
    assert isinstance(missing.exception, InputError)
    assert "lgg_flair" in str(missing.exception) and "--data-root" in str(missing.exception)


def test_stored_evaluation_without_newer_settings_counts_with_their_defaults(tmp_path):
    """A metrics.json written before a setting existed is not stale when the experiment keeps
    that setting's default, and is stale when the experiment changes it."""
    from synthmed.config.schema import EvaluateConfig
    from synthmed.evaluation.run import evaluation_settings

    wanted = evaluation_settings(EvaluateConfig(utility={"protocols": ["real"]}))
    older = json.loads(json.dumps(wanted))
    del older["utility"]["augment"]  # as written before classic-aug options existed
    older["utility"]["protocols"] = ["real", "synthetic-only"]
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"evaluation": older}))
    assert runner._covers(metrics, wanted)
    changed = evaluation_settings(
        EvaluateConfig(utility={"protocols": ["real"], "augment": {"rot90": False}})
    )
    assert not runner._covers(metrics, changed)
    metrics.write_text(json.dumps({"evaluation": {**older, "unknown_setting": 1}}))
    assert not runner._covers(metrics, wanted)


def test_merge_adds_an_arm_to_committed_results_without_rerunning_baselines(tmp_path):
    """--merge: the committed rows of the other arms and the real-only baselines are kept
    (their run folders may be gone); the new arm evaluates only its synthetic protocols."""
    cli = CliRunner()
    committed = tmp_path / "bench"
    args = ["reproduce", "kossen2021-drive", "--quick", "--seeds", "2", "-q"]
    first = cli.invoke(
        app,
        [*args, "--arm", "wgan-gp-sn", "--out", str(tmp_path / "a"), "--results", str(committed)],
    )
    assert first.exit_code == 0, first.output
    before = json.loads((committed / "results.json").read_text())
    shutil.rmtree(tmp_path / "a")  # the earlier arm's run folder is gone
    added = cli.invoke(
        app,
        [
            *args,
            "--arm",
            "dcgan",
            "--out",
            str(tmp_path / "b"),
            "--results",
            str(committed),
            "--merge",
        ],
    )
    assert added.exit_code == 0, added.output
    merged = json.loads((committed / "results.json").read_text())
    dcgan_metrics = json.loads((tmp_path / "b" / "fold0" / "dcgan" / "metrics.json").read_text())
    assert "real" not in dcgan_metrics["evaluation"]["utility"]["protocols"]
    real = [r for r in merged["rows"] if r["arm"] == REAL_ARM]
    assert real == [r for r in before["rows"] if r["arm"] == REAL_ARM] and real
    assert {r["arm"] for r in merged["rows"]} == {REAL_ARM, "wgan-gp-sn", "dcgan"}
    assert [r["arm"] for r in merged["runs"]] == ["wgan-gp-sn", "dcgan"]
    assert len(merged["synthetic_sets"]) == 2
    assert [p["arms"] for p in merged["parts"]] == [["wgan-gp-sn"], ["dcgan"]]
    assert merged["claims"][0]["n_pairs"] == 2  # the WGAN-GP-SN claim still pairs
    assert "Commands (the results merge these runs)" in (committed / "results.md").read_text()
    # rows of other settings are not paired with these
    refused = cli.invoke(
        app,
        [
            *[a if a != "2" else "3" for a in args],
            "--arm",
            "dcgan",
            "--out",
            str(tmp_path / "c"),
            "--results",
            str(committed),
            "--merge",
        ],
    )
    assert isinstance(refused.exception, InputError) and "seeds" in str(refused.exception)
    assert json.loads((committed / "results.json").read_text()) == merged
    missing = cli.invoke(app, [*args, "--arm", "dcgan", "--out", str(tmp_path / "d"), "--merge"])
    assert isinstance(missing.exception, InputError) and "--results" in str(missing.exception)
