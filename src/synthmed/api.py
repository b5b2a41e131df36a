"""The Python API: train(), sample(), evaluate(), report(), demo().

Each function takes a config or a run folder, writes its artefacts into the run folder and
returns a small result. The CLI is a thin layer over these; so are notebooks and scripts.

Run folder layout::

    config.yaml        resolved configuration (paths absolute)
    split.json         patient IDs per split (train/val/test)
    data_summary.json  counts, shapes, foreground fractions per split
    samples/real.png   real training pairs; samples/step_*.png generator grids during training
    train_log.csv      losses per logged step
    checkpoints/       last.pt (+ step_*.pt): weights, optimiser/RNG state, config
    synthetic/         images/, labels/, manifest.csv (provenance per sample)
    metrics.json       evaluation results
    report.html        one self-contained page
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import yaml

from synthmed.atomic import write_json, write_text
from synthmed.config.loading import absolutize_paths, dump_yaml, resolve_config
from synthmed.config.schema import RunConfig
from synthmed.errors import InputError

log = logging.getLogger(__name__)


def _prepare_run_dir(run_dir: Path, resume: bool) -> None:
    last = run_dir / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise InputError("--resume given but the run has no checkpoints/last.pt", run_dir)
    if not resume and last.is_file():
        raise InputError(
            "this run folder already holds a trained model; use --resume or choose another --out",
            run_dir,
        )
    run_dir.mkdir(parents=True, exist_ok=True)


def _write_data_artifacts(run_dir: Path, data) -> None:
    from synthmed.data.pairs import decode_pairs
    from synthmed.data.pipeline import describe
    from synthmed.report.figures import pair_grid, save_png

    write_json(
        run_dir / "split.json",
        {name: sorted({it.patient_id for it in items}) for name, items in data.splits.items()},
    )
    write_json(
        run_dir / "data_summary.json",
        {name: describe(items) for name, items in data.splits.items()},
    )
    pick = np.linspace(0, len(data.pairs) - 1, num=min(16, len(data.pairs))).astype(int)
    images, labels = decode_pairs(data.pairs[pick], data.image_channels)
    save_png(run_dir / "samples" / "real.png", pair_grid(images.numpy(), labels.numpy()), 512)


def train(
    config: RunConfig,
    run_dir: str | Path,
    base_dir: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
):
    """Train the configured generator into ``run_dir``.

    Args:
        config: resolved run config.
        run_dir: output folder (created).
        base_dir: folder relative data paths are resolved against (the config file's).
        resume: continue from ``checkpoints/last.pt``.

    Returns:
        ``synthmed.training.loop.TrainResult``.
    """
    from synthmed.training.data import prepare_gan_data
    from synthmed.training.loop import train_gan

    run_dir = Path(run_dir)
    _prepare_run_dir(run_dir, resume)
    config = absolutize_paths(config, Path(base_dir) if base_dir else None)
    if resume:
        saved = load_run_config(run_dir)
        if saved.model_dump(exclude={"train"}) != config.model_dump(exclude={"train"}):
            raise InputError(
                "--resume with a config whose data/model differ from the run's", run_dir
            )
    write_text(run_dir / "config.yaml", dump_yaml(config))
    data = prepare_gan_data(config.data)
    _write_data_artifacts(run_dir, data)
    log.info("training on %d pairs of shape %s", len(data.pairs), tuple(data.pairs.shape[1:]))
    return train_gan(config, data, run_dir, resume=resume, quiet=quiet)


def load_run_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise InputError("no config.yaml: not a synthmed run folder", run_dir)
    return resolve_config(yaml.safe_load(path.read_text()), source=str(path))


def sample(
    run_dir: str | Path,
    n: int | None = None,
    seed: int | None = None,
    formats: list[str] | None = None,
    out: str | Path | None = None,
    threshold: float | None = None,
    device: str = "auto",
    quiet: bool = False,
) -> Path:
    """Export a labelled synthetic dataset from a trained run (defaults from ``sample:``).

    ``formats`` beyond png/nifti (nnunet, monai, npz, dicom) are written from the sampled
    dataset into ``<out>/../export/<format>`` by :mod:`synthmed.export`.
    """
    from synthmed.sampling.export import export_synthetic

    cfg = load_run_config(run_dir).sample
    formats = list(formats or cfg.formats)
    base = [f for f in formats if f in ("png", "nifti")] or ["png"]
    folder = export_synthetic(
        run_dir,
        out_dir=out,
        n=n if n is not None else cfg.n,
        seed=seed if seed is not None else cfg.seed,
        formats=base,
        threshold=threshold if threshold is not None else cfg.label_threshold,
        batch_size=cfg.batch_size,
        device=device,
        quiet=quiet,
    )
    extra = [f for f in formats if f not in ("png", "nifti")]
    if extra:
        from synthmed.export import export_dataset

        for fmt in extra:
            export_dataset(
                folder, fmt, folder.parent / "export" / fmt, run_dir=Path(run_dir), quiet=quiet
            )
    return folder


def evaluate(run_dir: str | Path, device: str = "auto", quiet: bool = False) -> dict:
    """Utility of the synthetic set: U-Nets trained on real vs synthetic, tested on real.

    Samples the run first when it has no ``synthetic/`` folder yet. Writes ``metrics.json``.
    """
    from synthmed.evaluation.run import evaluate_run

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    synth_dir = run_dir / "synthetic"
    if not (synth_dir / "manifest.csv").is_file():
        n = config.evaluate.n_synthetic or config.sample.n
        sample(run_dir, n=n, device=device, quiet=quiet)
    metrics = evaluate_run(config, run_dir, synth_dir, device=device, quiet=quiet)
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def report(run_dir: str | Path) -> Path:
    """Write ``report.html`` from the run folder's files; returns its path."""
    from synthmed.report.html import render_report

    return render_report(run_dir)


def demo(
    out: str | Path = "runs/demo", tiny: bool = False, device: str = "auto", quiet: bool = False
) -> dict:
    """The whole pipeline on built-in fundus phantoms: train -> sample -> evaluate -> report.

    ``tiny`` shrinks every stage to seconds (used by the test suite).
    """
    out = Path(out)
    t0 = time.perf_counter()
    overrides = _TINY_OVERRIDES if tiny else []
    config = resolve_config({"name": "demo"}, preset="demo", overrides=overrides)
    if (out / "checkpoints" / "last.pt").is_file():
        _clear_run(out)
    timings = {}
    start = time.perf_counter()
    train(config, out, quiet=quiet)
    timings["train_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    sample(out, device=device, quiet=quiet)
    timings["sample_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    metrics = evaluate(out, device=device, quiet=quiet)
    timings["evaluate_s"] = round(time.perf_counter() - start, 1)
    timings["total_s"] = round(time.perf_counter() - t0, 1)
    metrics.setdefault("provenance", {})["timing"] = timings
    write_json(out / "metrics.json", metrics)
    report_path = report(out)
    return {
        "report": str(report_path),
        "metrics": str(out / "metrics.json"),
        "timings": timings,
        "utility": metrics.get("utility", {}),
    }


_TINY_OVERRIDES = [
    "data.train.phantom.n_patients=8",
    "data.train.phantom.size=32",
    "data.patches.size=32",
    "data.patches.per_image=4",
    "model.base_channels=8",
    "train.steps=3",
    "train.batch_size=8",
    "train.n_critic=2",
    "train.checkpoint_every=2",
    "sample.n=8",
    "evaluate.utility.steps=4",
    "evaluate.utility.val_every=2",
    "evaluate.utility.channels=[8,16]",
    "evaluate.utility.batch_size=4",
]


def _clear_run(out: Path) -> None:
    """The demo always starts fresh: remove the artefacts of an earlier demo run only."""
    import shutil

    for name in ("checkpoints", "samples", "synthetic"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("train_log.csv", "metrics.json", "report.html"):
        (out / name).unlink(missing_ok=True)


def read_metrics(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())
