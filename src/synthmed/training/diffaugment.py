"""Differentiable augmentation of critic inputs for data-efficient GAN training.

DiffAugment (Zhao et al. 2020) applies the same family of random, differentiable transforms to
real and fake batches just before the critic, so the critic cannot memorise a small training set
while the generator still gets gradients through the transform. ADA (Karras et al. 2020) gates
each transform with a probability ``p`` tuned online from the critic's overfitting signal
(:class:`AdaptiveAugmentProbability`).

Inputs are ``(N, C, *S)`` with ``S`` 2D or 3D. Geometric ops move every channel of a sample
identically, so image and label/condition channels stay aligned; colour ops touch only the
first ``color_channels`` (image) channels. Geometric ops use index gathering and multiplicative
masks, never interpolation, so label values stay exact.

All random numbers come from a caller-owned CPU :class:`torch.Generator` and are then moved to
the input's device, so runs are reproducible and resumable from a saved generator state.

Under torchrun (``shard = (rank, world_size)``) each per-sample draw is made for the global
batch of ``world_size`` x N samples from the generator every rank holds in the same state, and
the rank keeps its own N: the ranks augment their shards differently, their generators stay in
step, and 2 ranks x N draw bit for bit what one process with 2N draws. The adaptive ``p``'s
statistic is summed over the ranks, so every rank holds the same ``p``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from synthmed import distributed

POLICIES = ("translation", "cutout", "color")


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise ``'translation,cutout'`` or a list of names to a validated tuple.

    Validating up front turns a config typo into an error at start-up instead of a silently
    unaugmented run.
    """
    if isinstance(policy, str):
        names = [part.strip() for part in policy.split(",")]
    else:
        names = [str(part).strip() for part in policy]
    names = [name for name in names if name]
    for name in names:
        if name not in POLICIES:
            raise ValueError(
                f"unknown DiffAugment policy {name!r}; expected a subset of {', '.join(POLICIES)}"
            )
    return tuple(names)


class _Draws:
    """Per-sample CPU draws for this rank's ``n`` rows of a global batch of ``world`` x ``n``.

    Every draw is made for the global batch and sliced, so all ranks consume the generator
    alike (it stays in step) and one process (``world = 1``) draws exactly as before.
    """

    def __init__(self, rng: torch.Generator, shard: tuple[int, int] = (0, 1)) -> None:
        self.rng = rng
        self.rank, self.world = shard

    def _mine(self, drawn: torch.Tensor) -> torch.Tensor:
        n = drawn.shape[0] // self.world
        return drawn[self.rank * n : (self.rank + 1) * n]

    def rand(self, n: int) -> torch.Tensor:
        """``n`` draws from U(0, 1), float64."""
        return self._mine(torch.rand(n * self.world, generator=self.rng, dtype=torch.float64))

    def randint(self, low: int, high: int, n: int) -> torch.Tensor:
        """``n`` integers in ``[low, high)``."""
        return self._mine(torch.randint(low, high, (n * self.world,), generator=self.rng))


def _uniform(n: int, low: float, high: float, rng: _Draws) -> torch.Tensor:
    """``n`` CPU draws from U(low, high) (float64, cast later)."""
    return low + (high - low) * rng.rand(n)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Move CPU per-sample values to ``x``'s device/dtype, shaped to broadcast over ``x``."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    return values.to(device=x.device, dtype=x.dtype).view(shape)


def _apply_mask(n: int, p: float, rng: _Draws) -> torch.Tensor:
    """Per-sample Bernoulli(p) on CPU; always drawn so RNG consumption does not depend on p."""
    return rng.rand(n) < p


def _gate(apply: torch.Tensor, augmented: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Keep ``augmented`` where ``apply`` is true, ``x`` bit-exactly elsewhere."""
    where = apply.to(x.device).view((x.shape[0],) + (1,) * (x.dim() - 1))
    return torch.where(where, augmented, x)


def _translate(x: torch.Tensor, rng: _Draws, p: float, ratio: float) -> torch.Tensor:
    """Shift each sample by an integer offset per spatial axis, replicating the edge.

    Gathering with clamped indices keeps every output value an input value (labels stay exact)
    and is differentiable w.r.t. ``x``.
    """
    n = x.shape[0]
    apply = _apply_mask(n, p, rng)
    out = x
    for dim in range(2, x.dim()):
        size = x.shape[dim]
        max_shift = round(ratio * size)
        shift = rng.randint(-max_shift, max_shift + 1, n)
        shift = torch.where(apply, shift, torch.zeros_like(shift)).to(x.device)
        pos_shape = [1] * x.dim()
        pos_shape[dim] = size
        positions = torch.arange(size, device=x.device).view(pos_shape)
        shift_shape = [n] + [1] * (x.dim() - 1)
        index = (positions - shift.view(shift_shape)).clamp_(0, size - 1)
        out = torch.gather(out, dim, index.expand(x.shape))
    return out


def _cutout(x: torch.Tensor, rng: _Draws, p: float, ratio: float) -> torch.Tensor:
    """Zero one axis-aligned box per sample in every channel (multiplicative mask)."""
    n = x.shape[0]
    apply = _apply_mask(n, p, rng).to(x.device)
    inside = apply.view([n] + [1] * (x.dim() - 1))
    for dim in range(2, x.dim()):
        size = x.shape[dim]
        side = round(ratio * size)
        centre = rng.randint(0, size, n).to(x.device)
        low = (centre - side // 2).view([n] + [1] * (x.dim() - 1))
        pos_shape = [1] * x.dim()
        pos_shape[dim] = size
        positions = torch.arange(size, device=x.device).view(pos_shape)
        inside = inside & (positions >= low) & (positions < low + side)
    return x * (~inside).to(x.dtype)


def _brightness(img: torch.Tensor, rng: _Draws, p: float) -> torch.Tensor:
    """Add U(-0.5, 0.5) per sample."""
    apply = _apply_mask(img.shape[0], p, rng)
    offset = _uniform(img.shape[0], -0.5, 0.5, rng)
    return _gate(apply, img + _per_sample(offset, img), img)


def _saturation(img: torch.Tensor, rng: _Draws, p: float) -> torch.Tensor:
    """Scale the deviation from the per-pixel channel mean by U(0, 2); needs >1 channel."""
    if img.shape[1] < 2:
        return img
    apply = _apply_mask(img.shape[0], p, rng)
    factor = _uniform(img.shape[0], 0.0, 2.0, rng)
    mean = img.mean(dim=1, keepdim=True)
    return _gate(apply, (img - mean) * _per_sample(factor, img) + mean, img)


def _contrast(img: torch.Tensor, rng: _Draws, p: float) -> torch.Tensor:
    """Scale the deviation from the per-sample mean by U(0.5, 1.5)."""
    apply = _apply_mask(img.shape[0], p, rng)
    factor = _uniform(img.shape[0], 0.5, 1.5, rng)
    mean = img.mean(dim=tuple(range(1, img.dim())), keepdim=True)
    return _gate(apply, (img - mean) * _per_sample(factor, img) + mean, img)


def _color(x: torch.Tensor, rng: _Draws, p: float, color_channels: int) -> torch.Tensor:
    """Brightness, saturation, contrast on the image channels only; labels pass through.

    Each of the three sub-transforms is gated by its own per-sample Bernoulli(p), as in ADA.
    """
    if color_channels == 0:
        return x
    img = x[:, :color_channels]
    for transform in (_brightness, _saturation, _contrast):
        img = transform(img, rng, p)
    if color_channels == x.shape[1]:
        return img
    return torch.cat([img, x[:, color_channels:]], dim=1)


def _check_args(
    x: torch.Tensor,
    rng: torch.Generator,
    color_channels: int | None,
    p: float,
    translation_ratio: float,
    cutout_ratio: float,
) -> int:
    """Validate arguments; return the effective number of colour channels."""
    if x.dim() < 3:
        raise ValueError(f"expected x of shape (N, C, *spatial), got {tuple(x.shape)}")
    if rng.device.type != "cpu":
        raise ValueError(f"rng must be a CPU torch.Generator, got one on {rng.device}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"augmentation probability p must be in [0, 1], got {p}")
    for name, ratio in (("translation_ratio", translation_ratio), ("cutout_ratio", cutout_ratio)):
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {ratio}")
    channels = x.shape[1]
    if color_channels is None:
        return channels
    if not 0 <= color_channels <= channels:
        raise ValueError(f"color_channels must be in [0, {channels}], got {color_channels}")
    return color_channels


def diff_augment(
    x: torch.Tensor,
    policy: Sequence[str],
    rng: torch.Generator,
    *,
    color_channels: int | None = None,
    p: float = 1.0,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
    shard: tuple[int, int] = (0, 1),
) -> torch.Tensor:
    """Apply the ``policy`` ops in order to a critic batch, differentiably w.r.t. ``x``.

    Call once for the real and once for the fake batch (fresh draws each call). ``p`` is the
    per-sample probability of each op (1 = always, DiffAugment; <1 = ADA); ``p = 0`` returns
    ``x`` exactly. ``color_channels`` limits colour ops to ``x[:, :color_channels]``.
    ``shard = (rank, world_size)``: ``x`` is this rank's slice of a global batch of
    ``world_size`` x ``len(x)``; the parameters are drawn for the global batch and sliced.
    """
    names = parse_policy(policy)
    cc = _check_args(x, rng, color_channels, p, translation_ratio, cutout_ratio)
    rank, world = shard
    if not 0 <= rank < world:
        raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world, got {shard}")
    if not names:
        return x
    rng = _Draws(rng, shard)
    ops: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "translation": lambda t: _translate(t, rng, p, translation_ratio),
        "cutout": lambda t: _cutout(t, rng, p, cutout_ratio),
        "color": lambda t: _color(t, rng, p, cc),
    }
    for name in names:
        x = ops[name](x)
    return x


class AdaptiveAugmentProbability:
    """ADA-style controller (Karras et al. 2020): raises ``p`` when the critic overfits.

    ``r_t = E[sign(D(real))]`` over the last ``interval`` updates; then
    ``p += sign(r_t - target) * images_seen / speed_images`` (``images_seen`` =
    batch size x interval), clipped to ``[0, max_p]``. A critic that is confidently positive on
    every real sample has memorised them, so more augmentation is needed.
    """

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        speed_images: int = 20_000,
        initial: float = 0.0,
        max_p: float = 0.8,
    ) -> None:
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"ADA target must be in [0, 1], got {target}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"ADA interval must be a positive integer, got {interval!r}")
        if not speed_images > 0:
            raise ValueError(f"ADA speed_images must be > 0, got {speed_images}")
        if not 0.0 <= max_p <= 1.0:
            raise ValueError(f"ADA max_p must be in [0, 1], got {max_p}")
        if not 0.0 <= initial <= max_p:
            raise ValueError(f"ADA initial p must be in [0, max_p={max_p}], got {initial}")
        self.target = float(target)
        self.interval = interval
        self.speed_images = speed_images
        self.max_p = float(max_p)
        self.p = float(initial)
        self._reset_accumulators()

    def _reset_accumulators(self) -> None:
        # Tensor sums (possibly on the GPU) avoid a host sync on every critic step.
        self._sign_sum: torch.Tensor = torch.zeros((), dtype=torch.float64)
        self._images: torch.Tensor = torch.zeros((), dtype=torch.float64)
        self._calls = 0

    def update(self, real_scores: torch.Tensor) -> None:
        """Accumulate ``sign(D(real))`` of one critic batch; adjust ``p`` every ``interval``.

        Under torchrun the batch's sign sum and size are summed over the ranks first (one
        small all-reduce per critic step), so every rank accumulates the global batch's
        statistic, computes the same ``p``, and rank 0's checkpoint holds the global state.
        """
        scores = real_scores.detach()
        if scores.dim() == 0:
            raise ValueError("real_scores must have a batch dimension, got a scalar")
        if scores.dim() > 1:
            scores = scores.flatten(1).mean(dim=1)
        sign_sum = scores.sign().sum(dtype=torch.float64)
        # a fill on the scores' device, not a host-to-device copy (no sync on CUDA)
        count = torch.full((), float(scores.shape[0]), dtype=torch.float64, device=scores.device)
        if distributed.world_size() > 1:
            sign_sum, count = distributed.sum_over_ranks(torch.stack([sign_sum, count])).unbind()
        # Out-of-place adds: CPU 0-dim accumulators combine with CUDA batch sums.
        self._sign_sum = self._sign_sum + sign_sum
        self._images = self._images + count
        self._calls += 1
        if self._calls >= self.interval:
            self._adjust()

    def _adjust(self) -> None:
        """Step ``p`` towards keeping ``r_t`` at the target, then start a new interval."""
        images = self._images.item()
        if images > 0:
            r_t = self._sign_sum.item() / images
            direction = (r_t > self.target) - (r_t < self.target)
            step = direction * images / self.speed_images
            self.p = min(max(self.p + step, 0.0), self.max_p)
        self._reset_accumulators()

    def state_dict(self) -> dict[str, Any]:
        """Plain Python values, so checkpoints load with ``weights_only=True``."""
        return {
            "p": float(self.p),
            "sign_sum": float(self._sign_sum.item()),
            "images": int(self._images.item()),
            "calls": int(self._calls),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``p`` and the partial-interval counters from :meth:`state_dict`."""
        missing = {"p", "sign_sum", "images", "calls"} - set(state)
        if missing:
            raise ValueError(f"ADA state is missing keys: {sorted(missing)}")
        p = float(state["p"])
        if not 0.0 <= p <= self.max_p:
            raise ValueError(f"ADA state p={p} outside [0, max_p={self.max_p}]")
        self.p = p
        self._sign_sum = torch.tensor(float(state["sign_sum"]), dtype=torch.float64)
        self._images = torch.tensor(float(int(state["images"])), dtype=torch.float64)
        self._calls = int(state["calls"])


class CriticAugment:
    """What a training method calls on every critic input: the configured policy with the
    run's generator (exact resume), the fixed or adaptive ``p``, and the overfitting signal.
    ``shard``: this rank's place in a torchrun job (its slice of every global-batch draw).

    A disabled augmenter (empty policy) returns its input unchanged and draws nothing, so runs
    without augmentation keep their random stream and results.
    """

    def __init__(
        self,
        policy: Sequence[str],
        rng: torch.Generator,
        p: float = 1.0,
        adaptive: AdaptiveAugmentProbability | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.policy = parse_policy(policy)
        self.rng = rng
        self.fixed_p = p
        self.adaptive = adaptive
        self.shard = shard  # (rank, world_size): each rank draws for its slice of the batch

    @property
    def enabled(self) -> bool:
        return bool(self.policy)

    @property
    def p(self) -> float:
        return self.adaptive.p if self.adaptive is not None else self.fixed_p

    def __call__(self, x: torch.Tensor, color_channels: int | None = None) -> torch.Tensor:
        if not self.policy:
            return x
        return diff_augment(
            x, self.policy, self.rng, color_channels=color_channels, p=self.p, shard=self.shard
        )

    def same(self, xs: Sequence[torch.Tensor], color_channels: int | None) -> list[torch.Tensor]:
        """One draw applied to several batches (feature matching compares real and fake
        activations position by position, so both must be moved the same way)."""
        state = self.rng.get_state()
        out = []
        for x in xs:
            self.rng.set_state(state)
            out.append(self(x, color_channels))
        return out

    def observe(self, real_scores: torch.Tensor) -> None:
        """Feed the critic's scores on a real batch to the adaptive controller (if any)."""
        if self.adaptive is not None and self.policy:
            self.adaptive.update(real_scores.detach())

    def state_dict(self) -> dict[str, Any]:
        return {} if self.adaptive is None else self.adaptive.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.adaptive is not None and state:
            self.adaptive.load_state_dict(state)
