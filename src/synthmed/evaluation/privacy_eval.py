"""The privacy section of metrics.json, wired to a run folder.

Audits the exported synthetic rows against the generator's real training rows with held-out
real rows (validation + test patients) as the calibration set: nearest-neighbour distances and
calibrated near-copy flags per image and per patient, GAN-Leaks distance attacks, the Meehan et
al. 2020 data-copying test and, for pair GANs whose checkpoint holds the critic, the LOGAN
white-box attack on the critic's scores. The 16 closest synthetic/training pairs are written to
``RUN/evaluation/closest_pairs.png`` so the report can show them without recomputing anything.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthmed.data.pairs import encode_pairs
from synthmed.distributed import is_main
from synthmed.evaluation.fidelity import FeatureExtractor
from synthmed.evaluation.inputs import EvalInputs
from synthmed.evaluation.privacy import privacy_audit
from synthmed.report.figures import save_png, side_by_side_grid

log = logging.getLogger(__name__)

# Images larger than this (per side) are area-downsampled before the pixel NCC comparison.
MAX_PIXEL_SIDE = 64
CLOSEST_PAIRS_PNG = "evaluation/closest_pairs.png"


@torch.no_grad()
def _critic_outputs(critic: torch.nn.Module, pairs: torch.Tensor, device, batch: int = 256):
    out = [
        critic(pairs[i : i + batch].to(device)).reshape(-1).float().cpu()
        for i in range(0, len(pairs), batch)
    ]
    return torch.cat(out).numpy().astype(np.float64)


def critic_scores(inputs: EvalInputs, device: str | torch.device = "cpu") -> dict | None:
    """LOGAN scores: the trained critic on training pairs (members) and held-out pairs.

    Pairs are encoded exactly as in training. Only for models whose critic scores stored
    pairs (``critic_scores_pairs``) with segmentation labels (class-conditional and translator
    critics take other inputs); None otherwise.
    """
    ckpt = inputs.checkpoint
    if "critic" not in ckpt or inputs.task != "segmentation":
        return None
    if "classes" in inputs.checkpoint_path.parts:  # per-class run: one critic per class
        return None
    if inputs.num_classes != int(ckpt.get("num_classes", inputs.num_classes)):
        return None  # labels reduced to the lesion (evaluate.label_target): not the critic's

    from synthmed.models.build import build_model  # the checkpoint's own architecture

    model = build_model(ckpt["model_name"], ckpt["model_kwargs"])
    if not model.critic_scores_pairs or model.critic is None:
        return None
    if ckpt.get("privacy"):  # a DP-SGD critic: GroupNorm, plain weights (as trained)
        from synthmed.models.private import make_critic_private

        make_critic_private(model.critic)
    model.critic.load_state_dict(ckpt["critic"])
    critic = model.critic.to(device).eval()
    real, hold, nc = inputs.real, inputs.holdout, inputs.num_classes
    return {
        "members": _critic_outputs(critic, encode_pairs(real.images, real.labels, nc), device),
        "nonmembers": _critic_outputs(critic, encode_pairs(hold.images, hold.labels, nc), device),
    }


def save_closest_pairs(inputs: EvalInputs, pairs: list[dict], path: Path) -> Path | None:
    """Synthetic image | nearest training image, labels overlaid, 4 pairs per row."""
    if not pairs:
        return None
    s_idx = np.array([p["synthetic_index"] for p in pairs])
    t_idx = np.array([p["train_index"] for p in pairs])
    syn, real = inputs.synthetic, inputs.real
    rgb = side_by_side_grid(
        syn.images[s_idx],
        real.images[t_idx],
        None if syn.labels is None else syn.labels[s_idx],
        None if real.labels is None else real.labels[t_idx],
        ncol=4,
    )
    return save_png(path, rgb, min_size=768)


def privacy_section(
    inputs: EvalInputs,
    run_dir: Path,
    extractor: FeatureExtractor | None,
    quantile: float,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """privacy_audit of the synthetic rows plus the closest-pairs figure's path."""
    spatial = inputs.real.images.shape[2:]
    pixel_size = MAX_PIXEL_SIDE if max(spatial) > MAX_PIXEL_SIDE else None
    scores = critic_scores(inputs, device)
    audit = privacy_audit(
        inputs.synthetic.images,
        inputs.real.images,
        np.asarray(inputs.real.patient_ids),
        inputs.holdout.images,
        extractor=extractor,
        critic_scores=scores,
        quantile=quantile,
        pixel_size=pixel_size,
    )
    audit["pixel_size"] = pixel_size
    audit["critic_attack"] = "LOGAN on the checkpoint's critic" if scores else None
    closest = audit["pixel"]["closest_pairs"]
    # under torchrun rank 0 alone writes the figure; every rank records the same path
    figure = (
        save_closest_pairs(inputs, closest, run_dir / CLOSEST_PAIRS_PNG) if is_main() else closest
    )
    audit["closest_pairs_png"] = CLOSEST_PAIRS_PNG if figure else None
    pixel = audit["pixel"]
    log.info(
        "privacy: %d of %d synthetic images flagged as near-copies (threshold %.4g)",
        pixel["n_flagged"],
        audit["n"]["synthetic"],
        pixel["threshold"],
    )
    return audit
