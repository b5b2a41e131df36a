"""Bad image and label files, one reader at a time (PNG, TIF, GIF, JPEG, NIfTI, DICOM file
and series, NPY), each fed to ``synthmed train``: refused in one line naming the file and the
cause, before training, with nothing written."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.bad_inputs.helpers import (
    SIZE,
    assert_refused,
    folder_data,
    folder_source,
    image_array,
    run_config,
    train_args,
    write_dcm,
    write_nifti,
    write_npy,
    write_png,
    write_tif,
)


def _case(tmp: Path, ending: str, name: str = "case02") -> tuple[Path, Path]:
    """Valid data in ``ending`` and the path of one image to break."""
    data = folder_data(tmp, ending)
    return run_config(tmp, folder_source(data, ending)), data / "images" / f"{name}{ending}"


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not an image file at all" * 4)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _with_nan(array: np.ndarray, value: float = np.nan) -> np.ndarray:
    array = array.astype(np.float32)
    array[3, 5] = value
    return array


def png_not_png(tmp):
    config, bad = _case(tmp, ".png")
    _garbage(bad)
    return config, [bad.name, "cannot read image"]


def png_truncated(tmp):
    config, bad = _case(tmp, ".png")
    _truncate(bad)
    return config, [bad.name, "cannot read image"]


def png_empty_file(tmp):
    config, bad = _case(tmp, ".png")
    bad.write_bytes(b"")
    return config, [bad.name, "cannot read image"]


def png_all_zero_16_bit(tmp):
    config, bad = _case(tmp, ".png")
    write_png(bad, np.zeros((SIZE, SIZE), np.uint16))
    return config, [bad.name, "constant", "every pixel is 0"]


def png_constant_8_bit(tmp):
    config, bad = _case(tmp, ".png")
    write_png(bad, np.full((SIZE, SIZE), 77, np.uint8))
    return config, [bad.name, "constant", "77"]


def png_label_wrong_shape(tmp):
    config, _ = _case(tmp, ".png")
    write_png(tmp / "data" / "labels" / "case01.png", np.zeros((SIZE, SIZE + 3), np.uint8))
    return config, ["case01", "shape"]


def png_label_not_class_values(tmp):
    config, _ = _case(tmp, ".png")
    write_png(tmp / "data" / "labels" / "case03.png", image_array(9))
    return config, ["case03.png", "not class indices", "label_values"]


def png_label_outside_label_values(tmp):
    data = folder_data(tmp)
    label = np.zeros((SIZE, SIZE), np.uint8)
    label[2:6, 2:6] = 128
    write_png(data / "labels" / "case00.png", label)
    config = run_config(tmp, folder_source(data, label_values=[0, 255]))
    return config, ["case00.png", "outside the declared label_values"]


def png_label_unreadable(tmp):
    config, _ = _case(tmp, ".png")
    _garbage(tmp / "data" / "labels" / "case01.png")
    return config, ["case01.png", "cannot read label"]


def tif_garbage(tmp):
    config, bad = _case(tmp, ".tif")
    _garbage(bad)
    return config, [bad.name, "cannot read image"]


def tif_nan(tmp):
    config, bad = _case(tmp, ".tif")
    write_tif(bad, _with_nan(image_array(2)))
    return config, [bad.name, "1 NaN", "(0, 3, 5)"]


def tif_inf(tmp):
    config, bad = _case(tmp, ".tif")
    write_tif(bad, _with_nan(image_array(2), np.inf))
    return config, [bad.name, "1 infinite"]


def tif_constant(tmp):
    config, bad = _case(tmp, ".tif")
    write_tif(bad, np.full((SIZE, SIZE), 3.5, np.float32))
    return config, [bad.name, "constant", "3.5"]


def tif_five_dimensional(tmp):
    config, bad = _case(tmp, ".tif")
    write_tif(bad, np.ones((2, 2, 2, SIZE, SIZE), np.uint8))
    return config, [bad.name, "cannot read image"]


def gif_garbage(tmp):
    config, bad = _case(tmp, ".gif")
    _garbage(bad)
    return config, [bad.name, "cannot read image"]


def gif_constant(tmp):
    config, bad = _case(tmp, ".gif")
    write_png(bad, np.zeros((SIZE, SIZE), np.uint8))
    return config, [bad.name, "constant"]


def jpeg_truncated(tmp):
    config, bad = _case(tmp, ".jpg")
    _truncate(bad)
    return config, [bad.name, "cannot read image"]


def jpeg_constant(tmp):
    config, bad = _case(tmp, ".jpg")
    write_png(bad, np.full((SIZE, SIZE), 200, np.uint8))
    return config, [bad.name, "constant"]


def nifti_nan_voxels(tmp):
    config, bad = _case(tmp, ".nii.gz")
    write_nifti(bad, _with_nan(image_array(2)))
    return config, [bad.name, "NaN"]


def nifti_inf_voxels(tmp):
    config, bad = _case(tmp, ".nii")
    write_nifti(bad, _with_nan(image_array(2), -np.inf))
    return config, [bad.name, "infinite"]


def nifti_gzip_crc(tmp):
    config, bad = _case(tmp, ".nii.gz")
    raw = bytearray(bad.read_bytes())
    raw[-8] ^= 0xFF  # the CRC32 in the gzip trailer; the voxels still decompress
    bad.write_bytes(bytes(raw))
    return config, [bad.name, "corrupt gzip", "CRC"]


def nifti_gzip_truncated(tmp):
    config, bad = _case(tmp, ".nii.gz")
    raw = gzip.decompress(bad.read_bytes())
    bad.write_bytes(gzip.compress(raw)[:-12])
    return config, [bad.name, "corrupt gzip"]


def nifti_garbage(tmp):
    config, bad = _case(tmp, ".nii")
    _garbage(bad)
    return config, [bad.name, "cannot read image"]


def nifti_five_dimensional(tmp):
    config, bad = _case(tmp, ".nii")
    write_nifti(bad, np.ones((2, 2, 2, SIZE, SIZE), np.float32))
    return config, [bad.name, "expected 2 to 4 dimensions"]


def nifti_constant(tmp):
    config, bad = _case(tmp, ".nii.gz")
    write_nifti(bad, np.zeros((SIZE, SIZE), np.float32))
    return config, [bad.name, "constant"]


def nifti_label_nan(tmp):
    data = folder_data(tmp)
    for k in range(4):
        write_nifti(data / "labels" / f"case{k:02d}.nii.gz", np.zeros((SIZE, SIZE), np.float32))
    write_nifti(data / "labels" / "case01.nii.gz", _with_nan(np.zeros((SIZE, SIZE))))
    config = run_config(tmp, folder_source(data, label_glob="labels/*.nii.gz"))
    return config, ["case01.nii.gz", "label map holds NaN"]


def nifti_label_fractional(tmp):
    data = folder_data(tmp)
    for k in range(4):
        write_nifti(data / "labels" / f"case{k:02d}.nii", np.full((SIZE, SIZE), 0.4 * (k == 3)))
    config = run_config(tmp, folder_source(data, label_glob="labels/*.nii"))
    return config, ["case03.nii", "non-integer"]


def dicom_garbage(tmp):
    config, bad = _case(tmp, ".dcm")
    _garbage(bad)
    return config, [bad.name, "cannot read image"]


def dicom_no_pixel_data(tmp):
    import pydicom

    config, bad = _case(tmp, ".dcm")
    ds = pydicom.dcmread(bad)
    del ds.PixelData
    ds.save_as(bad)
    return config, [bad.name, "cannot read image"]


def dicom_short_pixel_data(tmp):
    import pydicom

    config, bad = _case(tmp, ".dcm")
    ds = pydicom.dcmread(bad)
    ds.PixelData = ds.PixelData[:100]
    ds.save_as(bad)
    return config, [bad.name, "cannot read image"]


def dicom_constant(tmp):
    config, bad = _case(tmp, ".dcm")
    write_dcm(bad, np.full((SIZE, SIZE), 1000))
    return config, [bad.name, "constant"]


def _series(tmp: Path) -> tuple[Path, Path]:
    """Image-only data: each image is a folder of two DICOM slices."""
    data = tmp / "data"
    for k in range(4):
        for z in range(2):
            write_dcm(data / "series" / f"case{k:02d}" / f"s{z}.dcm", image_array(k + 5 * z, np.uint16),
                      z=2.0 * z, instance=z + 1, series_uid=f"1.2.3.{k}")  # fmt: skip
    source = {"kind": "folders", "root": str(data), "image_glob": "series/*", "id_regex": r"(\d+)"}
    return run_config(tmp, source, image_only=True), data / "series" / "case01"


def series_two_series(tmp):
    config, bad = _series(tmp)
    write_dcm(bad / "s1.dcm", image_array(1, np.uint16), z=2.0, series_uid="9.9.9")
    return config, ["case01", "2 DICOM series"]


def series_slice_shapes_differ(tmp):
    config, bad = _series(tmp)
    write_dcm(bad / "s1.dcm", np.ones((SIZE, SIZE + 2)), z=2.0, series_uid="1.2.3.1")
    return config, ["case01", "slices differ in shape"]


def series_symlink_loop(tmp):
    config, bad = _series(tmp)
    (bad / "loop.dcm").symlink_to("loop.dcm")
    return config, ["loop.dcm", "symbolic link loop"]


def series_no_dicom(tmp):
    config, bad = _series(tmp)
    for file in bad.iterdir():
        file.write_text("notes, not DICOM")
    return config, ["case01", "no DICOM images"]


def npy_nan(tmp):
    config, bad = _case(tmp, ".npy")
    write_npy(bad, _with_nan(image_array(2)))
    return config, [bad.name, "NaN"]


def npy_pickled_objects(tmp):
    config, bad = _case(tmp, ".npy")
    np.save(bad, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return config, [bad.name, "cannot read image", "pickle"]


def npy_five_dimensional(tmp):
    config, bad = _case(tmp, ".npy")
    write_npy(bad, np.ones((1, 1, 2, SIZE, SIZE), np.float32))
    return config, [bad.name, "expected 2 to 4 dimensions"]


def npy_garbage(tmp):
    config, bad = _case(tmp, ".npy")
    _garbage(bad)
    return config, [bad.name, "cannot read image"]


def npy_constant(tmp):
    config, bad = _case(tmp, ".npy")
    write_npy(bad, np.zeros((SIZE, SIZE), np.float64))
    return config, [bad.name, "constant"]


def unsupported_ending(tmp):
    data = folder_data(tmp)
    (data / "images" / "case09.webm").write_bytes(b"\x1a\x45\xdf\xa3")
    write_png(data / "labels" / "case09.png", np.zeros((SIZE, SIZE), np.uint8))
    return run_config(tmp, folder_source(data, ".*")), ["case09.webm", "unsupported file ending"]


CASES = {f.__name__: f for f in [
    png_not_png, png_truncated, png_empty_file, png_all_zero_16_bit, png_constant_8_bit,
    png_label_wrong_shape, png_label_not_class_values, png_label_outside_label_values,
    png_label_unreadable, tif_garbage, tif_nan, tif_inf, tif_constant, tif_five_dimensional,
    gif_garbage, gif_constant, jpeg_truncated, jpeg_constant, nifti_nan_voxels, nifti_inf_voxels,
    nifti_gzip_crc, nifti_gzip_truncated, nifti_garbage, nifti_five_dimensional, nifti_constant,
    nifti_label_nan, nifti_label_fractional, dicom_garbage, dicom_no_pixel_data,
    dicom_short_pixel_data, dicom_constant, series_two_series, series_slice_shapes_differ,
    series_symlink_loop, series_no_dicom, npy_nan, npy_pickled_objects, npy_five_dimensional,
    npy_garbage, npy_constant, unsupported_ending,
]}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_is_refused(case, tmp_path, capsys):
    config, needles = CASES[case](tmp_path)
    assert_refused(capsys, tmp_path, train_args(config, tmp_path), *needles)


@pytest.mark.parametrize(
    "ending", [".png", ".tif", ".gif", ".jpg", ".nii", ".nii.gz", ".dcm", ".npy", "series"]
)
def test_the_unbroken_data_are_accepted(ending, tmp_path):
    """Control: each case's data minus its one defect pass every check before training, so
    the refusals above are caused by the defect."""
    if ending == "series":
        config = _series(tmp_path)[0]
    else:
        config = run_config(tmp_path, folder_source(folder_data(tmp_path, ending), ending))
    from synthmed.api import _check_training_request
    from synthmed.config import load_run_config
    from synthmed.data.arrays import prepare_gan_data

    cfg, base = load_run_config(config)
    _check_training_request(cfg, prepare_gan_data(cfg.data, base))
