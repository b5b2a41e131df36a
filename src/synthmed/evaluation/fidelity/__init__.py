"""Fidelity metrics: pure functions on feature vectors (FD, KID, PRDC) and images (MS-SSIM
diversity, intensity histograms, sliced Wasserstein), plus the ``METRICS`` registry."""

from synthmed.evaluation.fidelity import diversity, metrics
from synthmed.evaluation.fidelity.diversity import (
    intensity_histogram_distance,
    ms_ssim_diversity,
    ms_ssim_weights,
    sliced_wasserstein_distance,
)
from synthmed.evaluation.fidelity.metrics import (
    METRICS,
    frechet_distance,
    frechet_distance_from_stats,
    kernel_inception_distance,
    mmd2_unbiased,
    per_class,
    polynomial_kernel,
    precision_recall_density_coverage,
)

__all__ = [
    "METRICS",
    "diversity",
    "frechet_distance",
    "frechet_distance_from_stats",
    "intensity_histogram_distance",
    "kernel_inception_distance",
    "metrics",
    "mmd2_unbiased",
    "ms_ssim_diversity",
    "ms_ssim_weights",
    "per_class",
    "polynomial_kernel",
    "precision_recall_density_coverage",
    "sliced_wasserstein_distance",
]

# Feature extractors, image-label agreement and the metrics.json fidelity section.
from synthmed.evaluation.fidelity import agreement, extractors, suite  # noqa: E402
from synthmed.evaluation.fidelity.agreement import (  # noqa: E402
    compare_label_statistics,
    image_label_agreement,
    label_statistics,
)
from synthmed.evaluation.fidelity.extractors import (  # noqa: E402
    EXTRACTORS,
    EncoderExtractor,
    FeatureExtractor,
    ModuleExtractor,
    PixelExtractor,
    data_hash,
    load_or_fit_encoder,
)
from synthmed.evaluation.fidelity.suite import fidelity_report  # noqa: E402

__all__ += [
    "EXTRACTORS",
    "EncoderExtractor",
    "FeatureExtractor",
    "ModuleExtractor",
    "PixelExtractor",
    "agreement",
    "compare_label_statistics",
    "data_hash",
    "extractors",
    "fidelity_report",
    "image_label_agreement",
    "label_statistics",
    "load_or_fit_encoder",
    "suite",
]
