"""Shared pieces of the bad-input corpus: run the CLI in-process, check the one-line refusal,
and write tiny valid data sets (4 cases of 16x16) that each case then breaks in one way.

Every file is made here at run time with the format's own library; nothing binary is
committed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthmed.cli import main

SIZE, N_CASES = 16, 4


def invoke(capsys, args: list[str]) -> tuple[int, str, str]:
    """Run ``synthmed ARGS`` in this process; exit code, stdout, stderr."""
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, size and mtime (links not followed)."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            state[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return state


def assert_refused(capsys, root: Path, args: list, *needles: str) -> str:
    """``synthmed ARGS`` exits 2 with exactly one ``error:`` line on stderr that holds every
    needle, prints no traceback, and leaves everything under ``root`` as it was."""
    before = snapshot(root)
    code, out, err = invoke(capsys, args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}; stderr:\n{err}"
    assert "Traceback" not in err + out, err
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    after = snapshot(root)
    assert after == before, f"changed on disk: {sorted(set(after) ^ set(before))[:5]}"
    return lines[0]


# --------------------------------------------------------------------------- valid data


def image_array(k: int, dtype=np.uint8) -> np.ndarray:
    gen = np.random.default_rng(k)
    top = 255 if dtype == np.uint8 else 4000
    return gen.integers(0, top, (SIZE, SIZE)).astype(dtype)


def label_array(k: int) -> np.ndarray:
    label = np.zeros((SIZE, SIZE), np.uint8)
    label[4 : 9 + k, 5:11] = 255
    return label


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_tif(path: Path, array: np.ndarray) -> Path:
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array)
    return path


def write_nifti(path: Path, array: np.ndarray) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array).T.copy(), np.eye(4)), str(path))
    return path


def write_dcm(path: Path, array: np.ndarray, **kwargs) -> Path:
    from tests.conftest import write_dicom

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_dicom(path, np.asarray(array, dtype=np.uint16), **kwargs)


def write_npy(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


WRITERS: dict[str, Callable[[Path, np.ndarray], Path]] = {
    ".png": write_png,
    ".gif": write_png,
    ".jpg": write_png,
    ".tif": write_tif,
    ".nii": write_nifti,
    ".nii.gz": write_nifti,
    ".dcm": write_dcm,
    ".npy": write_npy,
}


def folder_data(root: Path, ending: str = ".png") -> Path:
    """``root/data/images/caseNN<ending>`` + ``labels/caseNN.png`` ({0, 255} masks)."""
    data = root / "data"
    for k in range(N_CASES):
        dtype = np.uint16 if ending == ".dcm" else np.uint8
        WRITERS[ending](data / "images" / f"case{k:02d}{ending}", image_array(k, dtype))
        write_png(data / "labels" / f"case{k:02d}.png", label_array(k))
    return data


def folder_source(data: Path, ending: str = ".png", **extra) -> dict:
    return {
        "kind": "folders",
        "root": str(data),
        "image_glob": f"images/*{ending}",
        "label_glob": "labels/*.png",
        "id_regex": r"case(\d+)",
        **extra,
    }


def run_config(root: Path, source: dict, *, image_only: bool = False, **sections) -> Path:
    """A run YAML on the demo preset, sized so validation is all that runs before a failure:
    8x8 patches (whole images for image-only data), batch 2, no validation or test split, CPU.
    ``sections`` replace or extend top-level sections (``data`` keys are merged)."""
    data = {
        "train": source,
        "preprocess": {"channels": "keep", "normalize": "minmax"},
        "patches": None if image_only else {"size": 8, "per_image": 2},
        "split": {"val_fraction": 0.0, "test_fraction": 0.0},
    }
    config = {
        "preset": "demo",
        "name": "bad-input",
        "data": {**data, **sections.pop("data", {})},
        "train": {"batch_size": 2, "steps": 1, "device": "cpu", **sections.pop("train", {})},
        **sections,
    }
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_args(config: Path, root: Path) -> list:
    return ["train", config, "--out", root / "out", "--quiet"]


# --------------------------------------------------------------------------- read-only


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """Make ``folder`` unwritable for this process: mode 0555, and for root (which ignores
    modes) the immutable attribute; skips when neither works here."""
    folder.mkdir(parents=True, exist_ok=True)
    mode = folder.stat().st_mode
    os.chmod(folder, 0o555)
    immutable = False
    if os.access(folder, os.W_OK) and shutil.which("chattr"):
        immutable = (
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        )
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("cannot make a folder read-only here (root without chattr +i)")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        os.chmod(folder, mode)
