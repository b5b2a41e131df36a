"""Seeded image+label generation from a trained run, exported with a provenance manifest.

Each sample is generated from its own seed (StyleGAN2-ADA convention), so sample ``i`` is
the same image whatever ``n`` or the batch size was, and the file name carries the seed.
The whole dataset folder is written to a temporary folder and renamed when complete.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthmed import __version__
from synthmed.atomic import atomic_dir, write_text
from synthmed.data.pairs import decode_pairs
from synthmed.data.writers import write_label_png, write_nifti, write_png
from synthmed.errors import InputError
from synthmed.progress import stage
from synthmed.training.checkpoint import file_sha256, latest_checkpoint, load_checkpoint
from synthmed.training.loop import build_model, resolve_device

MANIFEST_FIELDS = [
    "index",
    "seed",
    "image_png",
    "label_png",
    "image_nifti",
    "label_nifti",
    "foreground_fraction",
    "model",
    "checkpoint",
    "checkpoint_sha256",
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


def load_generator(checkpoint: str | Path, device: str = "auto") -> LoadedGenerator:
    """Rebuild the model a checkpoint was trained with and load its generator weights."""
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    model = build_model(state["model_name"], state["model_kwargs"])
    model.generator.load_state_dict(state["generator"])
    model = model.to(resolve_device(device)).eval()
    return LoadedGenerator(
        model=model,
        image_channels=int(state["model_kwargs"]["image_channels"]),
        model_name=state["model_name"],
        checkpoint=checkpoint,
        checkpoint_sha256=file_sha256(checkpoint),
        config_hash=state["config_hash"],
        config=state["config"],
    )


def latents_for_seeds(seeds: list[int], latent_dim: int) -> torch.Tensor:
    """One latent vector per seed, each from its own generator: independent of batching."""
    return torch.stack(
        [torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    )


@torch.no_grad()
def generate_pairs(
    gen: LoadedGenerator, seeds: list[int], threshold: float = 0.0, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, *spatial) in [0, 1] and label maps (N, *spatial) for the given seeds."""
    device = next(gen.model.parameters()).device
    images, labels = [], []
    for start in range(0, len(seeds), batch_size):
        z = latents_for_seeds(seeds[start : start + batch_size], gen.model.latent_dim)
        pairs = gen.model.generator(z.to(device)).float().cpu()
        img, lab = decode_pairs(pairs, gen.image_channels, threshold)
        images.append(img.numpy())
        labels.append(lab.numpy())
    return np.concatenate(images), np.concatenate(labels)


def _write_sample(folder: Path, name: str, image: np.ndarray, label: np.ndarray, formats) -> dict:
    row = {"image_png": "", "label_png": "", "image_nifti": "", "label_nifti": ""}
    if "png" in formats:
        write_png(folder / "images" / f"{name}.png", image)
        write_label_png(folder / "labels" / f"{name}.png", label.astype(np.uint8))
        row.update(image_png=f"images/{name}.png", label_png=f"labels/{name}.png")
    if "nifti" in formats:
        write_nifti(folder / "images" / f"{name}.nii.gz", image)
        write_nifti(folder / "labels" / f"{name}.nii.gz", label[None].astype(np.int16))
        row.update(image_nifti=f"images/{name}.nii.gz", label_nifti=f"labels/{name}.nii.gz")
    return row


def _manifest_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS)
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
) -> Path:
    """Generate ``n`` labelled samples (seeds ``seed .. seed+n-1``) from a run's last checkpoint.

    Returns:
        The dataset folder (default ``run_dir/synthetic``) with ``images/``, ``labels/`` and
        ``manifest.csv``.
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "synthetic"
    gen = load_generator(latest_checkpoint(run_dir), device)
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
    )


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
) -> Path:
    """Write ``n`` samples of a loaded generator as a dataset folder with its manifest.

    The folder is built under a temporary name and renamed when complete.
    """
    unknown = set(formats) - {"png", "nifti"}
    if unknown or not formats:
        raise InputError(f"unknown export format(s) {sorted(unknown)}; choose png and/or nifti")
    out_dir = Path(out_dir)
    seeds = list(range(seed, seed + n))
    label = checkpoint_label or gen.checkpoint.name
    rows = []
    with atomic_dir(out_dir) as tmp, stage("sample", n, quiet) as bar:
        for start in range(0, n, batch_size):
            chunk = seeds[start : start + batch_size]
            images, labels = generate_pairs(gen, chunk, threshold, batch_size)
            for offset, (img, lab) in enumerate(zip(images, labels, strict=True)):
                index = start + offset
                name = f"sample_{index:06d}_seed{chunk[offset]:08d}"
                row = _write_sample(tmp, name, img, lab, formats)
                rows.append(_manifest_row(index, chunk[offset], row, lab, gen, label))
            bar.advance(len(chunk))
        write_text(tmp / "manifest.csv", _manifest_text(rows))
    return out_dir


def _manifest_row(index, seed, files, label, gen: LoadedGenerator, checkpoint: str) -> dict:
    return {
        "index": index,
        "seed": seed,
        **files,
        "foreground_fraction": f"{float((label > 0).mean()):.5f}",
        "model": gen.model_name,
        "checkpoint": checkpoint,
        "checkpoint_sha256": gen.checkpoint_sha256,
        "config_hash": gen.config_hash,
        "synthmed_version": __version__,
    }
