"""Turn a :class:`SourceConfig` into a list of :class:`Item` records.

Four kinds: ``folders`` (globs paired by an ID regex), ``csv`` (a manifest), ``npz`` (MedMNIST
layout) and ``phantom`` (generated). Every problem with the user's files raises
:class:`InputError` naming the file, because a silently wrong pairing or label mapping would
train a GAN on the wrong data without anyone noticing.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from synthmed.config.schema import SourceConfig
from synthmed.data.readers import check_finite, check_link, read_image, read_label
from synthmed.data.types import Item
from synthmed.errors import InputError

log = logging.getLogger(__name__)

MAX_AUTO_CLASSES = 32
"""Raw label values 0..MAX_AUTO_CLASSES-1 are taken as class indices without label_values."""
MAX_CLASSES = 1 << 16
"""Image-level class indices must be below this: a larger one is a typo or an ID column."""


def load_source(spec: SourceConfig, base_dir: Path | None = None) -> list[Item]:
    """Load every item a source describes.

    Args:
        spec: the source config.
        base_dir: folder that relative paths in ``spec`` are relative to (the config file's
            folder); None means the current directory.

    Returns:
        Items with float32 channel-first images, class-index labels (uint8) or None.

    Raises:
        InputError: missing/unreadable files, bad pairing, labels or an empty result.
    """
    if spec.kind == "phantom":
        return _load_phantom(spec)
    loader = {"folders": _load_folders, "csv": _load_csv, "npz": _load_npz}[spec.kind]
    return loader(spec, Path(base_dir) if base_dir is not None else Path("."))


def resolve(path: Path | str, base: Path) -> Path:
    """``path`` if absolute, else ``base / path`` (``~`` expanded)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else base / path


# --------------------------------------------------------------------------- labels


def map_label_values(
    raw: np.ndarray, label_values: Sequence[int] | None, path: str | Path
) -> np.ndarray:
    """Map raw label values to class indices 0..K-1.

    With ``label_values``, raw value ``label_values[k]`` becomes class ``k``. Without, {0, 255}
    and {0, 1} become {0, 1}, and small integers 0..K-1 are kept.

    Raises:
        InputError: values outside ``label_values``, or values that need ``label_values``.
    """
    present = np.unique(raw)
    if label_values is not None:
        declared = np.asarray(label_values, dtype=np.int64)
        outside = np.setdiff1d(present, declared)
        if outside.size:
            raise InputError(
                f"label values {set(outside.tolist())} outside the declared label_values "
                f"{list(label_values)}",
                path,
            )
        order = np.argsort(declared, kind="stable")
        return order[np.searchsorted(declared[order], raw)].astype(np.uint8)
    if set(present.tolist()) <= {0, 1}:
        return raw.astype(np.uint8)
    if set(present.tolist()) <= {0, 255}:
        return (raw == 255).astype(np.uint8)
    if present.min() >= 0 and present.max() < MAX_AUTO_CLASSES:
        return raw.astype(np.uint8)
    raise InputError(
        f"label values {sorted(present.tolist())[:10]} are not class indices 0..K-1; set "
        "label_values (raw value per class, background first) in the source config",
        path,
    )


def load_label(path: Path, image_shape: tuple[int, ...], image_path: Path, spec: SourceConfig):
    """Read, shape-check and map one label file."""
    raw = read_label(path).array
    if raw.shape != tuple(image_shape):
        raise InputError(
            f"image {image_path.name} has spatial shape {tuple(image_shape)} but label "
            f"{path.name} has shape {raw.shape}",
            image_path,
        )
    return map_label_values(raw, spec.label_values, path)


def load_fov(path: Path, image_shape: tuple[int, ...], image_path: Path) -> np.ndarray:
    """A field-of-view / organ mask as bool (nonzero = inside)."""
    raw = read_label(path).array
    if raw.shape != tuple(image_shape):
        raise InputError(
            f"image {image_path.name} has spatial shape {tuple(image_shape)} but mask "
            f"{path.name} has shape {raw.shape}",
            image_path,
        )
    return raw > 0


# --------------------------------------------------------------------------- folders


def _match_id(pattern: re.Pattern, name: str, path: Path, what: str) -> str:
    match = pattern.search(name)
    if match is None:
        raise InputError(f"file name does not match {what} '{pattern.pattern}'", path)
    return match.group(1) if match.groups() else match.group(0)


def _check_links_under(root: Path) -> None:
    """Refuse a looping or dangling symbolic link anywhere under a data folder: glob skips
    such an entry without a word, so a folder whose link loops trained on what was left."""
    for folder, dirs, names in os.walk(root):  # does not follow links: a loop cannot trap it
        for name in dirs + names:
            check_link(Path(folder) / name)


def _index_by_id(root: Path, glob: str, pattern: re.Pattern, what: str) -> dict[str, Path]:
    """Glob under root and key every file by its ID; duplicate IDs are an error."""
    _check_links_under(root)
    files = sorted(root.glob(glob))
    if not files:
        raise InputError(f"{what} '{glob}' matched no files", root)
    table: dict[str, Path] = {}
    for file in files:
        check_link(file)
        key = _match_id(pattern, file.name, file, "id_regex")
        if key in table:
            raise InputError(
                f"duplicate ID '{key}' from id_regex: {table[key].name} and {file.name}", file
            )
        table[key] = file
    return table


def _compile(regex: str, name: str) -> re.Pattern:
    try:
        return re.compile(regex)
    except re.error as exc:
        raise InputError(f"{name} '{regex}' is not a valid regular expression: {exc}") from exc


def _load_folders(spec: SourceConfig, base_dir: Path) -> list[Item]:
    """Glob under root and pair by ID (``id_regex`` searched in the file name).

    ``patient_regex`` is searched in the image path relative to ``root`` (so a patient folder
    name works as well as a file-name prefix); without it the pairing ID is the patient.
    """
    root = resolve(spec.root, base_dir)
    if not root.is_dir():
        raise InputError("root folder not found", root)
    id_re = _compile(spec.id_regex, "id_regex")
    patient_re = _compile(spec.patient_regex, "patient_regex") if spec.patient_regex else None
    images = _index_by_id(root, spec.image_glob, id_re, "image_glob")
    labels = _index_by_id(root, spec.label_glob, id_re, "label_glob") if spec.label_glob else {}
    masks = _index_by_id(root, spec.mask_glob, id_re, "mask_glob") if spec.mask_glob else {}
    items = []
    for key, image_path in images.items():
        if spec.label_glob and key not in labels:
            raise InputError(
                f"no label for ID '{key}' (label_glob '{spec.label_glob}')", image_path
            )
        if spec.mask_glob and key not in masks:
            raise InputError(f"no mask for ID '{key}' (mask_glob '{spec.mask_glob}')", image_path)
        rel = image_path.relative_to(root).as_posix()
        patient = _match_id(patient_re, rel, image_path, "patient_regex") if patient_re else key
        items.append(_read_item(image_path, labels.get(key), masks.get(key), spec, patient, key))
    unused = sorted(set(labels) - set(images))
    if unused:
        log.warning("%d label files have no image (e.g. ID '%s')", len(unused), unused[0])
    return items


def _read_item(
    image_path: Path,
    label_path: Path | None,
    mask_path: Path | None,
    spec: SourceConfig,
    patient_id: str,
    item_id: str,
) -> Item:
    data = read_image(image_path)
    check_not_constant(data.array, image_path)
    shape = data.array.shape[1:]
    label = load_label(label_path, shape, image_path, spec) if label_path else None
    meta: dict = {"id": item_id, "original_shape": tuple(shape)}
    if mask_path is not None:
        meta["fov"] = load_fov(mask_path, shape, image_path)
    if spec.label_names:
        meta["label_names"] = list(spec.label_names)
    if data.affine is not None:
        meta["affine"] = data.affine
    return Item(
        image=data.array,
        label=label,
        patient_id=patient_id,
        source=str(image_path),
        spacing=data.spacing,
        meta=meta,
    )


def check_not_constant(image: np.ndarray, where: str | Path) -> None:
    """Refuse a training image whose pixels all hold one value (an empty export, a blank
    16-bit PNG): it carries nothing to learn, and normalisation would map it to zeros."""
    low, high = float(image.min()), float(image.max())
    if low == high:
        raise InputError(
            f"image is constant (every pixel is {low:g}): nothing to learn; remove it from "
            "the data or check how it was exported",
            where,
        )


# --------------------------------------------------------------------------- csv


def _read_rows(csv_path: Path) -> list[dict[str, str]]:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            table = [(reader.line_num, r) for r in reader if any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read CSV: {exc}", csv_path) from exc
    if len(table) < 2:
        raise InputError("CSV has no rows", csv_path)
    header = [name.strip().lower() for name in table[0][1]]
    if "" in header or len(set(header)) != len(header):
        raise InputError(f"CSV header {header} has an empty or repeated column name", csv_path)
    for number, row in table[1:]:
        if len(row) != len(header):
            raise InputError(
                f"CSV line {number} has {len(row)} cells but the header has {len(header)} "
                "columns (ragged rows: a missing or extra comma?)",
                csv_path,
            )
    rows = [{k: v.strip() for k, v in zip(header, row, strict=True)} for _, row in table[1:]]
    key = "image" if "image" in header else "file"
    empty = next((n for (n, _), r in zip(table[1:], rows, strict=True) if not r.get(key, "x")), 0)
    if empty:
        raise InputError(f"CSV line {empty} has an empty '{key}' cell", csv_path)
    if "image" not in rows[0] and "file" in rows[0]:  # common manifest spelling (e.g. BUSI)
        rows = [{("image" if k == "file" else k): v for k, v in r.items()} for r in rows]
    if "image" not in rows[0]:
        raise InputError(f"CSV needs an 'image' column; found {sorted(rows[0])}", csv_path)
    return rows


def _label_column_holds_classes(rows: list[dict[str, str]]) -> bool:
    """A ``label`` column of names/numbers (no file endings) is an image-level class."""
    from synthmed.data.readers import READERS, file_ending

    if "label" not in rows[0] or "class" in rows[0]:
        return False
    return all(r["label"] and file_ending(r["label"]) not in READERS for r in rows)


def class_indices(
    values: list[str], class_names: Sequence[str] | None, path: Path
) -> tuple[list[int | None], list[str] | None]:
    """Class cells -> indices; names are looked up in ``class_names`` (else sorted names)."""
    filled = [v for v in values if v != ""]
    if all(re.fullmatch(r"-?\d+", v) for v in filled):
        negative = [v for v in filled if int(v) < 0]
        if negative:
            raise InputError(f"class {negative[0]}: classes must be 0..K-1", path)
        huge = [v for v in filled if int(v) >= MAX_CLASSES]
        if huge:
            raise InputError(f"class {huge[0]}: classes must be 0..K-1 (below {MAX_CLASSES})", path)
        return [int(v) if v != "" else None for v in values], (
            list(class_names) if class_names else None
        )
    names = list(class_names) if class_names else sorted(set(filled))
    unknown = sorted(set(filled) - set(names))
    if unknown:
        raise InputError(f"class names {unknown} are not in class_names {names}", path)
    lookup = {name: k for k, name in enumerate(names)}
    return [lookup[v] if v != "" else None for v in values], names


def _load_csv(spec: SourceConfig, base_dir: Path) -> list[Item]:
    csv_path = resolve(spec.csv, base_dir)
    if not csv_path.is_file():
        raise InputError("CSV file not found", csv_path)
    root = resolve(spec.root, base_dir) if spec.root is not None else csv_path.parent
    rows = _read_rows(csv_path)
    class_key = "label" if _label_column_holds_classes(rows) else "class"
    label_key = "label" if class_key != "label" else None
    classes, names = (
        class_indices([r.get(class_key, "") for r in rows], spec.class_names, csv_path)
        if class_key in rows[0]
        else ([None] * len(rows), None)
    )
    items = []
    for row, class_id in zip(rows, classes, strict=True):
        image_path = resolve(row["image"], root)
        label_cell = row.get(label_key, "") if label_key else ""
        label_path = resolve(label_cell, root) if label_cell else None
        patient = row.get("patient_id") or Path(row["image"]).with_suffix("").as_posix()
        item = _read_item(image_path, label_path, None, spec, patient, row["image"])
        if names is not None and class_id is not None:
            item.meta.update(class_names=names, class_name=names[class_id])
        items.append(item.with_(class_id=class_id))
    return items


# --------------------------------------------------------------------------- npz


def _npz_images(images: np.ndarray, key: str, path: Path) -> np.ndarray:
    """MedMNIST (N,H,W), (N,H,W,3) or 3D (N,D,H,W) -> float32 channel-first (N,C,...)."""
    if images.dtype.kind not in "biuf" or (images.size == 0 and len(images)):
        raise InputError(
            f"'{key}' has shape {images.shape} and type {images.dtype}; expected numeric "
            "images (N, H, W[, 3])",
            path,
        )
    if images.ndim == 3:
        return images[:, None].astype(np.float32)
    if images.ndim == 4 and images.shape[-1] in (3, 4):
        return np.moveaxis(images, -1, 1).astype(np.float32)
    if images.ndim == 4:
        return images[:, None].astype(np.float32)
    raise InputError(f"'{key}' has shape {images.shape}; expected (N, H, W[, 3])", path)


def _check_npz_arrays(images, classes, keys, class_names, path: Path) -> None:
    """Finite, non-constant images and class indices 0..K-1, each named by key and index."""
    check_finite(images, f"{path}:{keys[0]}")
    flat = images.reshape(len(images), -1)
    constant = np.flatnonzero(flat.min(axis=1) == flat.max(axis=1)) if flat.size else []
    if len(constant):
        check_not_constant(images[constant[0]], f"{path}:{keys[0]}[{constant[0]}]")
    if not np.issubdtype(classes.dtype, np.integer):
        whole = np.isfinite(classes).all() and np.array_equal(classes, np.round(classes))
        if not whole:
            raise InputError(f"'{keys[1]}' holds non-integer class values", path)
    bad = np.flatnonzero((classes < 0) | (classes >= MAX_CLASSES))
    if bad.size:
        raise InputError(
            f"'{keys[1]}'[{bad[0]}] is {classes[bad[0]]:g}: classes must be 0..K-1 "
            f"(below {MAX_CLASSES})",
            path,
        )
    if class_names and classes.size and classes.max() >= len(class_names):
        raise InputError(
            f"'{keys[1]}' holds class {int(classes.max())} but class_names lists "
            f"{len(class_names)} names",
            path,
        )


def _load_npz(spec: SourceConfig, base_dir: Path) -> list[Item]:
    path = resolve(spec.npz, base_dir)
    if not path.is_file():
        raise InputError("NPZ file not found", path)
    try:
        archive = dict(np.load(path, allow_pickle=False))
    except Exception as exc:
        raise InputError(f"cannot read NPZ: {type(exc).__name__}: {exc}", path) from exc
    items = []
    for split in spec.npz_splits:
        keys = f"{split}_images", f"{split}_labels"
        missing = [k for k in keys if k not in archive]
        if missing:
            raise InputError(f"no key {missing[0]}; keys: {sorted(archive)}", path)
        images = _npz_images(archive[keys[0]], keys[0], path)
        labels = archive[keys[1]]
        if labels.ndim == 0 or labels.size != len(images) or labels.dtype.kind not in "biuf":
            raise InputError(
                f"'{keys[1]}' has shape {labels.shape} and type {labels.dtype}; expected one "
                "numeric class per image",
                path,
            )
        labels = labels.reshape(len(images), -1)
        if labels.shape != (len(images), 1):
            raise InputError(
                f"'{keys[1]}' has shape {archive[keys[1]].shape}; expected one class per image",
                path,
            )
        _check_npz_arrays(images, labels[:, 0], keys, spec.class_names, path)
        for i, (image, class_id) in enumerate(zip(images, labels[:, 0].tolist(), strict=True)):
            meta = {"npz_split": split, "index": i}
            if spec.class_names:
                meta.update(class_names=list(spec.class_names))
            items.append(
                Item(image, None, int(class_id), f"{split}-{i}", f"{path}:{split}:{i}", None, meta)
            )
    if not items:
        raise InputError(f"npz_splits {spec.npz_splits} select no images", path)
    return items


# --------------------------------------------------------------------------- phantom


def _load_phantom(spec: SourceConfig) -> list[Item]:
    from synthmed.data.phantoms import PHANTOMS  # lazy: phantoms are optional for file data

    p = spec.phantom
    try:
        make = PHANTOMS.get(p.kind)
    except KeyError as exc:
        raise InputError(f"phantom.kind: {exc.args[0]}") from exc
    items = make(
        n_patients=p.n_patients, images_per_patient=p.images_per_patient, size=p.size, seed=p.seed
    )
    if not items:
        raise InputError(f"phantom '{p.kind}' produced no items")
    if not p.labels:
        items = [replace(item, label=None) for item in items]
    return items
