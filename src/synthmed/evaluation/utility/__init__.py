"""Downstream utility: train on real / synthetic, test on real.

Tasks (segmentation U-Net, classification CNN), protocols (``real``, ``real+classic-aug``,
``real+synthetic:R``, ``synthetic-only``, ``pretrain-synthetic+finetune-real``), data-size
sweeps over seeds, and their statistics (bootstrap CIs, paired Wilcoxon tests).
"""

from synthmed.evaluation.utility.augment import augment_batch
from synthmed.evaluation.utility.classification import (
    CLASSIFIERS,
    build_classifier,
    classification_metrics,
    roc_auc,
    score_classifier,
    train_classifier,
)
from synthmed.evaluation.utility.loop import DEFAULT_PATIENCE, FitOptions, fit
from synthmed.evaluation.utility.protocols import (
    Settings,
    build_training_set,
    parse_protocol,
    run_protocol,
)
from synthmed.evaluation.utility.segmentation import (
    SegmentationData,
    score_items,
    train_segmenter,
)
from synthmed.evaluation.utility.sets import (
    TrainingSet,
    concat_sets,
    items_from_set,
    set_from_items,
)
from synthmed.evaluation.utility.stats import bootstrap_ci, paired_wilcoxon, summarize
from synthmed.evaluation.utility.sweep import (
    flatten_scores,
    run_sweep,
    subset_patients,
    subset_synthetic_per_class,
)

__all__ = [
    "CLASSIFIERS",
    "DEFAULT_PATIENCE",
    "FitOptions",
    "SegmentationData",
    "Settings",
    "TrainingSet",
    "augment_batch",
    "bootstrap_ci",
    "build_classifier",
    "build_training_set",
    "classification_metrics",
    "concat_sets",
    "fit",
    "flatten_scores",
    "items_from_set",
    "paired_wilcoxon",
    "parse_protocol",
    "roc_auc",
    "run_protocol",
    "run_sweep",
    "score_classifier",
    "score_items",
    "set_from_items",
    "subset_patients",
    "subset_synthetic_per_class",
    "summarize",
    "train_classifier",
    "train_segmenter",
]
