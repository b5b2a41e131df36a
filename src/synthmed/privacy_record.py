"""What a synthetic dataset's differential-privacy guarantee is, from the training records.

Training (``synthmed.training.privacy``) writes one record per trained stage into its
checkpoint (``state["privacy"]["record"]``) and ``train_summary.json``. Sampling, packaging and
the report read those files through this module, which imports nothing internal, so later
stages never touch training code.

Stages that learn from the same records compose: a cascade's mask GAN and translator spend
``epsilon_1 + epsilon_2`` and ``delta_1 + delta_2`` (basic sequential composition, Dwork &
Roth 2014, Thm 3.16; conservative, but needs no assumption about the two accountants).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

PUBLIC_LABEL_SOURCES = ("train", "cases")


def _eps(value: Any) -> float:
    return math.inf if value == "inf" else float(value)


def _json_eps(value: float) -> float | str:
    return "inf" if math.isinf(value) else round(value, 4)


def checkpoint_record(state: dict) -> dict | None:
    """The privacy record a checkpoint holds (None: trained without ``train.privacy``)."""
    privacy = state.get("privacy")
    return None if not privacy else privacy.get("record")


def summary_record(run_dir: Path) -> dict | None:
    """The privacy record of a run folder's ``train_summary.json`` (None if absent)."""
    path = Path(run_dir) / "train_summary.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("privacy")


def dataset_privacy(stages: dict[str, dict | None], label_source: str | None) -> dict[str, Any]:
    """The guarantee of a sampled dataset, for its ``dataset.json``.

    Args:
        stages: privacy record per stage that produced the samples (``generator``, and
            ``mask_stage`` when a cascade drew the label maps); None for a non-private stage.
        label_source: where a translator's label maps came from (None for other models).

    Returns:
        ``{"differentially_private", "epsilon", "delta", "composition", "stages",
        "label_maps", "statement"}``; epsilon ``"inf"`` when a stage added no noise.
    """
    if all(r is None for r in stages.values()):
        return {
            "differentially_private": False,
            "statement": "trained without differential privacy (train.privacy not set)",
        }
    missing = [name for name, r in stages.items() if r is None]
    eps = sum(_eps(r["epsilon"]) for r in stages.values() if r is not None)
    delta = sum(float(r["delta"]) for r in stages.values() if r is not None)
    public_labels = label_source in PUBLIC_LABEL_SOURCES
    private = not missing and not math.isinf(eps)
    out = {
        "differentially_private": private,
        "epsilon": _json_eps(eps),
        "delta": delta,
        "composition": "basic (sum over stages)" if len(stages) > 1 else "single stage",
        "stages": stages,
        "label_maps": (
            f"training label maps ({label_source}): treated as public, not protected"
            if public_labels
            else "generated"
        ),
    }
    if missing:
        out["statement"] = f"not differentially private: stage(s) {missing} trained without DP"
    elif math.isinf(eps):
        out["statement"] = "DP-SGD pipeline without noise (epsilon = inf): no guarantee"
    else:
        covers = "the images (label maps public)" if public_labels else "every training record"
        out["statement"] = f"({out['epsilon']}, {delta:.3g})-differentially private for {covers}"
    return out


def describe(record: dict | None) -> str:
    """One line for a card or report: epsilon spent, target, delta, noise, what it covers."""
    if not record:
        return "not trained with differential privacy"
    return (
        f"DP-SGD on the critic: epsilon {record['epsilon']} spent (target "
        f"{record['epsilon_target']}), delta {record['delta']:g}, {record['accountant']} "
        f"accountant, noise multiplier {record['noise_multiplier']}, clip "
        f"{record['max_grad_norm']}, {record['dp_steps']} private steps; protects "
        f"{record['protects']}; unit: {record.get('unit', 'one training row')}"
    )
