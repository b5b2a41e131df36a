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

import logging
import time
from pathlib import Path

import numpy as np

from synthmed.atomic import write_json, write_text
from synthmed.config.loading import absolutize_paths, dump_yaml, read_run_config, resolve_config
from synthmed.config.schema import EvaluateConfig, RunConfig
from synthmed.errors import InputError

LABEL_SOURCES = ("auto", "cascade", "train", "cases")
"""``--label-source`` values (``sample.label_source`` in the config schema)."""

log = logging.getLogger(__name__)


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse a run folder that cannot be written, or whose state contradicts ``resume``;
    creates nothing (a refused run leaves the disk as it was)."""
    from synthmed.checkpoints import find_last_checkpoint, load_checkpoint
    from synthmed.outputs import check_writable

    if run_dir.exists() and not run_dir.is_dir():
        raise InputError("--out is a file, not a folder", run_dir)
    check_writable(run_dir, "--out")
    last = find_last_checkpoint(run_dir) or run_dir / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise InputError("--resume given but the run has no checkpoints/last.pt", run_dir)
    if not resume and last.is_file():
        raise InputError(
            "this run folder already holds a trained model; use --resume or choose another --out",
            run_dir,
        )
    if resume:
        load_checkpoint(last)  # a corrupt or foreign file is refused before anything is written


def _check_training_request(config: RunConfig, data, world_size: int = 1) -> None:
    """Settings the data contradict, refused before training starts (and before the run
    folder is written): a batch larger than the rows it is drawn from, a missing device."""
    _check_device(config.train.device, "train.device")
    if config.train.per_class:  # small classes: batch = class size (_class_config)
        if data.classes is None:
            raise InputError("train.per_class needs an image-level class for every training image")
        counts = data.classes.bincount(minlength=data.num_image_classes).tolist()
        for k, rows in enumerate(counts):
            if rows == 0:
                raise InputError(f"train.per_class: image class {k} has no training images")
    elif config.train.batch_size * world_size > len(data.pairs):
        ranks = f" x {world_size} ranks" if world_size > 1 else ""
        raise InputError(
            f"train.batch_size {config.train.batch_size}{ranks} is larger than the training "
            f"set ({len(data.pairs)} rows: patches or images); lower train.batch_size or add data"
        )
    stage = config.mask_stage
    if stage is not None:
        _check_device(stage.train.device, "mask_stage.train.device")
        rows = len(data.pairs)
        if stage.foreground_only:
            from synthmed.data.arrays import with_foreground_only

            rows = len(with_foreground_only(data).pairs)
        if stage.train.batch_size > rows:
            raise InputError(
                f"mask_stage.train.batch_size {stage.train.batch_size} is larger than the "
                f"mask stage's training set ({rows} rows); lower it or add data"
            )
        if config.train.privacy is not None and stage.train.privacy is None:
            raise InputError(
                "train.privacy is set but mask_stage.train.privacy is not: the mask GAN also "
                "learns from the training label maps; give it a privacy budget too"
            )
        _check_privacy_request(stage.train, stage.model, rows, world_size, "mask_stage.")
    _check_privacy_request(config.train, config.model, len(data.pairs), world_size)


def _check_privacy_request(tcfg, mcfg, rows: int, world_size: int, prefix: str = "") -> None:
    """A private run's one-line refusals (training/privacy.py), before the run folder exists."""
    if tcfg.privacy is None:
        return
    from synthmed.training.methods import METHODS
    from synthmed.training.privacy import check_private_run

    try:
        method = METHODS.get(tcfg.method)
    except KeyError as exc:
        raise InputError(f"{prefix}train.method: {exc.args[0]}") from None
    try:
        check_private_run(tcfg, rows, world_size, method.critic_steps, mcfg.options)
    except InputError as exc:
        raise InputError(f"{prefix}{exc.problem}" if prefix else exc.problem) from None


def _check_device(name: str, key: str) -> None:
    from synthmed.devices import resolve_device

    try:
        resolve_device(name)
    except InputError as exc:
        raise InputError(f"{key}: {exc.problem}") from None


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
    mask_stage_from: str | Path | None = None,
):
    """Train the configured generator into ``run_dir``.

    Args:
        config: resolved run config.
        run_dir: output folder (created).
        base_dir: folder relative data paths are resolved against (the config file's).
        resume: continue from ``checkpoints/last.pt``.
        mask_stage_from: another run folder whose finished mask stage was trained with the
            same data and mask-stage settings: copied instead of trained again (cascades
            that differ only in stage II, e.g. Platscher's SPADE and pix2pix arms).

    Returns:
        ``synthmed.training.loop.TrainResult``.
    """
    from synthmed import distributed
    from synthmed.devices import resolve_device

    _check_device(config.train.device, "train.device")
    with distributed.session(resolve_device(config.train.device).type):
        return _train(config, Path(run_dir), base_dir, resume, quiet, mask_stage_from)


def _train(config: RunConfig, run_dir: Path, base_dir, resume, quiet, mask_stage_from):
    """:func:`train` inside the torchrun process group (if any): every rank trains, rank 0
    alone writes the run folder's files."""
    from synthmed import distributed
    from synthmed.data.arrays import prepare_gan_data
    from synthmed.training.loop import train_gan

    resume = resume or _restarted_with_checkpoint(run_dir)
    _check_run_dir(run_dir, resume)
    config = absolutize_paths(config, Path(base_dir) if base_dir else None)
    if resume:
        saved = load_run_config(run_dir)
        if saved.model_dump(exclude={"train"}) != config.model_dump(exclude={"train"}):
            raise InputError(
                "--resume with a config whose data/model differ from the run's", run_dir
            )
    data = prepare_gan_data(config.data)
    _check_training_request(config, data, distributed.world_size())
    distributed.barrier()  # every rank has checked the run folder before rank 0 writes to it
    if distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)  # only now: bad input leaves nothing behind
        write_text(run_dir / "config.yaml", dump_yaml(config))
        _write_data_artifacts(run_dir, data)
    log.info("training on %d pairs of shape %s", len(data.pairs), tuple(data.pairs.shape[1:]))
    if config.mask_stage is not None:
        _train_mask_stage(config, data, run_dir, resume, quiet, mask_stage_from)
    if config.train.per_class:
        return _train_per_class(config, data, run_dir, resume, quiet)
    return train_gan(config, data, run_dir, resume=resume, quiet=quiet)


def _restarted_with_checkpoint(run_dir: Path) -> bool:
    """True in a worker that torchrun restarted (``--max-restarts``: it sets
    ``TORCHELASTIC_RESTART_COUNT`` > 0) when the failed attempt left ``checkpoints/last.pt``:
    the restart runs the same command, which must then continue the run, not refuse it."""
    import os

    from synthmed.checkpoints import find_last_checkpoint

    if os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") in ("", "0"):
        return False
    if find_last_checkpoint(run_dir) is None:
        return False
    log.warning("torchrun restart: resuming %s from its last checkpoint", run_dir)
    return True


def _train_per_class(config: RunConfig, data, run_dir: Path, resume: bool, quiet: bool):
    """Frid-Adar 2018: one generator per image-level class, each on that class's rows only."""
    from dataclasses import replace

    from synthmed.checkpoints import class_run_dir
    from synthmed.training.loop import train_gan

    if data.classes is None:
        raise InputError("train.per_class needs an image-level class for every training image")
    result = None
    for k in range(data.num_image_classes):
        rows = data.classes == k
        if not bool(rows.any()):
            raise InputError(f"train.per_class: class {k} has no training images")
        subset = replace(data, pairs=data.pairs[rows], classes=None, num_image_classes=0)
        class_dir = class_run_dir(run_dir, k)
        class_dir.mkdir(parents=True, exist_ok=True)
        resume_k = resume and (class_dir / "checkpoints" / "last.pt").is_file()
        config_k = _class_config(config, k, len(subset.pairs))
        result = train_gan(config_k, subset, class_dir, resume=resume_k, quiet=quiet)
    return result


def _class_config(config: RunConfig, k: int, rows: int) -> RunConfig:
    """The repair a per-class user expects: one batch size is set for every class, and a class
    with fewer training rows than that trains with batches of all its rows (logged), instead
    of batches that repeat its images."""
    if config.train.batch_size <= rows:
        return config
    log.warning(
        "train.per_class: class %d has %d training rows, fewer than train.batch_size %d; "
        "its generator trains with batches of %d",
        k,
        rows,
        config.train.batch_size,
        rows,
    )
    train = config.train.model_copy(update={"batch_size": rows})
    return config.model_copy(update={"train": train})


def _train_mask_stage(
    config: RunConfig, data, run_dir: Path, resume: bool, quiet: bool, reuse_from=None
) -> None:
    """Stage I of a cascade: the mask GAN learns the label maps of the same training data."""
    from synthmed.sampling.conditions import MASK_STAGE
    from synthmed.training.loop import train_gan

    stage_cfg = config.model_copy(
        update={
            "model": config.mask_stage.model,
            "train": config.mask_stage.train,
            "mask_stage": None,
            "name": f"{config.name}-{MASK_STAGE}",
        }
    )
    if config.mask_stage.foreground_only:
        from synthmed.data.arrays import with_foreground_only

        data = with_foreground_only(data)
        log.info("mask stage: %d training maps with foreground", len(data.pairs))
    if config.mask_stage.size is not None:
        from synthmed.data.arrays import resized_pairs

        full_size = list(data.spatial_size)
        data = resized_pairs(data, config.mask_stage.size)
        model = stage_cfg.model.model_copy(
            update={"options": {**stage_cfg.model.options, "output_size": full_size}}
        )
        stage_cfg = stage_cfg.model_copy(update={"model": model})
        log.info("mask stage: trained at %s, sampled at %s", config.mask_stage.size, full_size)
    stage_dir = run_dir / MASK_STAGE
    last = stage_dir / "checkpoints" / "last.pt"
    if resume and last.is_file() and _steps_done(last) >= stage_cfg.train.steps:
        return
    if reuse_from is not None and _copy_finished_stage(
        Path(reuse_from) / MASK_STAGE, stage_dir, stage_cfg
    ):
        log.info("mask stage: copied from %s (same data and settings)", reuse_from)
        return
    stage_dir.mkdir(exist_ok=True)
    write_text(stage_dir / "config.yaml", dump_yaml(stage_cfg))
    train_gan(stage_cfg, data, stage_dir, resume=resume and last.is_file(), quiet=quiet)


def _steps_done(checkpoint: Path) -> int:
    from synthmed.checkpoints import load_checkpoint

    return int(load_checkpoint(checkpoint)["step"])


def _copy_finished_stage(source: Path, stage_dir: Path, stage_cfg: RunConfig) -> bool:
    """Copy ``source`` (a mask-stage folder) to ``stage_dir`` when it was trained to the end
    on the same data with the same model and training settings (what decides its weights;
    the run's name, preset, sampling and evaluation do not); False, copying nothing,
    otherwise."""
    import shutil

    last = source / "checkpoints" / "last.pt"
    if not (source / "config.yaml").is_file() or not last.is_file():
        return False
    try:
        saved = read_run_config(source)
    except InputError:  # written by an older version: train instead
        return False
    decides = {"data", "model", "train"}
    if saved.model_dump(include=decides) != stage_cfg.model_dump(include=decides):
        return False
    if _steps_done(last) < stage_cfg.train.steps:
        return False
    partial = stage_dir.with_name(stage_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)  # whole or not at all: renamed into place when complete
    write_text(partial / "config.yaml", dump_yaml(stage_cfg))
    shutil.rmtree(stage_dir, ignore_errors=True)
    partial.rename(stage_dir)
    return True


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config saved in a run folder."""
    return read_run_config(run_dir)


def sample(
    run_dir: str | Path,
    n: int | None = None,
    seed: int | None = None,
    formats: list[str] | None = None,
    out: str | Path | None = None,
    threshold: float | None = None,
    device: str = "auto",
    quiet: bool = False,
    label_source: str | None = None,
    edit_lesions: bool | None = None,
    lesion_sizes: list[int] | None = None,
    lesion_centres: list[list[float]] | None = None,
    exclude_near_copies: bool = False,
    quantile: float | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    allow_privacy_risk: str | None = None,
    audit_only: bool = False,
) -> Path:
    """Export a labelled synthetic dataset from a trained run (defaults from ``sample:``).

    ``steps`` / ``guidance_scale``: diffusion sampler step count and classifier-free guidance
    scale (default ``sample.steps`` / ``sample.guidance_scale``, else the model's own).

    The export gate (``sample.gate``, on by default; :mod:`synthmed.evaluation.gate`) drops
    and counts near-copies of training images at the ``quantile`` threshold and refuses a
    dataset whose near-copy rate or membership AUC is above its limits: ``GateRefused`` (an
    ``InputError``) with one line, and nothing written. ``allow_privacy_risk`` (or
    ``sample.gate.allow_privacy_risk``): the reason to write it anyway, recorded in
    ``gate.json``, ``dataset.json`` and the manifest. ``audit_only``: record the gate's
    numbers but keep every sample and never refuse (a dataset to evaluate, not to share; the
    reproduction runner's); ``synthmed export`` refuses such a folder without an override.

    ``exclude_near_copies`` drops samples closer to a training image than the ``quantile``
    (default ``evaluate.near_copy_quantile``) of held-out real images; recorded in the manifest
    and ``filtering.json`` (:func:`synthmed.evaluation.filtering.filter_near_copies`).

    Translator runs take their label maps from ``label_source`` (auto: the mask stage when the
    run has one, else the training label maps, optionally lesion-edited).

    ``formats`` beyond png/nifti (nnunet, monai, npz, dicom) are written from the sampled
    dataset into ``<out>/../export/<format>`` by :mod:`synthmed.export`.
    """
    from synthmed import distributed
    from synthmed.devices import resolve_device

    _check_device(device, "--device")
    with distributed.session(resolve_device(device).type):
        return _sample(
            run_dir, n, seed, formats, out, threshold, device, quiet, label_source,
            edit_lesions, lesion_sizes, lesion_centres, exclude_near_copies, quantile, steps,
            guidance_scale, allow_privacy_risk, audit_only,
        )  # fmt: skip


def _sample(
    run_dir, n, seed, formats, out, threshold, device, quiet, label_source, edit_lesions,
    lesion_sizes, lesion_centres, exclude_near_copies, quantile, steps, guidance_scale,
    allow_privacy_risk, audit_only,
) -> Path:  # fmt: skip
    """:func:`sample` inside the torchrun process group (if any): every rank makes its block
    of shards; rank 0 alone merges them and writes filters and exports."""
    from synthmed import distributed
    from synthmed.sampling.export import export_synthetic

    cfg = load_run_config(run_dir).sample
    formats = list(formats or cfg.formats)
    base = [f for f in formats if f in ("png", "nifti")] or ["png"]
    n = n if n is not None else cfg.n
    threshold = threshold if threshold is not None else cfg.label_threshold
    out = _check_sample_outputs(Path(run_dir), out, n, threshold, cfg.batch_size, formats)
    if quantile is None:
        quantile = load_run_config(run_dir).evaluate.near_copy_quantile
    elif not 0 < quantile < 1:  # also NaN; checked before the gate and sampling run
        raise InputError(f"--quantile {quantile:g} must be in (0, 1) (a share of distances)")
    if label_source is not None and label_source not in LABEL_SOURCES:
        raise InputError(
            f"--label-source '{label_source}' is not one of {', '.join(LABEL_SOURCES)}"
        )
    gate = _export_gate(Path(run_dir), cfg.gate, quantile, allow_privacy_risk, device, audit_only)
    folder = export_synthetic(
        run_dir,
        out_dir=out,
        n=n,
        seed=seed if seed is not None else cfg.seed,
        formats=base,
        threshold=threshold,
        batch_size=cfg.batch_size,
        device=device,
        quiet=quiet,
        label_source=label_source or cfg.label_source,
        edit_lesions=cfg.edit_lesions if edit_lesions is None else edit_lesions,
        lesion_value=cfg.lesion_value,
        lesion_sizes=lesion_sizes or cfg.lesion_sizes,
        lesion_centres=lesion_centres or cfg.lesion_centres,
        label_warp=cfg.warp_labels.model_dump() if cfg.warp_labels.enabled else None,
        weights=cfg.weights,
        checkpoint=cfg.checkpoint,
        steps=steps if steps is not None else cfg.steps,
        guidance_scale=guidance_scale if guidance_scale is not None else cfg.guidance_scale,
        finalize=gate,
    )
    if not distributed.is_main():
        return folder
    if exclude_near_copies:
        from synthmed.evaluation.filtering import filter_near_copies

        filter_near_copies(run_dir, folder, quantile)
    extra = [f for f in formats if f not in ("png", "nifti")]
    if extra:
        from synthmed.export import export_dataset

        for fmt in extra:
            export_dataset(
                folder,
                fmt,
                folder.parent / "export" / fmt,
                run_dir=Path(run_dir),
                quiet=quiet,
                allow_privacy_risk=allow_privacy_risk,
            )
    return folder


def _export_gate(
    run_dir: Path, settings, quantile: float, reason: str | None, device: str, audit_only: bool
):
    """The configured export gate, with ``--allow-privacy-risk REASON`` applied."""
    from synthmed.evaluation.gate import prepare_gate

    if not 0.0 < quantile < 1.0:
        raise InputError(f"--quantile must be in (0, 1), got {quantile}")
    if reason is not None:
        if not reason.strip():
            raise InputError(
                "--allow-privacy-risk needs a reason (who accepted the risk and why); "
                "it is recorded with the dataset"
            )
        settings = settings.model_copy(update={"allow_privacy_risk": " ".join(reason.split())})
    return prepare_gate(run_dir, settings, quantile, device, audit_only)


def _check_sample_outputs(run_dir: Path, out, n, threshold, batch_size, formats) -> Path:
    """Refuse a bad request before the generator is loaded: ``n`` < 1, a threshold outside
    the tanh range, an unknown format, or a dataset/export folder that writing would damage
    (a file, a folder of other files, the run folder itself). Returns the dataset folder."""
    from synthmed.export import export_target
    from synthmed.outputs import check_output_dir, check_sample_args

    check_sample_args(n, threshold, batch_size)
    folder = Path(out) if out is not None else run_dir / "synthetic"
    check_output_dir(folder, protected={"the run folder": run_dir})
    for fmt in (f for f in formats if f not in ("png", "nifti")):
        target = export_target(fmt, folder.parent / "export" / fmt)
        check_output_dir(target, option=f"--format {fmt}", protected={"the run folder": run_dir})
    return folder


def evaluate(
    run_dir: str | Path,
    device: str = "auto",
    quiet: bool = False,
    protocols: list[str] | None = None,
    sizes: list[int | str] | None = None,
    seeds: int | list[int] | None = None,
    overrides: list[str] | None = None,
    settings: EvaluateConfig | None = None,
) -> dict:
    """Utility, fidelity and privacy of the run's synthetic set; writes ``metrics.json``.

    Samples the run first when it has no ``synthetic/`` folder yet. ``settings`` replaces the
    run config's whole ``evaluate`` section (the reproduction runner passes its experiment's);
    ``protocols`` (names or ``all``), ``sizes`` (real patients, ints or ``all``), ``seeds``
    (N -> seeds 0..N-1, or a list) and ``overrides`` (``evaluate.*`` keys, e.g.
    ``evaluate.utility.steps=100``) then change single settings; metrics.json records them.
    """
    from synthmed import distributed
    from synthmed.devices import resolve_device

    _check_device(device, "--device")
    with distributed.session(resolve_device(device).type):
        return _evaluate(run_dir, device, quiet, protocols, sizes, seeds, overrides, settings)


def _evaluate(run_dir, device, quiet, protocols, sizes, seeds, overrides, settings) -> dict:
    """:func:`evaluate` inside the torchrun process group (if any): every rank evaluates (the
    utility trainings and the feature extraction split over the ranks, the other sections
    repeated on each), rank 0 alone writes the files."""
    from synthmed import distributed
    from synthmed.evaluation.run import evaluate_run, with_evaluate_overrides
    from synthmed.outputs import check_writable

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    check_writable(run_dir, "RUN_DIR")  # metrics.json and evaluation/ are written there
    if settings is not None:
        config = config.model_copy(update={"evaluate": settings})
    config = with_evaluate_overrides(config, protocols, sizes, seeds, overrides)
    synth_dir = run_dir / "synthetic"
    if not (synth_dir / "manifest.csv").is_file():  # every rank sees the same answer
        n = config.evaluate.n_synthetic or config.sample.n
        sample(run_dir, n=n, device=device, quiet=quiet)  # sharded over the ranks as well
    quiet = quiet or not distributed.is_main()
    metrics = evaluate_run(config, run_dir, synth_dir, device=device, quiet=quiet)
    if distributed.is_main():
        write_json(run_dir / "metrics.json", metrics)
    distributed.barrier()  # every rank returns once metrics.json exists
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
    "train.checkpoint_every=2",
    "model.options.sample_steps=2",
    "sample.n=8",
    "evaluate.utility.steps=4",
    "evaluate.utility.val_every=2",
    "evaluate.utility.channels=[8,16]",
    "evaluate.utility.batch_size=4",
]


def _clear_run(out: Path) -> None:
    """The demo always starts fresh: remove the artefacts of an earlier demo run only."""
    import shutil

    for name in ("checkpoints", "samples", "synthetic", "tensorboard", "evaluation", "export"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("train_log.csv", "metrics.json", "report.html"):
        (out / name).unlink(missing_ok=True)
