"""Differentially private critics: DP-SGD (Abadi et al. 2016) on the critic, via Opacus.

Only the critic reads real data; the generator is trained through the critic alone, so a
differentially private critic makes the generator, and every sample drawn from it, private by
post-processing (DP-GAN, Xie et al. 2018; GS-WGAN, Chen et al. 2020).

What is privatised. Each critic update is one DP-SGD step over one forward pass of the
concatenated batch ``[real; fake]``: real rows are Poisson-sampled with rate ``q = batch /
n_rows`` (each row in independently, so the batch size varies; this is the sampling the
accountant assumes), fake rows are ``batch`` generated samples. Opacus computes every row's
gradient, clips each to ``max_grad_norm`` and adds Gaussian noise ``N(0, (sigma C)^2)`` to
their sum, divided by the expected rows ``2 * batch``. Fake rows depend on no real record
(the generator is a function of earlier private steps), so they need no noise; they are
clipped and noised anyway because Opacus privatises whole steps. That costs utility, not
privacy: one real record still changes the clipped sum by at most ``C``, so the accountant's
sensitivity is exact. The loss is summed per row (``loss_reduction="sum"`` in the per-sample
module) so each clipped gradient is that row's own.

The gradient penalty. WGAN-GP's penalty needs a double backward through the per-sample hooks,
which Opacus' GradSampleModule does not support. Under DP it is replaced by a Lipschitz bound:
after every step each conv / linear weight of the critic is divided by ``max(1, sigma_max)``,
its largest singular value (of the kernel reshaped to a matrix, as spectral normalisation
measures it, Miyato et al. 2018), the hard-constraint view of WGAN's Lipschitz requirement
that weight clipping (Arjovsky 2017; DP-GAN, Xie 2018) enforces more crudely. With 1-Lipschitz
LeakyReLU between layers and no normalisation in the WGAN critic, the critic is then
1-Lipschitz up to the reshaped-kernel approximation SN also makes (:class:`SpectralBound`),
where the penalty only encourages it. The projection reads weights
only, so it is post-processing and costs no privacy. The same projection replaces spectral
normalisation's parametrisation (``wgan_gp_sn``, SPADE's critic), whose buffers Opacus cannot
trace.

Other changes under DP: BatchNorm in a critic becomes GroupNorm (batch statistics mix
records, so no per-sample gradient exists); in-place activations are switched off (Opacus'
backward hooks forbid them); minibatch discrimination and generator losses that read real
rows (pix2pix / SPADE L1 and feature matching, DCGAN feature matching) are refused.
Translators (pix2pix, SPADE) condition on the training label maps in the generator step, so
for them the guarantee protects the images with the label maps treated as public.

Noise comes from a ``torch.Generator`` seeded from the OS (or ``privacy.noise_seed`` for tests),
not Opacus' ``secure_mode`` (which needs torchcsprng); its state is in the checkpoint for exact
resume, so the checkpoint itself is private material: release samples or generator weights.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from synthmed.config.schema import PrivacyConfig, TrainConfig
from synthmed.errors import InputError
from synthmed.models.private import MINIBATCH_ERROR, make_critic_private

__all__ = ["build_private_critic", "check_private_run", "make_critic_private"]

log = logging.getLogger(__name__)

# RDP orders: Opacus' defaults stop at 63, which is loose for few steps at large epsilon
# (Opacus warns "optimal order is the largest alpha"); more orders only tighten the bound
RDP_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 128, 256, 512]


def _accountant_kwargs(pcfg: PrivacyConfig) -> dict[str, Any]:
    return {"alphas": RDP_ALPHAS} if pcfg.accountant == "rdp" else {}


def import_opacus() -> SimpleNamespace:
    """The Opacus pieces DP-SGD uses, or a one-line error saying how to install it."""
    try:
        from opacus import GradSampleModule
        from opacus.accountants import create_accountant
        from opacus.accountants.utils import get_noise_multiplier
        from opacus.optimizers import DPOptimizer
    except ImportError:
        raise InputError(
            "train.privacy needs Opacus: pip install 'synthmed[privacy]' (or pip install opacus)"
        ) from None
    return SimpleNamespace(
        GradSampleModule=GradSampleModule,
        create_accountant=create_accountant,
        get_noise_multiplier=get_noise_multiplier,
        DPOptimizer=DPOptimizer,
    )


def format_epsilon(value: float) -> float | str:
    """Epsilon as JSON can hold it: ``"inf"`` for no noise (JSON has no infinity)."""
    return "inf" if math.isinf(value) else round(float(value), 4)


class SpectralBound:
    """Projects every conv / linear weight of a critic onto spectral norm <= ``bound``.

    ``W <- W / max(1, sigma / bound)`` with ``sigma`` the exact largest singular value of the
    weight reshaped to ``(out, -1)`` (the matrix spectral normalisation bounds, Miyato et al.
    2018; a conv's operator norm can exceed it, Tsuzuku et al. 2018, so the critic's Lipschitz
    bound is as approximate as SN's). Exact rather than power iteration: an iterate converges
    from below, and a projection that undershoots is no bound. Stateless, so resume is exact.
    """

    def __init__(self, critic: nn.Module, bound: float = 1.0) -> None:
        self.bound = bound
        self.weights = [
            m.weight for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear))
        ]
        self.project()

    @torch.no_grad()
    def project(self) -> float:
        """Bound every weight; returns the largest spectral norm before projection."""
        largest = 0.0
        for w in self.weights:
            sigma = float(torch.linalg.matrix_norm(w.flatten(1).float(), ord=2))
            largest = max(largest, sigma)
            if sigma > self.bound:
                w.mul_(self.bound / sigma)
        return largest


def _noise_seed(pcfg: PrivacyConfig) -> int:
    if pcfg.noise_seed is not None:
        return int(pcfg.noise_seed)
    return int.from_bytes(os.urandom(8), "little") & ((1 << 63) - 1)


@dataclass
class PrivateCritic:
    """The critic's DP-SGD machinery: per-sample module, DP optimiser, accountant, bound.

    ``optimizer`` replaces the critic's Adam in the run's optimisers (its ``state_dict`` is
    the wrapped Adam's); ``dp_steps`` counts privatised critic updates so far.
    """

    config: PrivacyConfig
    grad_sample: Any  # opacus GradSampleModule (hooks on the critic's layers)
    optimizer: Any  # opacus DPOptimizer around the critic's Adam
    accountant: Any
    noise: torch.Generator
    sample_rate: float
    noise_multiplier: float
    planned_steps: int
    batch_size: int
    bound: SpectralBound | None
    changes: dict[str, Any]
    protects: str
    unit: str = "one training row"
    n_rows: int = 0

    def poisson_indices(self, n_rows: int, rng: torch.Generator, device) -> torch.Tensor:
        """Rows of a Poisson-sampled real batch: each row in with probability ``q``, drawn
        on CPU from the run's generator (exact resume)."""
        keep = torch.rand(n_rows, generator=rng) < self.sample_rate
        return keep.nonzero().squeeze(1).to(device)

    def step(self, summed_loss_fn) -> Any:
        """One DP-SGD critic update; ``summed_loss_fn()`` runs the critic's forward pass and
        returns ``(loss summed over rows, anything to hand back)``."""
        self.optimizer.zero_grad(set_to_none=True)
        self.grad_sample.enable_hooks()
        try:
            loss, out = summed_loss_fn()
            with warnings.catch_warnings():  # the critic's input needs no grad: expected
                warnings.filterwarnings("ignore", "Full backward hook is firing")
                loss.backward()
        finally:
            self.grad_sample.disable_hooks()
        self.optimizer.step()
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        if self.bound is not None:
            self.bound.project()
        return out

    @property
    def dp_steps(self) -> int:
        return sum(int(steps) for _, _, steps in self.accountant.history)

    def epsilon(self) -> float:
        """Epsilon spent so far at the configured delta (the accountant's)."""
        if self.noise_multiplier == 0.0:
            return math.inf
        if not self.accountant.history:
            return 0.0
        kwargs = _accountant_kwargs(self.config)
        return float(self.accountant.get_epsilon(delta=self.config.delta, **kwargs))

    def record(self) -> dict[str, Any]:
        """What the checkpoint, summary, manifest, card and report show (JSON-able)."""
        return {
            "mechanism": "DP-SGD on the critic (Opacus), generator private by post-processing",
            "epsilon": format_epsilon(self.epsilon()),
            "epsilon_target": format_epsilon(self.config.epsilon),
            "delta": self.config.delta,
            "accountant": self.config.accountant,
            "noise_multiplier": round(self.noise_multiplier, 6),
            "max_grad_norm": self.config.max_grad_norm,
            "sample_rate": round(self.sample_rate, 6),
            "sampling": "poisson",
            "dp_steps": self.dp_steps,
            "planned_dp_steps": self.planned_steps,
            "lipschitz": "spectral-norm projection <= 1" if self.bound is not None else None,
            "critic_changes": self.changes,
            "protects": self.protects,
            "unit": self.unit,
            "n_rows": self.n_rows,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "accountant": self.accountant.state_dict(),
            "noise_rng": self.noise.get_state(),
            "plan": self._plan(),
            "record": self.record(),
        }

    def _plan(self) -> dict[str, Any]:
        """What the noise multiplier was computed for (a resume with another plan re-plans)."""
        return {
            "noise_multiplier": self.noise_multiplier,
            "planned_steps": self.planned_steps,
            "sample_rate": self.sample_rate,
            "epsilon": self.config.epsilon,
            "delta": self.config.delta,
            "accountant": self.config.accountant,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the accountant (epsilon continues) and the noise RNG. If the run's plan
        changed (``train.steps`` extended, another epsilon), the noise of the remaining steps
        is re-planned so the whole run, spent steps included, stays within ``epsilon``."""
        self.accountant.load_state_dict(state["accountant"])
        self.noise.set_state(state["noise_rng"])
        if state.get("plan") == self._plan() or math.isinf(self.config.epsilon):
            return
        remaining = self.planned_steps - self.dp_steps
        sigma = replan_noise(self.accountant, self.config, self.sample_rate, remaining)
        log.warning(
            "train.privacy: the plan changed on resume; noise multiplier %.4f -> %.4f for the "
            "remaining %d private steps",
            self.noise_multiplier,
            sigma,
            remaining,
        )
        self.noise_multiplier = self.optimizer.noise_multiplier = sigma


MAX_NOISE_MULTIPLIER = 1e4


def replan_noise(accountant, pcfg: PrivacyConfig, sample_rate: float, remaining: int) -> float:
    """The smallest noise multiplier (bisection, 1% relative) with which ``remaining`` more
    steps keep the accountant's total epsilon within ``pcfg.epsilon``.

    Raises:
        InputError: when even ``MAX_NOISE_MULTIPLIER`` would exceed the budget (spent).
    """
    kwargs = _accountant_kwargs(pcfg)

    def total(sigma: float) -> float:
        trial = type(accountant)()
        trial.history = [*accountant.history, (sigma, sample_rate, remaining)]
        return float(trial.get_epsilon(delta=pcfg.delta, **kwargs))

    if remaining <= 0:
        return MAX_NOISE_MULTIPLIER
    if total(MAX_NOISE_MULTIPLIER) > pcfg.epsilon:
        spent = float(accountant.get_epsilon(delta=pcfg.delta, **kwargs))
        raise InputError(
            f"train.privacy: epsilon {spent:.3g} of {pcfg.epsilon:g} is already spent; "
            f"{remaining} more private steps cannot fit (raise the epsilon or keep train.steps)"
        )
    low, high = 0.0, MAX_NOISE_MULTIPLIER
    while high - low > 0.01 * high:
        mid = (low + high) / 2
        low, high = (low, mid) if total(mid) <= pcfg.epsilon else (mid, high)
    return high


def check_private_run(
    tcfg: TrainConfig, n_rows: int, world_size: int, critic_steps, model_options=None
) -> None:
    """One-line errors for a private run this module cannot account for."""
    pcfg = tcfg.privacy
    if (model_options or {}).get("minibatch_discrimination"):
        raise InputError(MINIBATCH_ERROR)
    if critic_steps is None:
        raise InputError(
            f"train.privacy: method '{tcfg.method}' has no critic to privatise; use an "
            "adversarial method (wgan_gp, dcgan, acgan, pix2pix, spade)"
        )
    if world_size > 1:
        raise InputError("train.privacy runs in one process (DDP is not supported with DP-SGD)")
    if tcfg.per_class:
        raise InputError(
            "train.privacy with train.per_class is not supported (one accountant per run)"
        )
    if pcfg.delta >= 1.0 / n_rows:
        raise InputError(
            f"train.privacy.delta {pcfg.delta:g} must be below 1 / {n_rows} training rows "
            f"(= {1.0 / n_rows:.3g}): a larger delta allows releasing a record outright"
        )
    opts = tcfg.options
    real_in_generator = {
        "pix2pix": ["l1_weight"],
        "spade": ["l1_weight", "fm_weight"],
        "dcgan": ["feature_matching"],
    }.get(tcfg.method, [])
    bad = [k for k in real_in_generator if opts.get(k)]
    if bad:
        raise InputError(
            f"train.privacy: train.options {', '.join(bad)} make the generator read real "
            "rows outside the private critic step; set them to 0 / false (the default under DP)"
        )


def build_private_critic(
    model,
    opt_d: torch.optim.Optimizer,
    tcfg: TrainConfig,
    n_rows: int,
    critic_steps: int,
    changes: dict[str, Any],
    unit: str = "one training row",
) -> PrivateCritic:
    """Wrap the (already :func:`make_critic_private`) critic and its Adam for DP-SGD, with the
    noise multiplier that reaches ``privacy.epsilon`` after ``steps * critic_steps`` updates."""
    op = import_opacus()
    pcfg = tcfg.privacy
    sample_rate = min(1.0, tcfg.batch_size / n_rows)
    planned = tcfg.steps * critic_steps
    if math.isinf(pcfg.epsilon):
        sigma = 0.0
    else:
        sigma = float(
            op.get_noise_multiplier(
                target_epsilon=pcfg.epsilon,
                target_delta=pcfg.delta,
                sample_rate=sample_rate,
                steps=planned,
                accountant=pcfg.accountant,
                **_accountant_kwargs(pcfg),
            )
        )
    critic = model.critic
    gsm = op.GradSampleModule(critic, batch_first=True, loss_reduction="sum")
    gsm.disable_hooks()  # on only inside PrivateCritic.step (the generator step needs none)
    device = next(critic.parameters()).device
    noise = torch.Generator(device=device).manual_seed(_noise_seed(pcfg))
    optimizer = op.DPOptimizer(
        opt_d,
        noise_multiplier=sigma,
        max_grad_norm=pcfg.max_grad_norm,
        expected_batch_size=2 * tcfg.batch_size,  # q * n real rows + batch fake rows
        loss_reduction="mean",
        generator=noise,
    )
    lipschitz = tcfg.method == "wgan_gp" or changes["spectral_norm_removed"]
    protects = (
        "images, with the training label maps treated as public (the generator is "
        "conditioned on them)"
        if model.needs_condition
        else "whole training records (image, label map and class)"
    )
    log.info(
        "DP-SGD critic: epsilon %s, delta %g, sigma %.4f, q %.4f, %d updates",
        pcfg.epsilon,
        pcfg.delta,
        sigma,
        sample_rate,
        planned,
    )
    return PrivateCritic(
        config=pcfg,
        grad_sample=gsm,
        optimizer=optimizer,
        accountant=op.create_accountant(pcfg.accountant),
        noise=noise,
        sample_rate=sample_rate,
        noise_multiplier=sigma,
        planned_steps=planned,
        batch_size=tcfg.batch_size,
        bound=SpectralBound(critic) if lipschitz else None,
        changes=changes,
        protects=protects,
        unit=unit,
        n_rows=n_rows,
    )
