"""Bad data sources (folders, CSV manifests, NPZ archives, symbolic links) and bad run
configs, through ``synthmed train``: one line naming the file or key and the cause, before
training, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.bad_inputs.helpers import (
    SIZE,
    assert_refused,
    folder_data,
    folder_source,
    image_array,
    label_array,
    run_config,
    train_args,
    write_png,
)

# --------------------------------------------------------------------------- folders + links


def folder_symlink_loop(tmp):
    data = folder_data(tmp)
    (data / "images" / "case02.png").unlink()
    (data / "images" / "case02.png").symlink_to("case02.png")
    return run_config(tmp, folder_source(data)), ["case02.png", "symbolic link loop"]


def folder_two_link_loop(tmp):
    data = folder_data(tmp)
    (data / "images" / "case07.png").symlink_to("case08.png")
    (data / "images" / "case08.png").symlink_to("case07.png")
    return run_config(tmp, folder_source(data)), ["case07.png", "symbolic link loop"]


def folder_broken_link(tmp):
    data = folder_data(tmp)
    (data / "labels" / "case01.png").unlink()
    (data / "labels" / "case01.png").symlink_to(tmp / "gone.png")
    return run_config(tmp, folder_source(data)), ["case01.png", "broken symbolic link"]


def folder_duplicate_id(tmp):
    data = folder_data(tmp)
    write_png(data / "images" / "case02_copy.png", image_array(7))
    return run_config(tmp, folder_source(data)), ["duplicate ID '02'", "case02_copy.png"]


def folder_missing_label(tmp):
    data = folder_data(tmp)
    (data / "labels" / "case03.png").unlink()
    return run_config(tmp, folder_source(data)), ["case03.png", "no label for ID '03'"]


def folder_missing_root(tmp):
    source = folder_source(tmp / "nowhere")
    return run_config(tmp, source), ["nowhere", "root folder not found"]


def folder_glob_matches_nothing(tmp):
    data = folder_data(tmp)
    return run_config(tmp, folder_source(data, ".bmp")), ["images/*.bmp", "matched no files"]


def folder_bad_regex(tmp):
    data = folder_data(tmp)
    config = run_config(tmp, folder_source(data, id_regex="case(\\d+"))
    return config, ["id_regex 'case(\\d+'", "not a valid regular expression"]


def folder_name_without_id(tmp):
    data = folder_data(tmp)
    write_png(data / "images" / "caseX.png", image_array(4))
    return run_config(tmp, folder_source(data)), ["caseX.png", "does not match id_regex"]


def folder_mask_wrong_shape(tmp):
    data = folder_data(tmp)
    for k in range(4):
        write_png(data / "masks" / f"case{k:02d}.png", np.full((SIZE, SIZE + k), 255, np.uint8))
    config = run_config(tmp, folder_source(data, mask_glob="masks/*.png"))
    return config, ["case01", "mask", "shape"]


# --------------------------------------------------------------------------- csv


def _csv(tmp: Path, text: str, **extra) -> Path:
    folder_data(tmp)
    path = tmp / "data" / "manifest.csv"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return run_config(tmp, {"kind": "csv", "csv": str(path), **extra})


_ROWS = "".join(f"images/case{k:02d}.png,labels/case{k:02d}.png,{k % 2}\n" for k in range(4))


def csv_ragged_extra_cell(tmp):
    text = "image,label,class\n" + _ROWS + "images/case01.png,labels/case01.png,1,oops\n"
    return _csv(tmp, text), ["manifest.csv", "line 6 has 4 cells", "ragged"]


def csv_ragged_missing_cell(tmp):
    text = "image,label,class\nimages/case00.png,labels/case00.png\n" + _ROWS
    return _csv(tmp, text), ["manifest.csv", "line 2 has 2 cells", "ragged"]


def csv_no_image_column(tmp):
    return _csv(tmp, "picture,label\na.png,b.png\n"), ["manifest.csv", "needs an 'image' column"]


def csv_header_only(tmp):
    return _csv(tmp, "image,label,class\n"), ["manifest.csv", "no rows"]


def csv_negative_class(tmp):
    text = "image,label,class\n" + _ROWS.replace(",1\n", ",-1\n", 1)
    return _csv(tmp, text), ["manifest.csv", "class -1", "0..K-1"]


def csv_unknown_class_name(tmp):
    text = "image,class\n" + "".join(f"images/case{k:02d}.png,benign\n" for k in range(3))
    text += "images/case03.png,malignant\n"
    config = _csv(tmp, text, class_names=["benign", "normal"])
    return config, ["manifest.csv", "['malignant']", "class_names"]


def csv_not_utf8(tmp):
    return _csv(tmp, b"image,label\n\xff\xfe,\xe9\n"), ["manifest.csv", "cannot read CSV"]


def csv_missing_image(tmp):
    text = "image,label\nimages/case00.png,labels/case00.png\nimages/ghost.png,labels/case01.png\n"
    return _csv(tmp, text), ["ghost.png", "file not found"]


def csv_repeated_column(tmp):
    return _csv(tmp, "image,image\na.png,b.png\n"), ["manifest.csv", "repeated column"]


# --------------------------------------------------------------------------- npz


def _npz(tmp: Path, **arrays) -> Path:
    images = np.stack([image_array(k) for k in range(4)])
    base = {"train_images": images, "train_labels": np.array([[0], [1], [0], [1]])}
    path = tmp / "data.npz"
    np.savez(path, **{**base, **arrays})
    return run_config(
        tmp, {"kind": "npz", "npz": str(path), "npz_splits": ["train"]}, image_only=True
    )


def npz_negative_class(tmp):
    config = _npz(tmp, train_labels=np.array([[0], [1], [-1], [1]]))
    return config, ["data.npz", "'train_labels'[2] is -1", "0..K-1"]


def npz_fractional_class(tmp):
    config = _npz(tmp, train_labels=np.array([[0.0], [0.5], [1.0], [1.0]]))
    return config, ["data.npz", "non-integer class"]


def npz_nan_image(tmp):
    images = np.stack([image_array(k) for k in range(4)]).astype(np.float32)
    images[1, 2, 2] = np.nan
    return _npz(tmp, train_images=images), ["data.npz:train_images", "NaN", "(1, 0, 2, 2)"]


def npz_constant_image(tmp):
    images = np.stack([image_array(k) for k in range(4)])
    images[3] = 0
    return _npz(tmp, train_images=images), ["data.npz:train_images[3]", "constant"]


def npz_missing_key(tmp):
    path = tmp / "data.npz"
    np.savez(path, train_images=np.zeros((4, SIZE, SIZE)))
    source = {"kind": "npz", "npz": str(path), "npz_splits": ["train"]}
    return run_config(tmp, source, image_only=True), ["data.npz", "no key train_labels"]


def npz_label_count_mismatch(tmp):
    config = _npz(tmp, train_labels=np.array([[0], [1], [1]]))
    return config, ["data.npz", "'train_labels' has shape (3, 1)"]


def npz_garbage(tmp):
    config = _npz(tmp)
    (tmp / "data.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return config, ["data.npz", "cannot read NPZ"]


def npz_class_beyond_names(tmp):
    images = np.stack([image_array(k) for k in range(4)])
    path = tmp / "data.npz"
    np.savez(path, train_images=images, train_labels=np.array([[0], [1], [2], [1]]))
    source = {"kind": "npz", "npz": str(path), "npz_splits": ["train"], "class_names": ["a", "b"]}
    return run_config(tmp, source, image_only=True), ["data.npz", "class 2", "class_names"]


# --------------------------------------------------------------------------- config


def config_unknown_key(tmp):
    config = run_config(tmp, folder_source(folder_data(tmp)), model={"nmae": "x"})
    return config, ["run.yaml", "model.nmae", "unknown key"]


def config_wrong_type(tmp):
    config = run_config(tmp, folder_source(folder_data(tmp)), train={"steps": "many"})
    return config, ["run.yaml", "train.steps"]


def config_not_utf8(tmp):
    path = tmp / "latin1.yaml"
    path.write_bytes("preset: demo\nname: caf\xe9\n".encode("latin-1"))
    return path, ["latin1.yaml", "not UTF-8", "0xe9"]


def config_invalid_yaml(tmp):
    path = tmp / "broken.yaml"
    path.write_text("preset: demo\ntrain: {steps: 3\n")
    return path, ["broken.yaml", "not valid YAML"]


def config_top_level_list(tmp):
    path = tmp / "list.yaml"
    path.write_text("- preset\n- demo\n")
    return path, ["list.yaml", "mapping at the top level"]


def config_unknown_preset(tmp):
    path = tmp / "p.yaml"
    path.write_text("preset: kossen2099\n")
    return path, ["unknown preset 'kossen2099'", "valid presets"]


def config_is_a_folder(tmp):
    (tmp / "conf.yaml").mkdir()
    return tmp / "conf.yaml", ["conf.yaml", "config file not found"]


def config_patch_larger_than_image(tmp):
    config = run_config(tmp, folder_source(folder_data(tmp)), data={"patches": {"size": 32}})
    return config, ["case00.png", "data.patches.size 32 is larger than this image (16x16"]


def config_batch_larger_than_data(tmp):
    config = run_config(tmp, folder_source(folder_data(tmp)), train={"batch_size": 64})
    return config, ["train.batch_size 64 is larger than the training set (8 rows"]


def config_device_not_a_device(tmp):
    config = run_config(tmp, folder_source(folder_data(tmp)), train={"device": "gpu0"})
    return config, ["train.device", "'gpu0' is not a device name"]


def config_cuda_without_cuda(tmp):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = run_config(tmp, folder_source(folder_data(tmp)), train={"device": "cuda"})
    return config, ["train.device", "CUDA is not available"]


def config_label_threshold_outside_tanh(tmp):
    config = run_config(tmp, folder_source(folder_data(tmp)), sample={"label_threshold": 1.5})
    return config, ["sample.label_threshold"]


CASES = {f.__name__: f for f in [
    folder_symlink_loop, folder_two_link_loop, folder_broken_link, folder_duplicate_id,
    folder_missing_label, folder_missing_root, folder_glob_matches_nothing, folder_bad_regex,
    folder_name_without_id, folder_mask_wrong_shape, csv_ragged_extra_cell,
    csv_ragged_missing_cell, csv_no_image_column, csv_header_only, csv_negative_class,
    csv_unknown_class_name, csv_not_utf8, csv_missing_image, csv_repeated_column,
    npz_negative_class, npz_fractional_class, npz_nan_image, npz_constant_image, npz_missing_key,
    npz_label_count_mismatch, npz_garbage, npz_class_beyond_names, config_unknown_key,
    config_wrong_type, config_not_utf8, config_invalid_yaml, config_top_level_list,
    config_unknown_preset, config_is_a_folder, config_patch_larger_than_image,
    config_batch_larger_than_data, config_device_not_a_device, config_cuda_without_cuda,
    config_label_threshold_outside_tanh,
]}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_source_or_config_is_refused(case, tmp_path, capsys):
    config, needles = CASES[case](tmp_path)
    assert_refused(capsys, tmp_path, train_args(config, tmp_path), *needles)


@pytest.mark.parametrize("kind", ["folders", "csv", "npz"])
def test_the_unbroken_sources_are_accepted(kind, tmp_path):
    """Control: the sources the cases break pass every check before training."""
    if kind == "folders":
        config = run_config(tmp_path, folder_source(folder_data(tmp_path)))
    elif kind == "csv":
        config = _csv(tmp_path, "image,label,class\n" + _ROWS)
    else:
        config = _npz(tmp_path)
    from synthmed.api import _check_training_request
    from synthmed.config import load_run_config
    from synthmed.data.arrays import prepare_gan_data

    cfg, base = load_run_config(config)
    _check_training_request(cfg, prepare_gan_data(cfg.data, base))
    assert label_array(0).max() == 255 and os.path.isfile(config)
