"""One image/label reader interface, chosen by file ending (nnU-Net style).

Every reader returns a channel-first array in the file's own dtype plus spacing and affine;
:func:`read_image` turns it into float32 intensities and :func:`read_label` into one integer
label map, so the rest of synthmed never cares where pixels came from.

Axis conventions (shared with :mod:`synthmed.data.writers`, so files round-trip):
  * 2D images are ``(C, H, W)``, 3D volumes ``(C, D, H, W)`` with ``D`` the slice axis.
  * NIfTI stores ``(x, y, z[, t])``; we return ``(t, z, y, x)`` so ``W = x``, ``H = y``,
    ``D = z``. ``spacing`` follows the returned axes (``(dz, dy, dx)``), ``affine`` is the file's
    own voxel ``(x, y, z)`` -> RAS-mm matrix.
  * DICOM: ``spacing`` is ``(slice, row, column)`` from slice positions and PixelSpacing.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmed.errors import InputError
from synthmed.registry import Registry

log = logging.getLogger(__name__)

READERS = Registry("reader")
"""File ending (``.png``, ``.nii.gz``, ...) -> ``reader(path, as_label) -> ImageData``.

The key ``folder`` reads a DICOM series folder.
"""

FOLDER_KEY = "folder"


@dataclass
class ImageData:
    """Pixels plus geometry.

    Attributes:
        array: channel-first ``(C, H, W)`` or ``(C, D, H, W)``; float32 from :func:`read_image`.
        spacing: mm per spatial axis, in array order, or None when the format has none.
        affine: 4x4 voxel -> world matrix (see module docstring), or None.
    """

    array: np.ndarray
    spacing: tuple[float, ...] | None = None
    affine: np.ndarray | None = None


@dataclass
class LabelData:
    """An integer label map ``(H, W)`` or ``(D, H, W)`` with the same geometry fields."""

    array: np.ndarray
    spacing: tuple[float, ...] | None = None
    affine: np.ndarray | None = None


def file_ending(path: str | Path) -> str:
    """Lower-case ending, with ``.nii.gz`` treated as one ending."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def check_link(path: Path) -> None:
    """Refuse a symbolic link that leads nowhere: a loop, or a target that does not exist."""
    if not path.is_symlink() or path.exists():
        return
    try:
        path.resolve(strict=True)
    except FileNotFoundError:
        target = os.readlink(path)
        raise InputError(f"broken symbolic link (target {target} is missing)", path) from None
    except (RuntimeError, OSError):  # RuntimeError: Python < 3.13; OSError ELOOP after
        raise InputError("symbolic link loop (the link leads back to itself)", path) from None


def _read_raw(path: str | Path, as_label: bool) -> ImageData:
    path = Path(path)
    try:
        check_link(path)
        if not path.exists():
            raise InputError("file not found", path)
        is_dir = path.is_dir()
    except OSError as exc:  # e.g. ENAMETOOLONG: a path the system cannot even look up
        raise InputError(f"cannot open: {exc.strerror or exc}", path) from None
    key = FOLDER_KEY if is_dir else file_ending(path)
    if key not in READERS:
        supported = ", ".join(n for n in READERS.names() if n != FOLDER_KEY)
        raise InputError(
            f"unsupported file ending '{key}'; supported: {supported}, or a DICOM series folder",
            path,
        )
    try:
        data = READERS.get(key)(path, as_label)
    except InputError:
        raise
    except Exception as exc:  # any library failure is a bad file from the user's point of view
        kind = "label" if as_label else "image"
        text = " ".join(str(exc).split())  # library messages may span lines
        raise InputError(f"cannot read {kind}: {type(exc).__name__}: {text}", path) from exc
    if data.array.size == 0:
        raise InputError("file holds no pixels", path)
    if data.array.dtype.kind not in "biuf":  # strings, records, complex, dates, objects
        raise InputError(
            f"pixels of type {data.array.dtype} are not real numbers (bool, integer or float)",
            path,
        )
    return data


def read_image(path: str | Path) -> ImageData:
    """Read an image as float32, channel-first, in its original intensity units.

    Raises:
        InputError: the file is missing, unreadable or has an unsupported ending.
    """
    data = _read_raw(path, as_label=False)
    data.array = np.ascontiguousarray(data.array, dtype=np.float32)
    check_finite(data.array, path)
    return data


def check_finite(array: np.ndarray, path: str | Path) -> None:
    """Refuse NaN or infinite pixels: they would reach every loss and sample grid.

    Raises:
        InputError: naming the count and the first bad position (array order, channel first).
    """
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        n_nan, n_inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        raise InputError(
            f"image holds {n_nan} NaN and {n_inf} infinite values (first at index {where}); "
            "replace them (e.g. with 0) before training",
            path,
        )


def read_label(path: str | Path) -> LabelData:
    """Read a label map as integers with one channel.

    Colour labels are collapsed: equal R, G, B -> that value, otherwise luminance (as Pillow's
    ``convert('L')``); palette images are converted with ``convert('L')`` by the reader.
    """
    data = _read_raw(path, as_label=True)
    array = _collapse_channels(data.array, path)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.isfinite(array).all():
            raise InputError("label map holds NaN or infinite values", path)
        rounded = np.rint(array)
        if not np.allclose(rounded, array, atol=1e-3):
            raise InputError("label map holds non-integer values", path)
        array = rounded
    return LabelData(array.astype(np.int64), data.spacing, data.affine)


def _collapse_channels(array: np.ndarray, path: str | Path) -> np.ndarray:
    channels = array.shape[0]
    if channels == 1:
        return array[0]
    if channels == 2:  # grey + alpha
        return array[0]
    if channels in (3, 4):
        rgb = array[:3]
        if np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[0], rgb[2]):
            return rgb[0]
        weights = np.array([299, 587, 114], dtype=np.float64).reshape(3, *([1] * (rgb.ndim - 1)))
        return np.floor((rgb * weights).sum(0) / 1000 + 0.5)
    raise InputError(f"a label map needs one channel, found {channels}", path)


# --------------------------------------------------------------------------- Pillow / TIFF


def _pil_to_array(img, as_label: bool) -> np.ndarray:
    """Pillow image -> channel-first array, keeping 16-bit depth."""
    if img.mode == "P":
        img = img.convert("L") if as_label else img.convert("RGBA" if _has_alpha(img) else "RGB")
    elif img.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("L" if img.mode == "1" else "RGB")
    array = np.asarray(img)
    if array.ndim == 2:
        return array[None]
    return np.moveaxis(array, -1, 0)


def _has_alpha(img) -> bool:
    return "transparency" in img.info


def read_pillow(path: Path, as_label: bool) -> ImageData:
    """PNG, GIF, JPEG, BMP and single-page TIFF via Pillow (8- and 16-bit, grey or RGB(A))."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return ImageData(_pil_to_array(img, as_label))


for _ending in (".png", ".gif", ".jpg", ".jpeg", ".bmp"):
    READERS.register(_ending)(read_pillow)


def _tiff_to_channel_first(array: np.ndarray) -> np.ndarray:
    """tifffile layouts: (H,W), (H,W,C<=4), (D,H,W), (D,H,W,C<=4)."""
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        return np.moveaxis(array, -1, 0) if array.shape[-1] in (3, 4) else array[None]
    if array.ndim == 4 and array.shape[-1] in (3, 4):
        return np.moveaxis(array, -1, 0)
    raise ValueError(f"unsupported TIFF layout {array.shape}")


@READERS.register(".tif")
@READERS.register(".tiff")
def read_tiff(path: Path, as_label: bool) -> ImageData:
    """Pillow first (reads LZW without extra codecs), tifffile for stacks and exotic layouts."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if getattr(img, "n_frames", 1) == 1:
                img.load()
                return ImageData(_pil_to_array(img, as_label))
    except Exception as exc:  # fall through to tifffile, which reads more sample formats
        log.debug("Pillow could not read %s (%s); trying tifffile", path, exc)
    import tifffile

    return ImageData(_tiff_to_channel_first(tifffile.imread(path)))


@READERS.register(".npy")
def read_npy(path: Path, as_label: bool) -> ImageData:
    """``.npy``: (H,W); (C<=4,H,W); (H,W,3|4); (D,H,W) when neither end looks like channels;
    (C,D,H,W)."""
    array = np.load(path, allow_pickle=False)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3:
        if array.shape[0] > 4 and array.shape[-1] in (3, 4):
            array = np.moveaxis(array, -1, 0)
        elif array.shape[0] > 4:
            array = array[None]
    elif array.ndim != 4:
        raise ValueError(f"expected 2 to 4 dimensions, found shape {array.shape}")
    if as_label and array.ndim == 4 and array.shape[0] > 1 and array.shape[0] not in (3, 4):
        raise ValueError(f"label array shape {array.shape} is not one channel")
    return ImageData(array)


# --------------------------------------------------------------------------- NIfTI


@contextlib.contextmanager
def _nibabel_silenced():
    """Disable nibabel's loggers for the block. nibabel's own LoggingOutputSuppressor only
    detaches its handlers (and skips some while doing so), so records still propagated to
    the CLI's root handler: a bad header printed two extra lines above synthmed's error."""
    loggers = [logging.getLogger(name) for name in ("nibabel", "nibabel.global")]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, was in zip(loggers, before, strict=True):
            lg.disabled = was


@READERS.register(".nii")
@READERS.register(".nii.gz")
def read_nifti(path: Path, as_label: bool) -> ImageData:
    """NIfTI via nibabel: (x, y[, z[, t]]) -> (t, [z,] y, x); a single z slice becomes 2D."""
    import nibabel as nib
    from nibabel.openers import ImageOpener

    if file_ending(path) == ".nii.gz":
        _check_gzip(path)
    with _nibabel_silenced():  # nibabel logs header problems itself, then raises
        img = nib.load(str(path))
        with ImageOpener(str(path)) as raw:  # unchecked: load() quietly turns inf into NaN
            header = type(img.header).from_fileobj(raw, check=False)
        for field in ("scl_slope", "scl_inter"):
            value = float(header[field])
            # NaN is nibabel's own "no scaling" (it writes it by default); infinity is damage
            # that nibabel would also read as unscaled, in silence
            if math.isinf(value):
                raise ValueError(f"header {field} is {value} (intensity scaling must be finite)")
        array = np.asanyarray(img.dataobj)
    if not as_label:
        array = array.astype(np.float32)
    zooms = tuple(float(z) for z in img.header.get_zooms())
    if array.ndim == 2:
        array = array[:, :, None, None]
    elif array.ndim == 3:
        array = array[..., None]
    elif array.ndim != 4:
        raise ValueError(f"expected 2 to 4 dimensions, found shape {array.shape}")
    array = np.transpose(array, (3, 2, 1, 0))  # (t, z, y, x)
    spacing = tuple(reversed((zooms + (1.0, 1.0))[:3]))  # (dz, dy, dx)
    if array.shape[1] == 1:
        array, spacing = array[:, 0], spacing[1:]
    return ImageData(np.ascontiguousarray(array), spacing, np.asarray(img.affine, dtype=float))


def _check_gzip(path: Path, chunk: int = 1 << 24) -> None:
    """Decompress the whole file once: only reading to the end checks the gzip CRC and length
    (nibabel stops after the voxels it needs, so a damaged file would load silently)."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(chunk):
                pass
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"corrupt gzip data: {exc}", path) from None


# --------------------------------------------------------------------------- DICOM


def _rescaled(ds, array: np.ndarray) -> np.ndarray:
    """Apply RescaleSlope/Intercept (e.g. stored values -> Hounsfield units)."""
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if slope == 1 and intercept == 0:
        return array
    return array.astype(np.float64) * slope + intercept


def _pixel_spacing(ds) -> tuple[float, float]:
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing") or (1.0, 1.0)
    return float(spacing[0]), float(spacing[1])


@READERS.register(".dcm")
@READERS.register(".dicom")
def read_dicom_file(path: Path, as_label: bool) -> ImageData:
    """One DICOM file: 2D, colour (SamplesPerPixel 3) or multi-frame (-> a volume)."""
    import pydicom

    ds = pydicom.dcmread(path)
    array = _rescaled(ds, ds.pixel_array)
    colour = int(ds.get("SamplesPerPixel", 1)) > 1
    array = np.moveaxis(array, -1, 0) if colour else array[None]
    row, col = _pixel_spacing(ds)
    if array.ndim == 4:
        step = float(ds.get("SpacingBetweenSlices", 0) or ds.get("SliceThickness", 1) or 1)
        return ImageData(array, (step, row, col))
    return ImageData(array, (row, col))


def _read_series_slices(folder: Path) -> list:
    import pydicom
    from pydicom.errors import InvalidDicomError

    slices = []
    for file in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        check_link(file)
        if not file.is_file():
            continue
        try:
            ds = pydicom.dcmread(file)
        except InvalidDicomError:
            log.debug("skipping non-DICOM file %s", file)
            continue
        if "PixelData" in ds:
            slices.append(ds)
    if not slices:
        raise ValueError("no DICOM images in the folder")
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in slices}
    if len(series) > 1:
        raise ValueError(f"the folder holds {len(series)} DICOM series; give one folder each")
    return slices


def _slice_positions(slices: list) -> np.ndarray | None:
    """Position of each slice along the slice normal (mm), or None when not recorded."""
    if not all("ImagePositionPatient" in ds for ds in slices):
        return None
    ipp = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in slices])
    iop = slices[0].get("ImageOrientationPatient")
    if iop is None:
        return ipp[:, 2]
    normal = np.cross(np.array(iop[:3], float), np.array(iop[3:], float))
    return ipp @ normal


def _series_affine(first, last, n: int, row: float, col: float, step: float) -> np.ndarray | None:
    """Voxel (x=column, y=row, z=slice) -> RAS mm, matching the NIfTI convention."""
    if "ImageOrientationPatient" not in first or "ImagePositionPatient" not in first:
        return None
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    origin = np.array([float(v) for v in first.ImagePositionPatient])
    if n > 1:
        slice_vec = (np.array([float(v) for v in last.ImagePositionPatient]) - origin) / (n - 1)
    else:
        slice_vec = np.cross(iop[:3], iop[3:]) * step
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = iop[:3] * col, iop[3:] * row, slice_vec
    affine[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # DICOM is LPS, NIfTI RAS


@READERS.register(FOLDER_KEY)
def read_dicom_series(path: Path, as_label: bool) -> ImageData:
    """A folder of single-slice DICOM files -> (1, D, H, W), sorted by position along the
    slice normal (ImagePositionPatient), else by InstanceNumber."""
    slices = _read_series_slices(path)
    positions = _slice_positions(slices)
    if positions is not None:
        order = np.argsort(positions, kind="stable")
    else:
        order = np.argsort([int(ds.get("InstanceNumber", 0) or 0) for ds in slices], kind="stable")
    slices = [slices[i] for i in order]
    shapes = {ds.pixel_array.shape for ds in slices}
    if len(shapes) > 1:
        raise ValueError(f"slices differ in shape: {sorted(shapes)}")
    volume = np.stack([_rescaled(ds, ds.pixel_array) for ds in slices])
    row, col = _pixel_spacing(slices[0])
    step = float(slices[0].get("SliceThickness", 1) or 1)
    if positions is not None and len(slices) > 1:
        gaps = np.abs(np.diff(np.sort(positions)))
        step = float(np.median(gaps)) if np.median(gaps) > 0 else step
    affine = _series_affine(slices[0], slices[-1], len(slices), row, col, step)
    array = np.moveaxis(volume, -1, 0) if volume.ndim == 4 else volume[None]
    return ImageData(array, (step, row, col), affine)
