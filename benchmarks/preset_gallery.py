"""Quick-scale run of every paper preset on its matching ../shared/data set: wall time and a
sample grid per preset (the pictures in README.md).

    python benchmarks/preset_gallery.py                       # all presets, one after another
    python benchmarks/preset_gallery.py shin2018-pix2pix      # one

Writes docs/img/<preset>.png (16 synthetic samples with their labels overlaid, small) and
benchmarks/results/preset_gallery/<preset>.json (stage wall times, date, machine, command).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from synthmed import __version__, api
from synthmed.config import load_run_config
from synthmed.data.synthetic import read_synthetic_arrays
from synthmed.machine import describe_machine
from synthmed.report.figures import pair_grid, save_png

ROOT = Path(__file__).resolve().parents[1]
# Translators get LGG with anatomy derived from each slice (lgg_flair_anatomy.yaml): on the
# tumour-only masks of lgg_flair.yaml they drew one mean head around the tumour. The
# cascade's mask GAN learns tumour masks, so it keeps the tumour-only maps.
DATA = ROOT / "examples" / "data"
PRESET_DATA = {
    "kossen2021-wgan-gp-sn": "drive_patches.yaml",
    "kossen2021-wgan-gp": "drive_patches.yaml",
    "kossen2021-dcgan": "drive_patches.yaml",
    "guibas2017-dual-gan": "drive_whole.yaml",
    "shin2018-pix2pix": "lgg_flair_anatomy.yaml",
    "platscher2021-pix2pix": "lgg_flair_anatomy.yaml",
    "platscher2021-spade": "lgg_flair_anatomy.yaml",
    "platscher2021-mask-gan": "lgg_flair.yaml",
    "fridadar2018-dcgan-per-class": "busi.yaml",
    "fridadar2018-acgan": "busi.yaml",
}


def run_preset(preset: str, work: Path, dest: Path, overrides: list[str]) -> dict:
    cfg, base = load_run_config(
        preset=preset, quick=True, data_file=DATA / PRESET_DATA[preset], overrides=overrides
    )
    run = work / preset
    shutil.rmtree(run, ignore_errors=True)
    times = {}
    start = time.perf_counter()
    api.train(cfg, run, base_dir=base, quiet=True)
    times["train_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    # audit only: the export gate records its verdict and keeps every sample (as before the gate)
    folder = api.sample(run, n=16, out=run / "gallery", quiet=True, audit_only=True)
    times["sample_s"] = round(time.perf_counter() - start, 1)
    images, labels = read_synthetic_arrays(folder)
    grid = pair_grid(images, labels if labels is not None else None, ncol=8)
    picture = dest / "docs" / "img" / f"{preset}.png"
    save_png(picture, grid, min_size=384)
    return {
        "preset": preset,
        "data": PRESET_DATA[preset],
        "wall_times": times,
        "picture": str(picture.relative_to(dest)),
        "overrides": overrides,
        "image_shape": list(np.asarray(images).shape[1:]),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "synthmed": __version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=list(PRESET_DATA))
    parser.add_argument("--work", type=Path, default=Path("/tmp/synthmed-gallery"))
    parser.add_argument("--dest", type=Path, default=ROOT, help="where docs/ and results go")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    out = args.dest / "benchmarks" / "results" / "preset_gallery"
    out.mkdir(parents=True, exist_ok=True)
    for preset in args.presets:
        result = run_preset(preset, args.work, args.dest, args.overrides)
        (out / f"{preset}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
