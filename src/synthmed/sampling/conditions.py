"""Label maps that drive a translator (pix2pix, SPADE) at sampling time.

Sources:
  * ``cascade``: a mask GAN trained as the run's first stage (``RUN/mask_stage``) makes a new
    label map from each seed (Guibas 2017 dual GAN; Platscher 2021 lesion GAN).
  * ``train``: the run's real training label maps, sample ``i`` using map ``seed % N``,
    optionally with a random lesion edit per sample (Shin 2018).
  * ``cases``: new tumour cases (Shin 2018): a lesion from the training maps is inserted into
    another training map's anatomy (its own lesion removed), inside the organ, at a chosen
    size (``lesion_sizes``, target area in pixels) and centre (``lesion_centres``), cycled
    over the samples; random where not given.
  * ``auto``: ``cascade`` when the run has a mask stage, else ``train``.
Every sample's source (and edit) is returned for the manifest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from synthmed.config.loading import read_run_config
from synthmed.data.pairs import decode_pairs, labels_to_onehot
from synthmed.errors import InputError

log = logging.getLogger(__name__)

MASK_STAGE = "mask_stage"


def mask_stage_checkpoint(run_dir: Path) -> Path | None:
    path = Path(run_dir) / MASK_STAGE / "checkpoints" / "last.pt"
    return path if path.is_file() else None


def _cascade_labels(mask_gen, seeds: list[int]) -> tuple[np.ndarray, list[dict]]:
    from synthmed.sampling.export import generate_pairs

    _, labels = generate_pairs(mask_gen, seeds)
    source = {"label_source": "mask_gan", "label_checkpoint_sha256": mask_gen.checkpoint_sha256}
    return labels, [{**source, "label_seed": s} for s in seeds]


def _mask_generator(run_dir: Path, device: str):
    from synthmed.sampling.export import load_generator

    ckpt = mask_stage_checkpoint(run_dir)
    if ckpt is None:
        raise InputError(
            "label source 'cascade' needs a trained mask stage (RUN/mask_stage)", run_dir
        )
    return load_generator(ckpt, device)


def _training_labels(run_dir: Path, with_images: bool = False):
    """The training label maps (N, *S) (and images (N, C, *S) in [0, 1] with ``with_images``)."""
    from synthmed.data.arrays import prepare_gan_data

    data = prepare_gan_data(read_run_config(run_dir).data)
    images, labels = decode_pairs(data.pairs, data.image_channels)
    return (labels.numpy(), images.numpy()) if with_images else labels.numpy()


def _edited(
    labels: np.ndarray,
    seeds: list[int],
    picks: np.ndarray,
    lesion_value: int,
    images: np.ndarray | None = None,
):
    from synthmed.sampling.edits import organ_mask_from_image, organ_mask_from_label

    out, records = [], []
    for seed, pick in zip(seeds, picks, strict=True):
        label = labels[pick]
        if not (label == lesion_value).any():  # nothing to edit (e.g. a slice without tumour)
            out.append(label)
            records.append("")
            continue
        tissue = [v for v in np.unique(label) if v not in (0, lesion_value)]
        # maps with anatomy labels (phantoms; LGG with data.preprocess.anatomy) keep the
        # lesion inside the organ; lesion-only maps (e.g. LGG tumour masks) have no organ
        # label: the organ is the body part seen in the paired training image (the whole
        # field of view when no image is given)
        if tissue:  # the lesion's own pixels are organ too (it displaced tissue there)
            organ = organ_mask_from_label(label, tissue) | (label == lesion_value)
        elif images is not None:
            organ = organ_mask_from_image(images[pick]) | (label == lesion_value)
        else:
            organ = np.ones(label.shape, bool)
        edited, record = _try_edits(label, lesion_value, np.random.default_rng(seed), organ)
        out.append(edited)
        records.append(record.to_manifest() if record is not None else "")
    # a map without the lesion (anatomy only, or empty) had nothing to edit: not a failure
    failed = sum(
        1
        for r, pick in zip(records, picks, strict=True)
        if not r and (labels[pick] == lesion_value).any()
    )
    if failed:
        log.warning(
            "%d of %d lesion edits failed %d times; those maps stay unedited "
            "(empty 'edits' in the manifest)",
            failed,
            len(records),
            EDIT_ATTEMPTS,
        )
    return np.stack(out), records


EDIT_ATTEMPTS = 8


def _try_edits(label: np.ndarray, lesion_value: int, rng: np.random.Generator, organ):
    """A random edit; a draw that cannot work (a tiny lesion rotated to nothing, no room to
    move) is followed by the next draw of the same generator, so results stay seeded."""
    from synthmed.sampling.edit_plan import random_edit
    from synthmed.sampling.edits import EditError

    for _ in range(EDIT_ATTEMPTS):
        try:
            return random_edit(label, lesion_value, rng, organ_mask=organ)
        except EditError:
            continue
    return label, None


def _tumour_cases(
    bank, seeds, lesion_value, sizes, centres, first: int = 0
) -> tuple[np.ndarray, list[dict]]:
    """One new case per seed: anatomy ``seed % N``, a lesion drawn with that seed's generator;
    sample ``first + k`` takes the ``(first + k)``-th of the cycled sizes and centres."""
    from synthmed.sampling.edit_plan import make_tumour_cases
    from synthmed.sampling.edits import lesion_components

    lesions = {}
    for i, label in enumerate(bank):
        parts = lesion_components(label, lesion_value)
        if parts:
            lesions[f"train:{i}"] = parts[0]
    if not lesions:
        raise InputError(f"no lesion (label {lesion_value}) in the training label maps")
    out, rows = [], []
    for k, seed in enumerate(seeds, start=first):
        size = None if not sizes else [sizes[k % len(sizes)]]
        centre = None if not centres else [centres[k % len(centres)]]
        ((label, record),) = make_tumour_cases(
            [bank[seed % len(bank)]],
            lesions,
            1,
            np.random.default_rng(seed),
            sizes=size,
            locations=centre,
            lesion_value=lesion_value,
            case_ids=[f"train:{seed % len(bank)}"],
        )
        out.append(label)
        rows.append(
            {"label_source": "cases", "label_row": seed % len(bank), "edits": record.to_manifest()}
        )
    return np.stack(out), rows


Conditions = Callable[[list[int], int], tuple[torch.Tensor, list[dict]]]
"""``conditions(seeds, first)``: one-hot maps and manifest provenance of the samples
``first, first + 1, ...`` with these seeds."""


def translator_conditions(
    run_dir: str | Path,
    num_classes: int,
    source: str = "auto",
    edit: bool = False,
    lesion_value: int | None = None,
    device: str = "cpu",
    lesion_sizes: list[int] | None = None,
    lesion_centres: list[list[float]] | None = None,
    warp: dict | None = None,
) -> Conditions:
    """The condition maker of a label source: what it reads (the mask generator, the training
    maps) is loaded once, here, and each call makes the maps of one batch of samples, so a
    shard of a dataset needs only its own samples' maps.

    ``warp`` (``rotate``, ``scale``, ``translate`` of ``sample.warp_labels``): each map, after
    its lesion edit, is moved by its sample's seeded affine warp
    (:mod:`synthmed.sampling.label_warp`), recorded in the manifest's ``label_warp``."""
    run_dir = Path(run_dir)
    if source == "auto":
        source = "cascade" if mask_stage_checkpoint(run_dir) else "train"
    if source not in ("cascade", "train", "cases"):
        raise InputError(f"unknown label source '{source}'; choose auto, cascade, train or cases")
    value = lesion_value if lesion_value is not None else num_classes - 1
    if source == "cascade":
        mask_gen = _mask_generator(run_dir, device)
    else:
        bank, bank_images = _training_labels(run_dir, with_images=True)

    def conditions(seeds: list[int], first: int) -> tuple[torch.Tensor, list[dict]]:
        if source == "cascade":
            labels, rows = _cascade_labels(mask_gen, seeds)
        elif source == "train":
            picks = np.array([s % len(bank) for s in seeds])
            labels = bank[picks]
            rows = [{"label_source": "train", "label_row": int(p)} for p in picks]
            if edit:
                labels, edits = _edited(bank, seeds, picks, value, bank_images)
                rows = [{**r, "edits": e} for r, e in zip(rows, edits, strict=True)]
        else:
            labels, rows = _tumour_cases(bank, seeds, value, lesion_sizes, lesion_centres, first)
        if warp:
            from synthmed.sampling.label_warp import warp_label_maps

            labels, warps = warp_label_maps(labels, seeds, **warp)
            rows = [{**r, "label_warp": w} for r, w in zip(rows, warps, strict=True)]
        cond = labels_to_onehot(torch.as_tensor(labels), num_classes)
        return cond, [
            {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()} for r in rows
        ]

    return conditions
