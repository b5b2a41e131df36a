"""Run configuration: one pydantic model per stage, strict about unknown keys.

A run is described by a YAML file (a preset named after a paper, a user file that names a preset
and overrides parts of it, ``--set a.b=value`` overrides). The resolved config is saved in every
run folder so any run can be repeated. Validation errors name the offending key
(see :func:`synthmed.config.loading.load_run_config`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    """Base: unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class PhantomSpec(Strict):
    """Built-in phantom data (``synthmed.data.phantoms``)."""

    kind: str = "fundus"
    n_patients: int = Field(24, ge=1)
    images_per_patient: int = Field(1, ge=1)
    size: int = Field(64, ge=16)
    seed: int = 0
    labels: bool = True  # False: image-level classes only (a stand-in for data like BUSI)


class SourceConfig(Strict):
    """Where labelled images come from.

    kinds:
      * ``phantom``: generated (``phantom`` spec).
      * ``folders``: ``image_glob`` (+ ``label_glob``, ``mask_glob``) under ``root``; images and
        labels are paired by the first group of ``id_regex`` applied to the file name.
      * ``csv``: a manifest with columns ``image`` and optional ``label``, ``class``,
        ``patient_id`` (paths relative to the CSV's folder or to ``root``).
      * ``npz``: MedMNIST layout (``train_images``, ``train_labels``, ...), ``npz_splits`` taken.
    """

    kind: Literal["phantom", "folders", "csv", "npz"]
    root: Path | None = None
    image_glob: str | None = None
    label_glob: str | None = None
    mask_glob: str | None = None
    id_regex: str = r"(\d+)"
    patient_regex: str | None = None
    csv: Path | None = None
    npz: Path | None = None
    npz_splits: list[str] = ["train", "val", "test"]
    phantom: PhantomSpec | None = None
    label_values: list[int] | None = None
    class_names: list[str] | None = None
    label_names: list[str] | None = None

    @model_validator(mode="after")
    def _check_kind_fields(self) -> SourceConfig:
        needed = {
            "phantom": ["phantom"],
            "folders": ["root", "image_glob"],
            "csv": ["csv"],
            "npz": ["npz"],
        }[self.kind]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"kind '{self.kind}' needs: {', '.join(missing)}")
        return self


class AnatomyConfig(Strict):
    """Anatomy classes derived from each image for lesion-only label maps
    (``synthmed.data.anatomy``; Shin 2018's translators were conditioned on anatomy + tumour).

    The label map becomes background 0, ``classes`` tissue classes 1..classes (dark to bright
    in ``channel``, inside the image's foreground mask, lesion excluded), and the lesion
    ``classes + 1`` on top (the highest value: what lesion edits and the evaluation's tumour
    target take as the lesion). ``method``: ``multiotsu`` (per-image multi-Otsu thresholds)
    or ``quantile`` (equal shares). ``channel``: image channel to classify (None: mean over
    channels; LGG FLAIR: 1). ``smooth``: Gaussian sigma in pixels before thresholding.
    ``mask_threshold``: the foreground is above this times the Otsu threshold. ``names``: one
    label name per tissue class (default ``tissue_1`` ... , dark to bright).
    """

    classes: int = Field(3, ge=1, le=6)
    method: Literal["multiotsu", "quantile"] = "multiotsu"
    channel: int | None = None
    smooth: float = Field(1.0, ge=0.0)
    mask_threshold: float = Field(0.5, gt=0.0, le=2.0)
    names: list[str] | None = None

    @model_validator(mode="after")
    def _check_names(self) -> AnatomyConfig:
        if self.names is not None and len(self.names) != self.classes:
            raise ValueError(
                f"names lists {len(self.names)} names for {self.classes} tissue classes"
            )
        return self

    def tissue_names(self) -> list[str]:
        return list(self.names or [f"tissue_{k}" for k in range(1, self.classes + 1)])


class PreprocessConfig(Strict):
    """Per-image preprocessing applied before patches are cut.

    ``normalize``: percentile (clip to ``percentiles`` then scale to [0, 1]), minmax ([0, 1]),
    ct_window (``ct_window`` = [centre, width] in HU, then [0, 1]), zscore (mean 0, sd 1; not
    usable for GAN training, which needs a bounded range), none.
    """

    channels: Literal["keep", "grey", "green", "first"] | list[int] = "keep"
    normalize: Literal["percentile", "minmax", "zscore", "ct_window", "none"] = "percentile"
    # statistics from each image, or from all images of a patient: slice data such as LGG
    # need "patient", or a near-empty top slice is stretched until its noise looks like tissue
    normalize_scope: Literal["image", "patient"] = "image"
    percentiles: tuple[float, float] = (0.5, 99.5)
    ct_window: tuple[float, float] | None = None
    resize: list[int] | None = None
    slice_axis: int | None = None
    only_labelled_slices: bool = False
    label_mode: Literal["binary", "multiclass", "lesion"] = "binary"
    lesion_value: int | None = None  # label value of the lesion (label_mode lesion, lesion_roi)
    lesion_roi: int | None = None  # Frid-Adar 2018: square lesion-centred ROI of this size
    # anatomy classes derived from each image under the lesion (lesion-only data such as LGG)
    anatomy: AnatomyConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> PreprocessConfig:
        if self.anatomy is not None and self.label_mode == "multiclass":
            raise ValueError(
                "anatomy needs label_mode binary or lesion, not multiclass (it derives the "
                "classes around one lesion; a multiclass map already has its own)"
            )
        if self.normalize == "ct_window" and self.ct_window is None:
            raise ValueError("normalize 'ct_window' needs ct_window: [centre, width]")
        if self.label_mode == "lesion" and self.lesion_value is None:
            raise ValueError("label_mode 'lesion' needs lesion_value")
        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise ValueError("percentiles must satisfy 0 <= low < high <= 100")
        return self


class PatchConfig(Strict):
    """Training patches (Kossen 2021: half of them centred on label foreground)."""

    size: int = Field(64, ge=8)
    per_image: int = Field(64, ge=1)
    foreground_fraction: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 0


class SplitConfig(Strict):
    """Patient-level split of the training source (the test source, if given, is kept whole).

    ``file``: a split file (``{"train": [patient IDs], "val": [...], "test": [...]}``, as
    written to every run's ``split.json``) that pins the split instead of drawing it from
    the fractions and seed; every patient of the training source must be listed in it.
    """

    val_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.25, ge=0.0, lt=1.0)
    seed: int = 0
    file: Path | None = None


class DataConfig(Strict):
    train: SourceConfig
    test: SourceConfig | None = None
    preprocess: PreprocessConfig = PreprocessConfig()
    patches: PatchConfig | None = PatchConfig()
    split: SplitConfig = SplitConfig()

    def label_names(self) -> list[str] | None:
        """Names per label value after preprocessing: the source's ``label_names``, with the
        derived tissue classes between background and lesion when ``preprocess.anatomy`` is
        set (``background, tissue_1, ..., lesion``)."""
        names, pre = self.train.label_names, self.preprocess
        if pre.anatomy is None:
            return None if names is None else list(names)
        lesion = names[-1] if names and len(names) >= 2 else "lesion"
        if names and pre.label_mode == "lesion" and pre.lesion_value < len(names):
            lesion = names[pre.lesion_value]
        background = names[0] if names else "background"
        return [background, *pre.anatomy.tissue_names(), lesion]


class ModelConfig(Strict):
    """Generator/critic choice by registered name plus its size settings."""

    name: str = "wgan_gp_sn"
    latent_dim: int = Field(128, ge=0)  # 0: no noise input (pix2pix, SPADE without z)
    base_channels: int = Field(32, ge=1)
    kernel_size: int = Field(5, ge=1)
    spatial_dims: Literal[2, 3] = 2
    options: dict[str, Any] = {}  # model-specific builder arguments (see the model's docstring)


class DiffAugmentConfig(Strict):
    """Differentiable augmentation of every critic input (Zhao et al. 2020; ADA, Karras 2020).

    ``policy``: ops applied to real and generated batches alike before the critic
    (``translation``, ``cutout``, ``color``); geometric ops move image, label and condition
    channels together, colour touches the image channels only. ``p``: per-sample probability
    of each op (1 = DiffAugment); with ``adaptive`` an ADA controller starts at 0 and moves the
    probability within [0, p], up while the mean sign of the critic's scores on real batches
    exceeds ``target`` (the critic is overfitting), down otherwise. That signal assumes logits
    with a decision boundary at 0 (dcgan, acgan, pix2pix, spade); a WGAN critic's scores have
    none, and with ``wgan_gp`` the controller drives p to its ceiling.
    """

    policy: list[Literal["translation", "cutout", "color"]] = []
    p: float = Field(1.0, ge=0.0, le=1.0)
    adaptive: bool = False
    target: float = Field(0.6, ge=0.0, le=1.0)


class FastPathConfig(Strict):
    """The GPU fast path of training (``synthmed.training.fast_path``); ``auto`` is each
    feature's measured best on the device: on for CUDA, off for CPU, except fused Adam, which
    is faster on both (PERFORMANCE.md: on this CPU channels_last is 0.85x, compile 0.81x plus
    minutes of compiling, bf16 100x slower).

    ``autocast``: bf16 autocast of the networks' forward passes (the WGAN-GP penalty stays fp32,
    outside autocast); ``channels_last``: NHWC memory format for 2D networks and the training
    tensor; ``compile``: ``torch.compile`` of the trained networks (checkpoints keep the plain
    modules' weights); ``fused_adam``: ``Adam(fused=True)``. ``off`` everywhere restores fp32,
    NCHW, eager, per-tensor Adam.
    """

    autocast: Literal["auto", "bf16", "off"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    compile: Literal["auto", "on", "off"] = "auto"
    fused_adam: Literal["auto", "on", "off"] = "auto"

    @field_validator("*", mode="before")
    @classmethod
    def _yaml_switch(cls, value: Any, info) -> Any:
        """YAML reads an unquoted on/off as true/false: take them as the words."""
        if isinstance(value, bool):
            return ("bf16" if info.field_name == "autocast" else "on") if value else "off"
        return value


class SelectConfig(Strict):
    """Memorization-aware checkpoint selection (``synthmed.training.selection``).

    Every ``every`` steps (0 = off) ``n`` fixed-seed samples are scored in the domain encoder:
    ``metric`` (kid or fd) against the real validation split, and the near-copy rate against
    the training rows (closer than the ``quantile`` of validation rows). A checkpoint whose
    rate is above ``quantile`` with binomial p < ``alpha`` is refused; ``checkpoints/best.pt``
    is the eligible one with the lowest ``metric``, and sampling uses it.
    """

    every: int = Field(0, ge=0)
    n: int = Field(256, ge=10)
    metric: Literal["kid", "fd"] = "kid"
    quantile: float = Field(0.01, gt=0.0, lt=1.0)
    alpha: float = Field(0.01, gt=0.0, lt=1.0)


class PrivacyConfig(Strict):
    """Differentially private training of the critic (DP-SGD, Abadi et al. 2016), which makes
    the generator private by post-processing (DP-GAN, Xie et al. 2018; GS-WGAN, Chen 2020).

    ``epsilon``: the target epsilon over the whole run (``train.steps`` generator steps x the
    method's critic steps); ``.inf`` runs the same DP-SGD pipeline (Poisson sampling,
    GroupNorm critic, per-sample clipping) without noise, the epsilon = infinity row of a
    privacy/utility table. ``delta``: must be below 1 / (training rows), checked at training.
    ``max_grad_norm``: per-sample clipping bound C. ``accountant``: Opacus' ``rdp`` (Mironov
    2017) or ``prv`` (Gopi 2021). ``noise_seed``: seed of the noise generator (None: drawn
    from the OS, so the config does not reveal the noise; set it only for reproducible tests).
    See :mod:`synthmed.training.privacy`.
    """

    # config.yaml is written through JSON: keep inf as "Infinity" (the default writes null)
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    epsilon: float = Field(gt=0)
    delta: float = Field(gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    accountant: Literal["rdp", "prv"] = "rdp"
    noise_seed: int | None = None


_BUDGET_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """``"90s"``, ``"20m"``, ``"1.5h"`` -> seconds (a bare number is seconds)."""
    value = str(text).strip().lower()
    unit = value[-1:] if value[-1:] in _BUDGET_UNITS else "s"
    number = value[:-1] if value[-1:] in _BUDGET_UNITS else value
    try:
        seconds = float(number) * _BUDGET_UNITS[unit]
    except ValueError:
        raise ValueError(f"budget '{text}' is not a duration like 90s, 20m or 1.5h") from None
    if not seconds > 0:
        raise ValueError(f"budget '{text}' must be positive")
    return seconds


class TrainConfig(Strict):
    """GAN optimisation (WGAN-GP defaults from Kossen 2021 / Gulrajani 2017).

    ``budget`` (``"20m"``): train for that wall time instead of ``steps``; the number of steps
    is estimated from the measured speed and refined as training goes, and ``lr_schedule``
    runs over that estimate, so the schedule ends when the time does. A budgeted run is not
    bit-reproducible (its step count depends on the machine's speed); ``train_summary.json``
    records the steps it ran, and the same config with ``train.steps`` set to that number and
    no budget repeats it exactly. ``lr_schedule``: ``constant``; ``linear`` (constant for the
    first half, then linearly to 0, as pix2pix); ``cosine`` (to 0). ``ema_decay``: moving
    average of the generator weights used for sampling (0 = off; ramp-up in
    ``synthmed.training.ema``). ``fast_path``: bf16 autocast, channels_last, compile and fused
    Adam (:class:`FastPathConfig`); ``precision`` is the older autocast switch (``bf16`` means
    autocast on CUDA, which ``fast_path.autocast: auto`` already does).
    """

    method: str = "wgan_gp"
    steps: int = Field(2000, ge=1, description="generator steps")
    batch_size: int = Field(32, ge=1)
    lr_g: float = Field(1e-4, gt=0)
    lr_d: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.0, 0.9)
    n_critic: int = Field(5, ge=1)
    gp_lambda: float = Field(10.0, ge=0)
    seed: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    checkpoint_every: int = Field(500, ge=1)
    sample_every: int = Field(500, ge=1)
    log_every: int = Field(25, ge=1)
    options: dict[str, Any] = {}  # method-specific settings (e.g. l1_weight for pix2pix)
    per_class: bool = False  # Frid-Adar 2018: one generator per image-level class
    budget: str | None = None
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)
    diffaugment: DiffAugmentConfig = DiffAugmentConfig()
    select: SelectConfig = SelectConfig()
    privacy: PrivacyConfig | None = None  # DP-SGD on the critic (synthmed.training.privacy)
    fast_path: FastPathConfig = FastPathConfig()

    @field_validator("budget")
    @classmethod
    def _check_budget(cls, value: str | None) -> str | None:
        if value is not None:
            parse_budget(value)
        return value

    @model_validator(mode="after")
    def _check_privacy(self) -> TrainConfig:
        """What a private run refuses: each item would let real data reach the released
        model outside the privatised critic step, or leave the step count unknown."""
        if self.privacy is None:
            return self
        if self.budget is not None:
            raise ValueError(
                "train.privacy needs train.steps, not train.budget: the accountant must know "
                "the number of steps before training"
            )
        if self.select.every:
            raise ValueError(
                "train.privacy with train.select.every > 0: checkpoint selection scores "
                "training rows, which the privacy accounting does not cover; set it to 0"
            )
        if self.diffaugment.adaptive:
            raise ValueError(
                "train.privacy with train.diffaugment.adaptive: the ADA controller reads the "
                "critic's scores on real batches; use a fixed p (adaptive: false)"
            )
        return self


class GateConfig(Strict):
    """The export gate of ``synthmed sample`` (``synthmed.evaluation.gate``).

    Before a sampled dataset folder appears, every sample is compared with the run's real
    training rows (1 - NCC, threshold = the near-copy quantile of held-out rows, as
    ``--exclude-near-copies``): near-copies are counted and, with ``drop_near_copies``,
    removed; then GAN-Leaks (distance to the kept samples) tries to tell training rows from
    held-out rows. The dataset is refused, and nothing is written, when either rule fails:

    * near-copy rate: the count before dropping is more than a generator whose true rate is
      ``max_near_copy_rate`` gives with probability ``alpha`` (one-sided binomial test, the
      function checkpoint selection uses). Default None = the held-out level, the rate at
      which new real images of other patients are flagged ((q (H-1) + 1) / (H + 1) for H
      held-out rows at quantile q; about q for large H): a generator is accepted while it
      copies no more than real data "copies". The test, not a fixed rate, keeps small
      samples fair: 1 near-copy in 16 samples is no evidence (p = 0.15 at level 0.01).
    * membership AUC: above ``max_membership_auc`` AND above chance with Mann-Whitney
      p < ``alpha``. 0.5 is chance; 0.6 means a random training row is ranked above a random
      held-out one 6 times in 10, an advantage worth refusing on and one that a few hundred
      rows measure to about +-0.05; the p-value stops tens of rows from refusing on noise.

    ``alpha`` 0.01 is ``train.select.alpha``: an honest generator is refused about 1 time in
    100 per rule. ``membership_n``: at most this many synthetic samples, training rows and
    held-out rows (seeded subsets) enter the attack, so its cost does not grow with
    ``sample.n``. ``allow_privacy_risk``: a reason to write the dataset despite a refusal
    (``--allow-privacy-risk``), recorded in ``gate.json``, ``dataset.json`` and the manifest.
    """

    enabled: bool = True
    drop_near_copies: bool = True
    max_near_copy_rate: float | None = Field(None, gt=0.0, lt=1.0)
    max_membership_auc: float = Field(0.6, gt=0.5, le=1.0)
    alpha: float = Field(0.01, gt=0.0, lt=1.0)
    membership_n: int = Field(256, ge=2)
    allow_privacy_risk: str | None = None

    @field_validator("allow_privacy_risk")
    @classmethod
    def _reason_given(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("give a reason (who accepted the risk and why), not an empty text")
        return None if value is None else " ".join(value.split())


class LabelWarpConfig(Strict):
    """Seeded affine warp of a translator's label maps before sampling
    (``synthmed.sampling.label_warp``): maps taken from training slices then give layouts no
    training slice has (fewer near-copies). All zero (the default) = no warp."""

    rotate: float = Field(0.0, ge=0, le=180, description="max rotation, degrees")
    scale: float = Field(0.0, ge=0, lt=1, description="max isotropic scale change (0.1 = 10%)")
    translate: float = Field(0.0, ge=0, lt=0.5, description="max shift, fraction of the size")

    @property
    def enabled(self) -> bool:
        return bool(self.rotate or self.scale or self.translate)


class SampleConfig(Strict):
    """Synthetic dataset export (``gate``: the privacy check before a dataset is written)."""

    n: int = Field(256, ge=1)
    seed: int = 0
    formats: list[Literal["png", "nifti", "nnunet", "monai", "npz", "dicom"]] = ["png"]
    label_threshold: float = Field(
        0.0, ge=-1.0, le=1.0, description="on the tanh-range label channel"
    )
    batch_size: int = Field(64, ge=1)
    weights: Literal["ema", "raw"] = "ema"  # generator weights to sample with (ema if stored)
    checkpoint: Literal["best", "last"] = "best"  # best: train.select's pick, when it made one
    steps: int | None = Field(None, ge=1)  # diffusion: sampler steps (default: the model's)
    guidance_scale: float | None = Field(None, ge=0)  # class diffusion: classifier-free guidance
    label_source: Literal["auto", "cascade", "train", "cases"] = "auto"  # translators only
    edit_lesions: bool = False  # translators: random lesion edit per sample (Shin 2018)
    lesion_value: int | None = None  # label value of the lesion (default: the highest)
    lesion_sizes: list[int] | None = None  # label_source cases: target lesion areas, cycled
    lesion_centres: list[list[float]] | None = None  # label_source cases: centres, cycled
    warp_labels: LabelWarpConfig = LabelWarpConfig()  # translators: seeded warp of each map
    gate: GateConfig = GateConfig()


class ClassicAugConfig(Strict):
    """The ``+classic-aug`` transforms (``evaluation.utility.augment``).

    The default (flips on every axis, 90-degree turns) suits images without an up or down:
    fundus photographs, lesion ROIs, axial slices. Ultrasound has one (skin at the top,
    acoustic shadows below a lesion), so turning it upside down makes images no scanner
    gives; there ``flip: left-right`` with ``rot90: false`` keeps the orientation.
    """

    strength: float = Field(1.0, ge=0, description="scales rotation, elastic and intensity")
    flip: Literal["all", "left-right", "none"] = "all"
    rot90: bool = True


class UtilityConfig(Strict):
    """Downstream U-Net (or CNN) trained under each protocol, tested on the real test split.

    ``protocols``: names from ``synthmed.evaluation.utility.protocols`` (``real``,
    ``real+classic-aug``, ``real+synthetic:R``, ``synthetic-only``,
    ``pretrain-synthetic+finetune-real``) or ``all``. ``sizes``: numbers of real training
    patients to sweep (``all`` = every one). The default (real and synthetic-only on all
    patients) keeps ``synthmed demo`` cheap; ``synthmed evaluate --protocols all`` runs the rest.
    ``augment``: what ``+classic-aug`` protocols apply.
    """

    channels: list[int] = [16, 32, 64]
    steps: int = Field(400, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    seeds: list[int] = [0]
    val_every: int = Field(50, ge=1)
    patch_size: int | None = None
    protocols: list[str] = ["real", "synthetic-only"]
    sizes: list[int | Literal["all"]] = ["all"]
    patience: int = Field(5, ge=1, description="validations without improvement before stopping")
    min_steps: int | None = Field(
        None, ge=1, description="no early stop before this step (rare lesions: see loop.py)"
    )
    foreground_fraction: float = Field(
        0.0, ge=0, le=1, description="segmentation: share of each batch from labelled rows"
    )
    augment: ClassicAugConfig = ClassicAugConfig()

    @model_validator(mode="after")
    def _check_sweep(self) -> UtilityConfig:
        if not self.protocols or not self.sizes or not self.seeds:
            raise ValueError("protocols, sizes and seeds must not be empty")
        if any(isinstance(s, int) and s < 1 for s in self.sizes):
            raise ValueError("sizes are numbers of patients (>= 1) or 'all'")
        return self


class EvaluateConfig(Strict):
    """What ``synthmed evaluate`` computes: utility always; fidelity and privacy on request.

    ``extractor``: feature space of the fidelity metrics and the embedding privacy audit
    (``encoder`` = autoencoder fitted on the real training split and cached in the run,
    ``pixels``, or ``module`` = a network file at ``extractor_path``).
    ``label_target``: what every section scores: ``all`` label classes, or the ``lesion``
    only (label maps become lesion / not lesion: the U-Net segments the tumour, agreement and
    label statistics concern it); ``auto`` is ``lesion`` when ``data.preprocess.anatomy`` is
    set (derived tissue classes are easy to segment and would dominate the mean Dice), else
    ``all``. The lesion is ``sample.lesion_value``, or the highest label value.
    """

    utility: UtilityConfig = UtilityConfig()
    label_target: Literal["auto", "all", "lesion"] = "auto"
    n_synthetic: int | None = None
    fidelity: bool = True
    privacy: bool = True
    extractor: Literal["encoder", "pixels", "module"] = "encoder"
    extractor_path: Path | None = None
    encoder_steps: int = Field(300, ge=1)
    near_copy_quantile: float = Field(0.01, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_extractor(self) -> EvaluateConfig:
        if self.extractor == "module" and self.extractor_path is None:
            raise ValueError("extractor 'module' needs extractor_path (a .pt2 or TorchScript file)")
        return self


class StageConfig(Strict):
    """A first stage trained before the main model on the same data (the mask GAN of a
    cascade: Guibas 2017 stage I, Platscher 2021 lesion GAN); sampling then feeds its label
    maps to the main model (a translator)."""

    model: ModelConfig = ModelConfig(name="mask_gan")
    train: TrainConfig = TrainConfig()
    # Platscher 2021's lesion GAN learns lesions: on data where most slices have none (LGG:
    # two thirds), a mask GAN trained on every map collapses to the empty map
    foreground_only: bool = False
    # train the mask GAN at this smaller size (e.g. [32, 32] on 128x128 slices): lesion masks
    # are smooth blobs, and at full size a WGAN-GP on a few hundred sparse masks saturates its
    # tanh at "background" and never draws one (LGG). Its maps are scaled back to the data's
    # size before decoding (linear on the soft channels, then thresholded: smooth outlines)
    size: list[int] | None = None

    @model_validator(mode="after")
    def _positive_size(self) -> StageConfig:
        if self.size is not None and (not self.size or any(int(s) < 8 for s in self.size)):
            raise ValueError(
                "mask_stage.size must list sizes >= 8 per axis (the generator starts at 4), "
                f"got {self.size}"
            )
        return self


class RunConfig(Strict):
    """Everything one run needs; saved resolved as ``config.yaml`` in the run folder."""

    name: str = "run"
    preset: str | None = None
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    mask_stage: StageConfig | None = None
