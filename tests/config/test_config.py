"""Config loading: presets, overrides, errors that name the bad key."""

from pathlib import Path

import pytest
import yaml

from synthmed.config import config_hash, list_presets, load_run_config, resolve_config
from synthmed.config.loading import apply_override, dump_yaml, read_run_config
from synthmed.errors import InputError


def test_presets_listed_and_valid():
    names = list_presets()
    assert {"demo", "kossen2021-wgan-gp-sn"} <= set(names)
    for name in names:
        cfg = resolve_config(preset=name)
        assert cfg.preset == name


def test_kossen_preset_holds_paper_settings():
    cfg = resolve_config(preset="kossen2021-wgan-gp-sn")
    assert cfg.model.name == "wgan_gp_sn" and cfg.model.latent_dim == 128
    assert cfg.model.kernel_size == 5 and cfg.data.patches.size == 96
    assert cfg.train.betas == (0.0, 0.9) and cfg.train.lr_g == 1e-4
    assert cfg.train.n_critic == 5 and cfg.train.gp_lambda == 10 and cfg.train.batch_size == 300
    quick = resolve_config(preset="kossen2021-wgan-gp-sn", quick=True)
    assert quick.train.steps < cfg.train.steps and quick.data.patches.size == 32
    assert quick.train.n_critic == 5  # quick keeps the method, changes the scale


def test_unknown_key_is_named(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"preset": "demo", "train": {"stepz": 3}}))
    with pytest.raises(InputError, match=r"train\.stepz.*unknown key"):
        load_run_config(path)


def test_bad_value_is_named():
    with pytest.raises(InputError, match=r"train\.batch_size"):
        resolve_config(preset="demo", overrides=["train.batch_size=0"])


def test_classic_aug_options_are_validated_by_name():
    cfg = resolve_config(
        preset="demo",
        overrides=[
            "evaluate.utility.augment.flip=left-right",
            "evaluate.utility.augment.rot90=false",
        ],
    )
    assert (cfg.evaluate.utility.augment.flip, cfg.evaluate.utility.augment.rot90) == (
        "left-right",
        False,
    )
    with pytest.raises(InputError, match=r"evaluate\.utility\.augment\.flip"):
        resolve_config(preset="demo", overrides=["evaluate.utility.augment.flip=upside-down"])


def test_overrides_parse_yaml_values():
    cfg = resolve_config(preset="demo", overrides=["train.steps=7", "evaluate.utility.seeds=[1,2]"])
    assert cfg.train.steps == 7 and cfg.evaluate.utility.seeds == [1, 2]
    with pytest.raises(InputError, match="key.path=value"):
        apply_override({}, "train.steps")


def test_user_source_of_other_kind_replaces_preset_source(tmp_path: Path):
    user = {"data": {"train": {"kind": "npz", "npz": "x.npz"}}}
    cfg = resolve_config(user, preset="demo")
    assert cfg.data.train.kind == "npz" and cfg.data.train.phantom is None
    assert cfg.data.patches.size == 32  # the rest of the preset's data block still applies


def test_missing_config_file_names_it(tmp_path: Path):
    with pytest.raises(InputError, match="nope.yaml"):
        load_run_config(tmp_path / "nope.yaml")


def test_unknown_preset_lists_valid():
    with pytest.raises(InputError, match="valid presets: .*demo"):
        resolve_config(preset="no-such-paper")


def test_hash_and_yaml_round_trip():
    cfg = resolve_config(preset="demo")
    again = resolve_config(yaml.safe_load(dump_yaml(cfg)))
    assert config_hash(again) == config_hash(cfg)
    assert config_hash(resolve_config(preset="demo", overrides=["train.seed=1"])) != config_hash(
        cfg
    )


def test_run_folder_config_keeps_what_the_run_changed(tmp_path):
    """A saved config is read as it was resolved: the preset is not merged in again, and a
    null (no patches, no lesion ROI) stays null instead of turning into a default."""
    cfg = resolve_config(
        preset="fridadar2018-acgan",
        overrides=["data.preprocess.lesion_roi=null", "data.patches=null"],
    )
    (tmp_path / "config.yaml").write_text(dump_yaml(cfg))
    again = read_run_config(tmp_path)
    assert again.data.preprocess.lesion_roi is None and again.data.patches is None
    assert config_hash(again) == config_hash(cfg)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.preprocess.anatomy={clases: 3}", r"data\.preprocess\.anatomy\.clases.*unknown key"),
        ("data.preprocess.anatomy={classes: 0}", r"data\.preprocess\.anatomy\.classes"),
        ("data.preprocess.anatomy={method: kmeans}", r"data\.preprocess\.anatomy\.method"),
        (
            "data.preprocess.anatomy={classes: 2, names: [a, b, c]}",
            r"data\.preprocess\.anatomy.*3 names for 2 tissue classes",
        ),
        ("data.preprocess.anatomy={classes: 3}", r"data\.preprocess.*label_mode binary or lesion"),
        ("evaluate.label_target=tumour", r"evaluate\.label_target"),
    ],
)
def test_anatomy_settings_are_validated_by_name(override: str, named: str):
    # the shin preset's phantom maps are multiclass: anatomy on top of them is refused
    with pytest.raises(InputError, match=named) as err:
        resolve_config(preset="shin2018-pix2pix", overrides=[override])
    assert "\n" not in str(err.value)


def test_anatomy_on_binary_maps_resolves():
    cfg = resolve_config(
        preset="shin2018-pix2pix",
        overrides=["data.preprocess.label_mode=binary", "data.preprocess.anatomy={classes: 2}"],
    )
    assert cfg.data.preprocess.anatomy.classes == 2
    assert cfg.evaluate.label_target == "auto"
