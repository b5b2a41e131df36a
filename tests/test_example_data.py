"""The example data files for ../shared/data: each resolves with its presets and loads.

Skipped when ../shared/data is absent (CI machines without it still pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from synthmed.config import load_run_config
from synthmed.data.pipeline import load_splits

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "examples" / "data"

PAIRS = [
    ("drive_patches.yaml", "kossen2021-wgan-gp-sn", "drive"),
    ("drive_whole.yaml", "guibas2017-dual-gan", "drive"),
    ("lgg_flair.yaml", "shin2018-pix2pix", "lgg_flair"),
    ("lgg_flair_anatomy.yaml", "platscher2021-spade", "lgg_flair"),
    ("busi.yaml", "fridadar2018-dcgan-per-class", "busi_256"),
    ("breastmnist.yaml", "fridadar2018-acgan", "breastmnist"),
    # the diffusion presets' worked examples (README "Diffusion generators")
    ("drive_patches.yaml", "diffusion-pairs", "drive"),
    ("drive_whole.yaml", "diffusion-dual", "drive"),
    ("lgg_flair_anatomy.yaml", "diffusion-mask-to-image", "lgg_flair"),
    ("busi.yaml", "diffusion-class", "busi_256"),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("data_file", "preset", "folder"), PAIRS)
def test_example_data_file_resolves_and_loads(data_file, preset, folder):
    if not (SHARED / folder).is_dir():
        pytest.skip(f"../shared/data/{folder} is absent")
    cfg, _ = load_run_config(preset=preset, quick=True, data_file=EXAMPLES / data_file)
    assert cfg.data.train.kind != "phantom"
    if folder == "lgg_flair":  # 721 slices: check the description only, not every file
        if cfg.data.preprocess.anatomy is not None:
            assert cfg.data.label_names()[-1] == "tumour" and cfg.evaluate.label_target == "auto"
        return
    splits = load_splits(cfg.data)
    assert all(splits[name] for name in ("train", "val", "test"))
    train_patients = {it.patient_id for it in splits["train"]}
    assert not train_patients & {it.patient_id for it in splits["test"]}
