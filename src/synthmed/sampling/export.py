"""Seeded image+label generation from a trained run, exported with a provenance manifest.

Each sample is generated from its own seed (StyleGAN2-ADA convention), so sample ``i`` is
the same image whatever ``n`` or the batch size was, and the file name carries the seed.
The dataset is made in shards (:mod:`synthmed.sampling.shards`): split over the ranks under
torchrun, resumable, and renamed into place when complete. A ``finalize`` hook (the export
gate of :mod:`synthmed.evaluation.gate`, passed in by :func:`synthmed.api.sample` so that
sampling does not depend on evaluation) sees the finished temporary folder first and may edit
it, or raise to leave the output folder untouched (the unfinished folder is then removed).
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthmed import __version__
from synthmed.atomic import write_json, write_text
from synthmed.checkpoints import (
    class_checkpoints,
    file_sha256,
    load_checkpoint,
    sampling_checkpoint,
)
from synthmed.data.pairs import decode_pairs
from synthmed.data.writers import write_label_png, write_nifti, write_png
from synthmed.devices import resolve_device
from synthmed.distributed import local_device
from synthmed.errors import InputError
from synthmed.models.base import synthesize_pairs
from synthmed.models.build import build_model
from synthmed.outputs import check_output_dir, check_sample_args
from synthmed.privacy_record import checkpoint_record, dataset_privacy
from synthmed.sampling.conditions import Conditions
from synthmed.sampling.shards import sample_in_shards

Finalize = Callable[[Path], object]
"""Called with the complete temporary dataset folder before it is renamed into place."""

MANIFEST_FIELDS = [
    "index",
    "seed",
    "image_png",
    "label_png",
    "image_nifti",
    "label_nifti",
    "foreground_fraction",
    "class",
    "label_source",
    "label_row",
    "label_seed",
    "label_checkpoint_sha256",
    "edits",
    "label_warp",
    "model",
    "checkpoint",
    "checkpoint_sha256",
    "generator_weights",
    "sampler",
    "config_hash",
    "synthmed_version",
]


@dataclass
class LoadedGenerator:
    model: torch.nn.Module
    image_channels: int
    model_name: str
    checkpoint: Path
    checkpoint_sha256: str
    config_hash: str
    config: dict
    weights: str = "raw"  # "ema" when the moving-average generator weights were loaded
    privacy: dict | None = None  # the checkpoint's train.privacy record (epsilon spent)


def generator_state(state: dict, weights: str = "ema") -> tuple[dict, str]:
    """The generator weights to sample with: the EMA copy when asked for and stored (runs
    trained before EMA existed, or with ``train.ema_decay: 0``, have only the raw ones)."""
    if weights not in ("ema", "raw"):
        raise InputError(f"sample.weights must be 'ema' or 'raw', got '{weights}'")
    if weights == "ema" and "generator_ema" in state:
        return state["generator_ema"], "ema"
    return state["generator"], "raw"


def load_generator(
    checkpoint: str | Path, device: str = "auto", weights: str = "ema"
) -> LoadedGenerator:
    """Rebuild the model a checkpoint was trained with and load its generator weights
    (``weights``: ``ema`` = moving average when stored, else ``raw``)."""
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    model = build_model(state["model_name"], state["model_kwargs"])
    gen_state, used = generator_state(state, weights)
    model.generator.load_state_dict(gen_state)
    model = model.to(resolve_device(device)).eval()
    return LoadedGenerator(
        model=model,
        image_channels=int(state["model_kwargs"]["image_channels"]),
        model_name=state["model_name"],
        checkpoint=checkpoint,
        checkpoint_sha256=file_sha256(checkpoint),
        config_hash=state["config_hash"],
        config=state["config"],
        weights=used,
        privacy=checkpoint_record(state),
    )


def configure_sampler(
    gen: LoadedGenerator, steps: int | None, guidance_scale: float | None
) -> None:
    """Apply ``sample.steps`` / ``sample.guidance_scale`` to the loaded model (InputError
    naming the setting when the model has no such sampler setting or the value is out of
    range)."""
    try:
        gen.model.configure_sampling(steps=steps, guidance_scale=guidance_scale)
    except ValueError as exc:
        raise InputError(f"sample.steps / sample.guidance_scale: {exc}", gen.checkpoint) from None


def latents_for_seeds(seeds: list[int], latent_dim: int) -> torch.Tensor:
    """One latent vector per seed, each from its own generator: independent of batching."""
    return torch.stack(
        [torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    )


def default_classes(gen: LoadedGenerator, seeds: list[int]) -> np.ndarray | None:
    """Class per sample for class-conditional models: ``seed % num_classes`` (balanced for
    consecutive seeds); None for other kinds."""
    if not gen.model.needs_classes:
        return None
    return np.asarray(seeds, dtype=np.int64) % gen.model.num_classes


@torch.no_grad()
def generate_pairs(
    gen: LoadedGenerator,
    seeds: list[int],
    threshold: float = 0.0,
    batch_size: int = 64,
    classes: np.ndarray | None = None,
    conditions: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, *spatial) in [0, 1] and label maps (N, *spatial) for the given seeds.

    Args:
        classes: (N,) class per sample for class-conditional models (default
            :func:`default_classes`).
        conditions: (N, K, *S) one-hot label maps for translators (see
            ``synthmed.sampling.conditions``); the label of each sample is its condition.
    """
    model = gen.model
    device = next(model.parameters()).device
    if classes is None:
        classes = default_classes(gen, seeds)
    images, labels = [], []
    for start in range(0, len(seeds), batch_size):
        stop = min(start + batch_size, len(seeds))
        z = (
            latents_for_seeds(seeds[start:stop], model.latent_dim).to(device)
            if model.latent_dim
            else None
        )
        cls = None if classes is None else torch.as_tensor(classes[start:stop]).to(device)
        cond = None if conditions is None else conditions[start:stop].to(device)
        pairs = synthesize_pairs(model, z, cls, cond).float().cpu()
        img, lab = decode_pairs(pairs, gen.image_channels, threshold)
        images.append(img.numpy())
        labels.append(lab.numpy())
    return np.concatenate(images), np.concatenate(labels)


def _write_sample(
    folder: Path, name: str, image: np.ndarray, label: np.ndarray | None, formats
) -> dict:
    """Write one image (and its label map unless the model makes images only)."""
    row = {"image_png": "", "label_png": "", "image_nifti": "", "label_nifti": ""}
    if "png" in formats:
        write_png(folder / "images" / f"{name}.png", image)
        row["image_png"] = f"images/{name}.png"
        if label is not None:
            write_label_png(folder / "labels" / f"{name}.png", label.astype(np.uint8))
            row["label_png"] = f"labels/{name}.png"
    if "nifti" in formats:
        write_nifti(folder / "images" / f"{name}.nii.gz", image)
        row["image_nifti"] = f"images/{name}.nii.gz"
        if label is not None:
            write_nifti(folder / "labels" / f"{name}.nii.gz", label[None].astype(np.int16))
            row["label_nifti"] = f"labels/{name}.nii.gz"
    return row


def _manifest_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def export_synthetic(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    n: int = 256,
    seed: int = 0,
    formats: list[str] | tuple[str, ...] = ("png",),
    threshold: float = 0.0,
    batch_size: int = 64,
    device: str = "auto",
    quiet: bool = False,
    label_source: str = "auto",
    edit_lesions: bool = False,
    lesion_value: int | None = None,
    lesion_sizes: list[int] | None = None,
    lesion_centres: list[list[float]] | None = None,
    label_warp: dict | None = None,
    weights: str = "ema",
    checkpoint: str = "best",
    steps: int | None = None,
    guidance_scale: float | None = None,
    finalize: Finalize | None = None,
) -> Path:
    """Generate ``n`` labelled samples (seeds ``seed .. seed+n-1``) from a run's selected
    checkpoint (``checkpoint``: ``best`` = ``checkpoints/best.pt`` of the memorization-aware
    selection when there is one, else the last; ``weights``: its EMA generator when stored,
    or ``raw``). ``steps`` / ``guidance_scale``: the sampler's step count and class guidance
    scale of diffusion models (default: the model's own; an error for one-pass GANs).

    Translators (pix2pix, SPADE) are driven by label maps from ``label_source`` (see
    :mod:`synthmed.sampling.conditions`); ``edit_lesions`` applies a random lesion edit to each
    training label map first (Shin 2018), recorded in the manifest's ``edits`` column;
    ``label_warp`` (``rotate``/``scale``/``translate``) then moves each map by a seeded affine
    warp (``label_warp`` column). ``finalize``: see :data:`Finalize` (default: none).

    Returns:
        The dataset folder (default ``run_dir/synthetic``) with ``images/``, ``labels/`` and
        ``manifest.csv``.
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "synthetic"
    check_sample_args(n, threshold, batch_size)
    check_output_dir(out_dir, protected={"the run folder": run_dir})
    device = str(local_device(resolve_device(device)))  # under torchrun: this rank's GPU
    request = {
        "n": n, "seed": seed, "formats": list(formats), "threshold": threshold,
        "batch_size": batch_size, "label_source": label_source, "edit_lesions": edit_lesions,
        "lesion_value": lesion_value, "lesion_sizes": lesion_sizes,
        "lesion_centres": lesion_centres, "label_warp": label_warp, "weights": weights,
        "checkpoint": checkpoint, "steps": steps, "guidance_scale": guidance_scale,
    }  # fmt: skip
    per_class = class_checkpoints(run_dir)
    if per_class:
        gens = {
            k: load_generator(sampling_checkpoint(path.parents[1], checkpoint), device, weights)
            for k, path in per_class.items()
        }
        for g in gens.values():
            configure_sampler(g, steps, guidance_scale)
        return _export_per_class(
            run_dir,
            gens,
            out_dir,
            n,
            seed,
            formats,
            threshold,
            batch_size,
            quiet,
            request,
            finalize,
        )
    gen = load_generator(sampling_checkpoint(run_dir, checkpoint), device, weights)
    configure_sampler(gen, steps, guidance_scale)
    conditions = None
    if gen.model.needs_condition:
        from synthmed.sampling.conditions import translator_conditions

        conditions = translator_conditions(
            run_dir,
            gen.model.label_channels + 1,
            label_source,
            edit_lesions,
            lesion_value,
            device,
            lesion_sizes,
            lesion_centres,
            label_warp,
        )
    return export_from_generator(
        gen,
        out_dir,
        n,
        seed,
        formats,
        threshold,
        batch_size,
        quiet,
        checkpoint_label=str(gen.checkpoint.relative_to(run_dir)),
        conditions=conditions,
        info=run_dataset_info(run_dir, gen),
        class_names=_class_names(run_dir),
        privacy=lambda rows: _run_privacy(run_dir, gen, rows),
        finalize=finalize,
        request=request,
    )


def _run_privacy(run_dir: Path, gen: LoadedGenerator, extra: list[dict] | None) -> dict:
    """The dataset's DP guarantee: the generator's record, composed with the mask stage's
    when a cascade drew the label maps (``synthmed.privacy_record``)."""
    from synthmed.sampling.conditions import mask_stage_checkpoint

    label_source = extra[0].get("label_source") if extra else None
    stages = {"generator": gen.privacy}
    mask = mask_stage_checkpoint(run_dir)
    if label_source == "mask_gan" and mask is not None:  # the cascade drew the maps
        stages["mask_stage"] = checkpoint_record(load_checkpoint(mask))
    return dataset_privacy(stages, label_source)


def _class_names(run_dir: Path) -> list[str] | None:
    from synthmed.config.loading import read_run_config

    return read_run_config(run_dir).data.train.class_names


def export_from_generator(
    gen: LoadedGenerator,
    out_dir: str | Path,
    n: int = 256,
    seed: int = 0,
    formats: list[str] | tuple[str, ...] = ("png",),
    threshold: float = 0.0,
    batch_size: int = 64,
    quiet: bool = False,
    checkpoint_label: str | None = None,
    conditions: Conditions | None = None,
    info=None,
    class_names: list[str] | None = None,
    privacy: dict | Callable[[list[dict]], dict] | None = None,
    finalize: Finalize | None = None,
    request: dict | None = None,
) -> Path:
    """Write ``n`` samples of a loaded generator as a dataset folder with its manifest and
    ``dataset.json`` (channel/label names, spacing, classes: ``info``, an ExportInfo; default
    names from the generator alone, 1 mm spacing; ``privacy``: the dataset's DP guarantee,
    default the generator's own record).

    Args:
        conditions: translators' label maps per batch of samples
            (:func:`synthmed.sampling.conditions.translator_conditions`).
        request: what else decides the samples (label source, sampler settings), for
            recognising an unfinished earlier run of the same request.
        finalize: called with the complete temporary folder before it is renamed into place.

    Samples are made in shards of ``batch_size`` (:mod:`synthmed.sampling.shards`): split over
    the ranks under torchrun, resumed after an interruption, renamed into place when complete.
    """
    unknown = set(formats) - {"png", "nifti"}
    if unknown or not formats:
        raise InputError(f"unknown export format(s) {sorted(unknown)}; choose png and/or nifti")
    check_sample_args(n, threshold, batch_size)
    out_dir = check_output_dir(out_dir)
    label = checkpoint_label or gen.checkpoint.name
    has_labels = getattr(gen.model, "label_channels", 1) > 0

    def make(folder: Path, start: int, stop: int) -> list[dict]:
        seeds = list(range(seed + start, seed + stop))
        classes = default_classes(gen, seeds)
        cond, extra = conditions(seeds, start) if conditions is not None else (None, None)
        images, labels = generate_pairs(gen, seeds, threshold, batch_size, classes, cond)
        rows = []
        for offset, (img, lab) in enumerate(zip(images, labels, strict=True)):
            name = f"sample_{start + offset:06d}_seed{seeds[offset]:08d}"
            row = _write_sample(folder, name, img, lab if has_labels else None, formats)
            row.update(extra[offset] if extra else {})
            if classes is not None:
                row["class"] = int(classes[offset])
            rows.append(_manifest_row(start + offset, seeds[offset], row, lab, gen, label))
        return rows

    def finish(folder: Path, rows: list[dict]) -> None:
        write_text(folder / "manifest.csv", _manifest_text(rows))
        dataset_priv = privacy(rows) if callable(privacy) else privacy
        dataset_priv = dataset_priv or dataset_privacy({"generator": gen.privacy}, None)
        _write_description(folder, gen, label, info, class_names, dataset_priv)
        _finalize(folder, finalize)

    request = {
        **(request or {}), "n": n, "seed": seed, "formats": list(formats),
        "threshold": threshold, "batch_size": batch_size, "checkpoint": label,
        "checkpoint_sha256": gen.checkpoint_sha256, "weights": gen.weights,
        "sampler": gen.model.sampler_description(), "synthmed_version": __version__,
    }  # fmt: skip
    return sample_in_shards(out_dir, request, n, batch_size, make, finish, quiet)


def _finalize(folder: Path, finalize: Finalize | None) -> None:
    """Run the finalize hook on the complete folder; if it refuses, remove the folder so that
    a refused dataset leaves nothing behind."""
    if finalize is None:
        return
    try:
        finalize(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _write_description(
    folder: Path, gen: LoadedGenerator, checkpoint: str, info, class_names, privacy: dict
):
    from synthmed.export.core import DATASET_JSON, dataset_description, run_export_info

    model = gen.model
    dims = len(model.spatial_size)
    if info is None:
        info = run_export_info(None, gen.image_channels, dims, max(model.label_channels, 1))
    generator = {
        "model": gen.model_name,
        "checkpoint": checkpoint,
        "checkpoint_sha256": gen.checkpoint_sha256,
        "generator_weights": gen.weights,
        "sampler": model.sampler_description(),
        "config_hash": gen.config_hash,
    }
    desc = dataset_description(info, gen.image_channels, dims, class_names, generator, privacy)
    write_json(folder / DATASET_JSON, desc)


def run_dataset_info(run_dir: Path, gen: LoadedGenerator):
    """Channel/label names from the run's config, spacing from its real data (sampling is
    the last stage that reads them; exporters read the folder's ``dataset.json``)."""
    from synthmed.export.core import run_export_info

    dims = len(gen.model.spatial_size)
    return run_export_info(run_dir, gen.image_channels, dims, max(gen.model.label_channels, 1))


def _manifest_row(index, seed, files, label, gen: LoadedGenerator, checkpoint: str) -> dict:
    return {
        "index": index,
        "seed": seed,
        **files,
        "foreground_fraction": f"{float((label > 0).mean()):.5f}",
        "model": gen.model_name,
        "checkpoint": checkpoint,
        "checkpoint_sha256": gen.checkpoint_sha256,
        "generator_weights": gen.weights,
        "sampler": gen.model.sampler_description(),
        "config_hash": gen.config_hash,
        "synthmed_version": __version__,
    }


def _export_per_class(
    run_dir: Path,
    gens: dict[int, LoadedGenerator],
    out_dir: Path,
    n: int,
    seed: int,
    formats,
    threshold: float,
    batch_size: int,
    quiet: bool,
    request: dict,
    finalize: Finalize | None = None,
) -> Path:
    """Class-balanced export of a per-class run (Frid-Adar 2018): sample ``i`` comes from the
    generator of class ``seed_i % K``, so consecutive seeds cycle through the classes."""
    keys = sorted(gens)

    def make(folder: Path, start: int, stop: int) -> list[dict]:
        rows = []
        for index in range(start, stop):
            s = seed + index
            k = keys[s % len(keys)]
            img, lab = generate_pairs(gens[k], [s], threshold)
            name = f"sample_{index:06d}_seed{s:08d}"
            has_labels = getattr(gens[k].model, "label_channels", 1) > 0
            files = _write_sample(folder, name, img[0], lab[0] if has_labels else None, formats)
            files["class"] = k
            checkpoint = str(gens[k].checkpoint.relative_to(run_dir))
            rows.append(_manifest_row(index, s, files, lab[0], gens[k], checkpoint))
        return rows

    def finish(folder: Path, rows: list[dict]) -> None:
        write_text(folder / "manifest.csv", _manifest_text(rows))
        first = gens[keys[0]]
        info = run_dataset_info(run_dir, first)
        privacy = dataset_privacy({f"class_{k}": gens[k].privacy for k in keys}, None)
        _write_description(folder, first, "classes/class_*", info, _class_names(run_dir), privacy)
        _finalize(folder, finalize)

    request = {
        **request,
        "checkpoint_sha256": {str(k): g.checkpoint_sha256 for k, g in gens.items()},
        "synthmed_version": __version__,
    }
    return sample_in_shards(out_dir, request, n, batch_size, make, finish, quiet)
