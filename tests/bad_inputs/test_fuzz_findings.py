"""Regression cases for what benchmarks/fuzz_readers.py and benchmarks/bad_inputs_probe.py
found: each crashed the loading path with an untyped error (or an error naming no file)
before it was fixed; now ``synthmed train`` refuses it in one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bad_inputs.helpers import (
    SIZE,
    assert_refused,
    image_array,
    train_args,
    write_npy,
    write_png,
)
from tests.bad_inputs.test_readers import _case, _series
from tests.bad_inputs.test_sources import _ROWS, _csv, _npz


def csv_class_too_large(tmp):
    text = "image,label,class\n" + _ROWS.replace(",1\n", ",100000000000000000000\n", 1)
    return _csv(tmp, text), ["manifest.csv", "class 100000000000000000000", "0..K-1"]


def csv_file_name_too_long(tmp):
    text = "image,label,class\n" + _ROWS + "images/" + "a" * 300 + ".png,,1\n"
    return _csv(tmp, text), ["aaaa.png", "cannot open", "File name too long"]


def csv_empty_image_cell(tmp):
    text = "image,label,class\n" + _ROWS + ",labels/case00.png,1\n"
    return _csv(tmp, text), ["manifest.csv", "line 6", "empty 'image' cell"]


def npz_no_labels(tmp):
    config = _npz(tmp, train_labels=np.zeros((0,), np.int64))
    return config, ["data.npz", "'train_labels' has shape (0,)", "one numeric class per image"]


def npz_class_too_large(tmp):
    config = _npz(tmp, train_labels=np.array([[0], [1], [2**62], [1]]))
    return config, ["data.npz", "'train_labels'[2]", "below 65536"]


def npz_text_images(tmp):
    config = _npz(tmp, train_images=np.full((4, SIZE, SIZE), "ab"))
    return config, ["data.npz", "'train_images'", "expected numeric images"]


def npy_text_pixels(tmp):
    config, bad = _case(tmp, ".npy")
    write_npy(bad, np.full((SIZE, SIZE), "ab"))
    return config, [bad.name, "pixels of type <U2 are not real numbers"]


def npy_record_pixels(tmp):
    config, bad = _case(tmp, ".npy")
    write_npy(bad, np.zeros((SIZE, SIZE), dtype=[("a", "f4"), ("b", "i2")]))
    return config, [bad.name, "are not real numbers"]


def png_colour_among_grey(tmp):
    config, bad = _case(tmp, ".png")
    write_png(bad, np.stack([image_array(k) for k in range(3)], axis=-1))
    return config, [bad.name, "3 channels", "case00.png has 1", "data.preprocess.channels"]


def series_one_slice_unreadable(tmp):
    config, bad = _series(tmp)
    (bad / "s1.dcm").write_bytes(b"not DICOM")
    return config, ["case01", "image shape (1, 1, 16, 16) differs from (1, 2, 16, 16)"]


def config_nested_too_deeply(tmp):
    path = tmp / "deep.yaml"
    path.write_text("preset: demo\nname: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n")
    return path, ["deep.yaml", "nested too deeply"]


CASES = {f.__name__: f for f in [
    csv_class_too_large, csv_file_name_too_long, csv_empty_image_cell, npz_no_labels,
    npz_class_too_large, npz_text_images, npy_text_pixels, npy_record_pixels,
    png_colour_among_grey, series_one_slice_unreadable, config_nested_too_deeply,
]}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_fuzz_finding_is_refused(case, tmp_path, capsys):
    config, needles = CASES[case](tmp_path)
    assert_refused(capsys, tmp_path, train_args(config, tmp_path), *needles)


def test_library_message_becomes_one_line(tmp_path):
    """nibabel's "Expected N bytes ...\\n - could the file be damaged?" stays on one line."""
    from synthmed.data.readers import read_image
    from synthmed.errors import InputError
    from tests.bad_inputs.helpers import write_nifti

    path = write_nifti(tmp_path / "a.nii", image_array(0))
    raw = bytearray(path.read_bytes())
    raw[70:72] = (64).to_bytes(2, "little")  # datatype float64: 8x the bytes the file holds
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError) as info:
        read_image(path)
    assert "\n" not in str(info.value) and "a.nii" in str(info.value)


@pytest.mark.parametrize("value", ["2", "0", "nan"])
def test_sample_quantile_outside_zero_one(value, run_copy, tmp_path, capsys):
    """``--quantile`` was checked by the near-copy filter only, after the export gate and
    sampling had run; now it is refused before anything runs."""
    args = ["sample", run_copy, "--device", "cpu", "-q", "--out", tmp_path / "s"]
    args += ["--exclude-near-copies", "--quantile", value]
    assert_refused(capsys, tmp_path, args, f"--quantile {float(value):g}", "(0, 1)")


def test_sample_unknown_label_source(run_copy, tmp_path, capsys):
    """Found by the probe: an unknown ``--label-source`` was ignored by a non-translator run
    and the samples written (exit 0)."""
    args = ["sample", run_copy, "--device", "cpu", "-q", "--out", tmp_path / "s"]
    assert_refused(capsys, tmp_path, [*args, "--label-source", "dreams"], "'dreams'", "cascade")


def test_nifti_unknown_datatype_one_line(tmp_path, capsys):
    """Found by the probe: nibabel logged the bad datatype code itself, twice, above the
    error line."""
    config, bad = _case(tmp_path, ".nii")
    raw = bytearray(bad.read_bytes())
    raw[70:72] = (999).to_bytes(2, "little")
    bad.write_bytes(bytes(raw))
    assert_refused(capsys, tmp_path, train_args(config, tmp_path), bad.name, "data code 999")


@pytest.mark.parametrize("slope", [b"\0\0\x80\x7f", b"\0\0\x80\xff"], ids=["inf", "-inf"])
def test_nifti_infinite_scaling_refused(tmp_path, capsys, slope):
    """Found by the probe: nibabel reads an infinite scl_slope as "no scaling", so the run
    trained on the file as if its header were fine. (A NaN slope is nibabel's own default
    for "unscaled", written by nibabel itself, and stays accepted.)"""
    config, bad = _case(tmp_path, ".nii")
    raw = bytearray(bad.read_bytes())
    raw[112:116] = slope
    bad.write_bytes(bytes(raw))
    assert_refused(capsys, tmp_path, train_args(config, tmp_path), bad.name, "scl_slope")


def test_symlink_loop_in_the_data_folder_refused(tmp_path, capsys):
    """Found by the probe: glob skipped a looping link under the images folder in silence."""
    from tests.bad_inputs import helpers

    data = helpers.folder_data(tmp_path)
    (data / "images" / "loopdir").symlink_to("loopdir")
    config = helpers.run_config(tmp_path, helpers.folder_source(data, image_glob="images/**/*.png"))
    assert_refused(capsys, tmp_path, train_args(config, tmp_path), "loopdir", "loop")
