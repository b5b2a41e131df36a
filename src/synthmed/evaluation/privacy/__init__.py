"""Privacy audit building blocks: nearest neighbours, memorisation, membership inference, copying.

All functions are pure: arrays or tensors in, numbers or arrays out, no file I/O.
"""

from synthmed.evaluation.privacy.data_copying import (
    data_copying_statistic,
    kmeans_centroids,
    mann_whitney_z,
)
from synthmed.evaluation.privacy.membership import (
    discriminator_membership_scores,
    distance_membership_scores,
    membership_attack_metrics,
    tpr_at_fpr,
)
from synthmed.evaluation.privacy.memorization import (
    calibrate_copy_threshold,
    flag_near_copies,
    nearest_real_distances,
    per_patient_reproduction,
)
from synthmed.evaluation.privacy.neighbours import as_feature_matrix, nearest_neighbours
from synthmed.evaluation.privacy.similarity import (
    ncc_distance,
    nearest_ncc_neighbours,
    normalized_cross_correlation_matrix,
    standardize_images,
)

__all__ = [
    "as_feature_matrix",
    "calibrate_copy_threshold",
    "data_copying_statistic",
    "discriminator_membership_scores",
    "distance_membership_scores",
    "flag_near_copies",
    "kmeans_centroids",
    "mann_whitney_z",
    "membership_attack_metrics",
    "ncc_distance",
    "nearest_ncc_neighbours",
    "nearest_neighbours",
    "nearest_real_distances",
    "normalized_cross_correlation_matrix",
    "per_patient_reproduction",
    "standardize_images",
    "tpr_at_fpr",
]

# The metrics.json privacy section and the sampler's near-copy filter.
from synthmed.evaluation.privacy.audit import near_copy_mask, privacy_audit  # noqa: E402

__all__ += ["near_copy_mask", "privacy_audit"]
