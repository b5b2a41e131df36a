"""Reader round trips per format (files written with each format's own library) and errors."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from synthmed.data.readers import READERS, file_ending, read_image, read_label
from synthmed.errors import InputError


@pytest.fixture
def grey8(rng):
    return rng.integers(0, 256, (6, 7), dtype=np.uint8)


@pytest.fixture
def rgb8(rng):
    return rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)


def test_png_8bit_grey(tmp_path, grey8):
    Image.fromarray(grey8).save(tmp_path / "a.png")
    data = read_image(tmp_path / "a.png")
    assert data.array.dtype == np.float32 and data.array.shape == (1, 6, 7)
    np.testing.assert_array_equal(data.array[0], grey8)
    assert data.spacing is None and data.affine is None


def test_png_16bit_grey(tmp_path, rng):
    grey16 = rng.integers(0, 65536, (6, 7), dtype=np.uint16)
    img = Image.fromarray(grey16)
    assert img.mode == "I;16"
    img.save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png").array[0], grey16)


@pytest.mark.parametrize("mode, channels", [("RGB", 3), ("RGBA", 4)])
def test_png_colour_is_channel_first(tmp_path, rgb8, mode, channels):
    pixels = rgb8 if mode == "RGB" else np.concatenate([rgb8, rgb8[..., :1]], -1)
    Image.fromarray(pixels, mode).save(tmp_path / "a.png")
    array = read_image(tmp_path / "a.png").array
    assert array.shape == (channels, 6, 7)
    np.testing.assert_array_equal(np.moveaxis(array, 0, -1), pixels)


def test_tif_tifffile_16bit_and_rgb(tmp_path, rng, rgb8):
    grey16 = rng.integers(0, 65536, (6, 7), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "g.tif", grey16)
    tifffile.imwrite(tmp_path / "c.tiff", rgb8, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "g.tif").array[0], grey16)
    np.testing.assert_array_equal(read_image(tmp_path / "c.tiff").array, np.moveaxis(rgb8, -1, 0))


def test_tif_pillow_lzw(tmp_path, rgb8):
    Image.fromarray(rgb8).save(tmp_path / "c.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif").array, np.moveaxis(rgb8, -1, 0))


def test_tif_stack_is_volume(tmp_path, rng):
    stack = rng.integers(0, 255, (5, 6, 7), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "v.tif", stack)
    assert read_image(tmp_path / "v.tif").array.shape == (1, 5, 6, 7)


def test_gif_label_grey_and_palette(tmp_path):
    mask = np.zeros((6, 7), np.uint8)
    mask[2:4, 3:5] = 255
    Image.fromarray(mask).save(tmp_path / "m.gif")
    np.testing.assert_array_equal(read_label(tmp_path / "m.gif").array, mask)
    palette = Image.fromarray((mask > 0).astype(np.uint8), "P")
    palette.putpalette([3, 3, 3, 253, 253, 253])
    palette.save(tmp_path / "p.gif")
    label = read_label(tmp_path / "p.gif").array
    assert label.dtype == np.int64 and set(np.unique(label)) == {3, 253}
    assert read_image(tmp_path / "p.gif").array.shape == (3, 6, 7)


def test_jpeg_approximately_equal(tmp_path):
    smooth = np.tile(np.linspace(40, 200, 16, dtype=np.uint8), (16, 1))
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    array = read_image(tmp_path / "a.jpg").array
    assert array.shape == (1, 16, 16)
    assert np.abs(array[0] - smooth).mean() < 3


def test_rgb_label_collapsed(tmp_path):
    mask = np.zeros((6, 7), np.uint8)
    mask[1:3] = 2
    Image.fromarray(np.stack([mask] * 3, -1)).save(tmp_path / "m.png")
    label = read_label(tmp_path / "m.png").array
    assert label.shape == (6, 7)
    np.testing.assert_array_equal(label, mask)


def test_npy_layouts(tmp_path, rng):
    np.save(tmp_path / "hw.npy", rng.random((6, 7)))
    np.save(tmp_path / "hwc.npy", rng.random((6, 7, 3)))
    np.save(tmp_path / "dhw.npy", rng.random((5, 6, 7)))
    assert read_image(tmp_path / "hw.npy").array.shape == (1, 6, 7)
    assert read_image(tmp_path / "hwc.npy").array.shape == (3, 6, 7)
    assert read_image(tmp_path / "dhw.npy").array.shape == (1, 5, 6, 7)


def test_nifti_3d_axes_and_spacing(tmp_path, rng):
    xyz = rng.random((7, 6, 5)).astype(np.float32)  # (x, y, z)
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    nib.save(nib.Nifti1Image(xyz, affine), tmp_path / "v.nii.gz")
    data = read_image(tmp_path / "v.nii.gz")
    assert data.array.shape == (1, 5, 6, 7)  # (C, D=z, H=y, W=x)
    np.testing.assert_allclose(data.array[0], xyz.transpose(2, 1, 0))
    assert data.spacing == pytest.approx((2.5, 0.9, 0.8))
    np.testing.assert_allclose(data.affine, affine)


def test_nifti_2d_and_label(tmp_path):
    label = np.zeros((7, 6), np.uint8)
    label[2:4, 1:3] = 2
    nib.save(nib.Nifti1Image(label, np.diag([0.5, 0.6, 1.0, 1.0])), tmp_path / "l.nii")
    assert read_image(tmp_path / "l.nii").array.shape == (1, 6, 7)
    read = read_label(tmp_path / "l.nii")
    np.testing.assert_array_equal(read.array, label.T)
    assert read.spacing == pytest.approx((0.6, 0.5))


def test_dicom_single_file(tmp_path, rng, dicom_writer):
    stored = rng.integers(0, 4000, (6, 5), dtype=np.uint16)
    path = dicom_writer(tmp_path / "a.dcm", stored, slope=1.0, intercept=-1024.0)
    data = read_image(path)
    assert data.array.shape == (1, 6, 5)
    np.testing.assert_allclose(data.array[0], stored.astype(np.float32) - 1024)
    assert data.spacing == pytest.approx((0.5, 0.75))


def test_dicom_series_sorted_by_position(dicom_series):
    folder, expected = dicom_series
    data = read_image(folder)
    assert data.array.shape == (1, 3, 6, 5)
    np.testing.assert_allclose(data.array[0], expected)
    assert data.spacing == pytest.approx((3.0, 0.5, 0.75))
    assert data.affine[2, 2] == pytest.approx(3.0)


def test_file_ending_double_suffix():
    assert file_ending("a/B.NII.GZ") == ".nii.gz"
    assert ".nii.gz" in READERS and ".png" in READERS


def test_missing_file_names_it(tmp_path):
    with pytest.raises(InputError, match="nope.png") as info:
        read_image(tmp_path / "nope.png")
    assert "not found" in str(info.value)


def test_garbage_png_names_it(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"definitely not a png")
    with pytest.raises(InputError, match="broken.png.*cannot read image"):
        read_image(tmp_path / "broken.png")


def test_unknown_ending_lists_supported(tmp_path):
    (tmp_path / "x.xyz").write_bytes(b"0")
    with pytest.raises(InputError, match=r"x\.xyz.*unsupported file ending '\.xyz'.*\.png"):
        read_label(tmp_path / "x.xyz")


def test_empty_folder_is_not_a_series(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty.*no DICOM images"):
        read_image(tmp_path / "empty")
