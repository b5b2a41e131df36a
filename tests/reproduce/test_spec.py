"""Every built-in experiment resolves to valid run configs at every scale, with the data
under the data root and the fold's pinned split file; bad experiment files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthmed.data.splits import load_split
from synthmed.errors import InputError
from synthmed.reproduce import arm_config, list_experiments, read_experiment

EXPERIMENTS = list_experiments()


def test_the_five_papers_have_experiments():
    stems = {name.split("-")[0] for name in EXPERIMENTS}
    assert {"kossen2021", "guibas2017", "shin2018", "platscher2021", "fridadar2018"} <= stems


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_configs_resolve(name, tmp_path):
    spec = read_experiment(name)
    assert spec.seeds >= 3
    for scale in spec.scales:
        for fold in range(len(spec.folds)):
            for arm in spec.arms:
                cfg = arm_config(spec, arm, fold, scale, data_root=tmp_path)
                assert cfg.preset == arm.preset
                where = cfg.data.train.root or cfg.data.train.csv or cfg.data.train.npz
                assert Path(where).is_relative_to(tmp_path)
                split = load_split(cfg.data.split.file)  # packaged, readable, no overlaps
                assert split["train"] and (split["val"] or split["test"])
                assert cfg.data.split.file.name == spec.folds[fold]
    for arm in spec.arms:
        quick = arm_config(spec, arm, quick=True)
        assert quick.data.train.kind == "phantom"
        assert quick.train.steps <= 5 and quick.evaluate.utility.steps <= 5


def test_reduced_scale_differs_from_paper_scale():
    spec = read_experiment("kossen2021-drive")
    arm = next(a for a in spec.arms if a.name == "wgan-gp-sn")
    reduced, paper = (arm_config(spec, arm, scale=s) for s in ("reduced", "paper"))
    assert reduced.data.patches.size == 32 and paper.data.patches.size == 96
    assert reduced.train.steps < paper.train.steps == 27300


def test_busi_folds_partition_the_images():
    spec = read_experiment("fridadar2018-busi")
    tests = [
        set(load_split(arm_config(spec, spec.arms[0], f).data.split.file)["test"]) for f in range(3)
    ]
    assert not (tests[0] & tests[1]) and not (tests[1] & tests[2]) and not (tests[0] & tests[2])
    assert sum(len(t) for t in tests) == 780


def test_unknown_and_invalid_experiments(tmp_path):
    with pytest.raises(InputError, match="unknown experiment 'nope'.*kossen2021-drive"):
        read_experiment("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntitle: t\n")
    with pytest.raises(InputError, match="bad.yaml.*invalid experiment.*key 'paper'"):
        read_experiment(bad)
    with pytest.raises(InputError, match="missing.yaml: experiment file not found"):
        read_experiment(tmp_path / "missing.yaml")
    spec = read_experiment("kossen2021-drive")
    with pytest.raises(InputError, match="no scale 'huge'"):
        arm_config(spec, spec.arms[0], scale="huge")
