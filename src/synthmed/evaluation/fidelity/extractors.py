"""Feature extractors for the feature-space fidelity and privacy metrics, all usable offline.

One interface (:class:`FeatureExtractor`), three kinds, chosen by name from ``EXTRACTORS``:

- ``"pixels"``: raw pixels, average-pooled to 16x16 (2D) or 8^3 (3D) and flattened. Needs nothing.
- ``"encoder"``: a small convolutional autoencoder trained on the REAL TRAINING split only (so
  held-out data stays an unbiased reference), cached in the run folder with the SHA-256 of the
  data it saw (:func:`load_or_fit_encoder`): every evaluation of a run uses one feature space.
- ``"module"``: any network file the user points to (Inception, RadImageNet, MedicalNet weights on
  disk), as ``torch.export`` (``.pt2``) or TorchScript; pickled modules only with ``allow_pickle``.

Images are (N, C, H, W) or (N, C, D, H, W) floats in [0, 1]; embeddings are (N, D) float32 on CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthmed.atomic import atomic_path, write_json
from synthmed.determinism import seed_everything
from synthmed.errors import InputError
from synthmed.registry import Registry

log = logging.getLogger(__name__)

EXTRACTORS = Registry("feature extractor")

ImageArray = np.ndarray | Tensor


@runtime_checkable
class FeatureExtractor(Protocol):
    """What fidelity and privacy code needs from an extractor.

    ``fit`` is a no-op for fixed extractors; learned ones must be fitted on real training images
    only. ``embed`` is batched, gradient-free and in eval mode. ``describe`` is recorded in
    metrics.json so a number can be traced to the feature space it was computed in.
    """

    name: str

    def fit(self, images: ImageArray) -> FeatureExtractor: ...

    def embed(self, images: ImageArray) -> Tensor: ...

    def describe(self) -> dict[str, Any]: ...


def as_image_tensor(images: ImageArray) -> Tensor:
    """(N, C, *S) float32 tensor on its current device (NumPy arrays become CPU tensors)."""
    x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
    if x.ndim not in (4, 5) or x.shape[0] == 0:
        raise ValueError(f"images must be (N, C, H, W) or (N, C, D, H, W), got {tuple(x.shape)}")
    return x.detach().float()


def data_hash(images: ImageArray) -> str:
    """SHA-256 of an array's dtype, shape and bytes: identifies the data an encoder was fit on."""
    arr = images.detach().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Resize (N, C, *S) to spatial ``size``: area averaging when shrinking, else (bi/tri)linear."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[2:]) == size:
        return x
    if all(s >= t for s, t in zip(x.shape[2:], size, strict=True)):
        pool = F.adaptive_avg_pool2d if x.ndim == 4 else F.adaptive_avg_pool3d
        return pool(x, size)
    mode = "bilinear" if x.ndim == 4 else "trilinear"
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def _spatial(size: int | Sequence[int], dims: int) -> tuple[int, ...]:
    return (int(size),) * dims if isinstance(size, int) else tuple(int(s) for s in size)


def batched_apply(
    fn: Callable[[Tensor], Tensor], images: ImageArray, batch_size: int, device: str
) -> Tensor:
    """Apply ``fn`` to batches on ``device`` without gradients; concatenate on CPU as float32."""
    x = as_image_tensor(images)
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            batch = x[start : start + batch_size].to(device)
            out.append(fn(batch).reshape(batch.shape[0], -1).float().cpu())
    return torch.cat(out)


@EXTRACTORS.register("pixels")
class PixelExtractor:
    """Raw downsampled pixels: the baseline feature space that needs no training or weights.

    Args:
        size: Pooled side; default 16 in 2D and 8 in 3D (D = C * 256 or C * 512).
        batch_size: Images per batch.
        device: Torch device for the pooling.
    """

    name = "pixels"

    def __init__(self, size: int | None = None, batch_size: int = 256, device: str = "cpu"):
        self.size, self.batch_size, self.device = size, batch_size, device

    def fit(self, images: ImageArray) -> PixelExtractor:  # fixed: nothing to learn
        return self

    def embed(self, images: ImageArray) -> Tensor:
        x = as_image_tensor(images)
        dims = x.ndim - 2
        size = _spatial(self.size or (16 if dims == 2 else 8), dims)
        return batched_apply(lambda b: resize(b, size), x, self.batch_size, self.device)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size}


class ConvAutoencoder(nn.Module):
    """Small strided-conv autoencoder, 2D or 3D; ``len(widths) + 1`` halvings of the input.

    Args:
        spatial_dims: 2 or 3.
        in_channels: Image channels.
        widths: Encoder widths before the bottleneck.
        latent: Bottleneck channels.
        embed_grid: Cells per axis the bottleneck is average-pooled to in :meth:`embed`.

    Maps (N, C, *S) in [0, 1] to a reconstruction of the same shape (sigmoid output). The
    embedding (N, sum(widths) + latent * embed_grid**spatial_dims) joins the global averages of
    the early stages (local texture and sharpness, like Inception's mixed features) with the
    coarsely pooled bottleneck (layout), standardised with real-training statistics.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        widths: Sequence[int] = (16, 32),
        latent: int = 32,
        embed_grid: int = 2,
    ):
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        deconv = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        pairs = list(pairwise([in_channels, *widths, latent]))
        stages = [nn.Sequential(conv(a, b, 3, 2, 1), nn.LeakyReLU(0.2)) for a, b in pairs]
        self.encoder = nn.Sequential(*stages)
        dec: list[nn.Module] = []
        for i, (a, b) in reversed(list(enumerate(pairs))):
            dec += [deconv(b, a, 4, stride=2, padding=1), nn.LeakyReLU(0.2) if i else nn.Sigmoid()]
        self.decoder = nn.Sequential(*dec)
        pool = nn.AdaptiveAvgPool2d if spatial_dims == 2 else nn.AdaptiveAvgPool3d
        self.grid_pool = pool(embed_grid)
        # Real-training feature statistics, set after fitting: standardised features keep the
        # KID polynomial kernel (x.y / D + 1)^3 in its intended range whatever the encoder's scale.
        dim = sum(widths) + latent * embed_grid**spatial_dims
        self.register_buffer("feat_mean", torch.zeros(dim))
        self.register_buffer("feat_std", torch.ones(dim))

    def pooled(self, x: Tensor) -> Tensor:
        """Unstandardised embedding, (N, D)."""
        parts = []
        for i, stage in enumerate(self.encoder):
            x = stage(x)
            last = i == len(self.encoder) - 1
            parts.append(self.grid_pool(x).flatten(1) if last else x.flatten(2).mean(2))
        return torch.cat(parts, dim=1)

    def embed(self, x: Tensor) -> Tensor:
        return (self.pooled(x) - self.feat_mean) / self.feat_std

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


def _default_input_size(spatial: Sequence[int], levels: int) -> int:
    """Largest multiple of 2**levels up to min(side, 32 in 2D / 16 in 3D): cheap yet detailed."""
    step = 2**levels
    cap = 32 if len(spatial) == 2 else 16
    side = min(min(spatial), cap) // step * step
    if side < step:
        raise ValueError(f"images of side {min(spatial)} are too small; need >= {step}")
    return side


@EXTRACTORS.register("encoder")
class EncoderExtractor:
    """Autoencoder trained on the real training split; embeds with its encoder activations.

    The embedding (see :class:`ConvAutoencoder`) joins globally averaged early stages with the
    bottleneck pooled to ``embed_grid`` cells per axis, which keeps the coarse layout that
    matters for aligned medical images (1 = global pooling, translation-invariant). Training is
    MSE reconstruction with Adam; weights, batches and embeddings are deterministic given
    ``seed`` on CPU.

    Args:
        steps: Optimiser steps (a few hundred suffice for a stable feature space).
        lr: Adam learning rate.
        seed: Seed of the initial weights and of the batch draws.
        latent: Bottleneck channels.
        widths: Encoder widths before the bottleneck.
        input_size: Side images are resized to; default see :func:`_default_input_size`.
        embed_grid: Pooled cells per axis of the bottleneck.
        batch_size: Images per step and per embedding batch.
        device: Torch device.
    """

    name = "encoder"

    def __init__(
        self,
        steps: int = 300,
        lr: float = 2e-3,
        seed: int = 0,
        latent: int = 32,
        widths: Sequence[int] = (16, 32),
        input_size: int | None = None,
        embed_grid: int = 2,
        batch_size: int = 32,
        device: str = "cpu",
    ):
        self.steps, self.lr, self.seed, self.latent = steps, lr, seed, latent
        self.widths, self.input_size, self.embed_grid = tuple(widths), input_size, embed_grid
        self.batch_size, self.device = batch_size, device
        self.model: ConvAutoencoder | None = None
        self.meta: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """Settings that define the feature space (a cached encoder is reused only if they match)."""
        keys = ("steps", "lr", "seed", "latent", "widths", "input_size", "embed_grid", "batch_size")
        values = {k: getattr(self, k) for k in keys}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def _build(self, spatial_dims: int, in_channels: int) -> ConvAutoencoder:
        with torch.random.fork_rng(devices=[]):
            seed_everything(self.seed)
            model = ConvAutoencoder(
                spatial_dims, in_channels, self.widths, self.latent, self.embed_grid
            )
        return model.to(self.device)

    def fit(self, images: ImageArray) -> EncoderExtractor:
        """Train on REAL TRAINING images only; records their hash and the final loss."""
        x = as_image_tensor(images).cpu()
        dims, levels = x.ndim - 2, len(self.widths) + 1
        self.input_size = self.input_size or _default_input_size(x.shape[2:], levels)
        x = resize(x, _spatial(self.input_size, dims))
        self.model = self._build(dims, x.shape[1])
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        self.model.train()
        loss = torch.tensor(float("nan"))
        for _ in range(self.steps):
            idx = torch.randint(0, x.shape[0], (min(self.batch_size, x.shape[0]),), generator=gen)
            batch = x[idx].to(self.device)
            loss = F.mse_loss(self.model(batch), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self.model.eval()
        self._set_feature_stats(x)
        final = float(loss.detach())
        self.meta = {
            "data_hash": data_hash(images),
            "n_images": int(x.shape[0]),
            "spatial_dims": dims,
            "in_channels": int(x.shape[1]),
            "final_loss": final,
        }
        log.info("encoder fitted on %d real training images, loss %.4g", x.shape[0], final)
        return self

    def _set_feature_stats(self, resized: Tensor) -> None:
        """Per-dimension mean and std of the training embeddings (std floored for dead units)."""
        raw = batched_apply(self.model.pooled, resized, self.batch_size, self.device).double()
        std = raw.std(0, correction=0) if raw.shape[0] > 1 else torch.ones(raw.shape[1])
        std = std.clamp_min(1e-3 * float(std.max()) + 1e-12)
        self.model.feat_mean.copy_(raw.mean(0).float())
        self.model.feat_std.copy_(std.float())

    def _encode(self, batch: Tensor) -> Tensor:
        return self.model.embed(resize(batch, _spatial(self.input_size, batch.ndim - 2)))

    def embed(self, images: ImageArray) -> Tensor:
        if self.model is None:
            raise RuntimeError("encoder is not fitted: call fit(real_train) or load_or_fit_encoder")
        self.model.eval()
        return batched_apply(self._encode, images, self.batch_size, self.device)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.config(), **self.meta}

    def save(self, path: str | Path) -> None:
        """Write the weights (safetensors if installed, else a torch state dict) + a JSON sidecar."""
        if self.model is None:
            raise RuntimeError("nothing to save: the encoder is not fitted")
        path = Path(path)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(path) as tmp:
            if path.suffix == ".safetensors":
                from safetensors.torch import save_file

                save_file(state, str(tmp))
            else:
                torch.save(state, tmp)
        # The weights' hash ties the sidecar to this exact file: a crash between the two writes
        # cannot pair new weights with an old data hash.
        weights_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        sidecar = {"config": self.config(), **self.meta, "weights_sha256": weights_sha256}
        write_json(path.with_suffix(".json"), sidecar)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> EncoderExtractor:
        """Rebuild an encoder written by :meth:`save` (weights-only loading: no code executed)."""
        path = Path(path)
        side = json.loads(path.with_suffix(".json").read_text())
        enc = cls(**side["config"], device=device)
        if hashlib.sha256(path.read_bytes()).hexdigest() != side.get("weights_sha256"):
            raise ValueError(f"{path} does not match its sidecar (weights_sha256)")
        enc.meta = {k: v for k, v in side.items() if k not in ("config", "weights_sha256")}
        enc.model = enc._build(int(enc.meta["spatial_dims"]), int(enc.meta["in_channels"]))
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        enc.model.load_state_dict(state)
        enc.model.to(device).eval()
        return enc


def _weights_suffix() -> str:
    """safetensors when installed (no pickle at all), else a weights-only torch state dict."""
    return ".safetensors" if importlib.util.find_spec("safetensors") else ".pt"


def load_or_fit_encoder(
    cache_dir: str | Path, images: ImageArray, **kwargs: Any
) -> EncoderExtractor:
    """The run's encoder: reuse the cached one if it saw the same data with the same settings.

    Args:
        cache_dir: Folder for ``fidelity_encoder.{safetensors,pt}`` and ``fidelity_encoder.json``
            (the run folder, so each run keeps its own feature space).
        images: REAL TRAINING images (N, C, *S) in [0, 1]; never held-out or synthetic ones.
        **kwargs: :class:`EncoderExtractor` settings.

    Returns:
        A fitted encoder; refitted and rewritten when the data hash or a setting differs.
    """
    cached = cached_encoder(cache_dir, images, **kwargs)
    if cached is not None:
        return cached
    wanted = EncoderExtractor(**kwargs)
    wanted.fit(images)
    wanted.save(Path(cache_dir) / f"fidelity_encoder{_weights_suffix()}")
    return wanted


def cached_encoder(
    cache_dir: str | Path, images: ImageArray, **kwargs: Any
) -> EncoderExtractor | None:
    """The cached encoder of :func:`load_or_fit_encoder` when one fits ``images`` and the
    settings, else None: never trains one (the export gate uses it only when it is free)."""
    cache_dir = Path(cache_dir)
    device = kwargs.get("device", "cpu")
    wanted = EncoderExtractor(**kwargs)
    digest = data_hash(images)
    for suffix in (".safetensors", ".pt"):
        path = cache_dir / f"fidelity_encoder{suffix}"
        if not (path.exists() and path.with_suffix(".json").exists()):
            continue
        try:
            cached = EncoderExtractor.load(path, device)
        except (ImportError, OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
            log.warning("ignoring unreadable cached encoder %s: %s", path, err)
            continue
        have = cached.config()
        if wanted.input_size is None:  # the default size depends only on the (hashed) data
            have["input_size"] = None
        if cached.meta.get("data_hash") == digest and have == wanted.config():
            log.info("using cached encoder %s", path)
            return cached
    return None


def _load_user_module(path: Path, allow_pickle: bool) -> nn.Module:
    """torch.export (.pt2) or TorchScript file; a pickled nn.Module only when explicitly allowed."""
    if not path.exists():
        raise InputError("feature extractor file not found", path)
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except RuntimeError:
        pass  # not TorchScript
    if not allow_pickle:
        raise InputError(
            "not a TorchScript or torch.export (.pt2) file. Loading a pickled nn.Module runs "
            "arbitrary code from the file, so it is refused by default; script/export the "
            "network, or pass allow_pickle=True only for a file you trust",
            path,
        )
    module = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(module, nn.Module):
        raise InputError(
            f"file holds a {type(module).__name__}, not an nn.Module (a state dict needs its "
            "network class: build it, load the weights and pass the module itself)",
            path,
        )
    return module


def _pool_output(out: Any) -> Tensor:
    """First tensor of a tuple/list/dict output; feature maps are global-average-pooled."""
    if isinstance(out, dict):
        out = next(iter(out.values()))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.flatten(2).mean(2) if out.ndim > 2 else out


@EXTRACTORS.register("module")
class ModuleExtractor:
    """A user-supplied network (weights on disk) as a fixed feature extractor.

    Args:
        source: Path to a ``.pt2`` (torch.export) or TorchScript file, or an ``nn.Module``.
        allow_pickle: Also accept a pickled module (``torch.save(model)``); this executes code
            from the file, so it is off unless the user asks for it.
        input_size: Resize images to this side (e.g. 299 for Inception, 224 for RadImageNet).
        channels: Channels the network expects: 1 -> 3 repeats grey images, 3 -> 1 averages.
        normalize: ``(mean, std)`` per channel applied after resizing, e.g. ImageNet's.
        batch_size: Images per forward pass (a .pt2 file must be exported with a dynamic batch).
        device: Torch device.

    The output is flattened to (N, D); outputs with spatial axes are global-average-pooled.
    """

    name = "module"

    def __init__(
        self,
        source: str | Path | nn.Module,
        allow_pickle: bool = False,
        input_size: int | Sequence[int] | None = None,
        channels: int | None = None,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
        batch_size: int = 64,
        device: str = "cpu",
    ):
        if isinstance(source, nn.Module):
            self.module, self.source = source, type(source).__name__
        else:
            self.module, self.source = _load_user_module(Path(source), allow_pickle), str(source)
        self.input_size, self.channels, self.normalize = input_size, channels, normalize
        self.batch_size, self.device = batch_size, device
        self.module.to(device)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self.module.eval()  # torch.export modules have no train/eval switch

    def fit(self, images: ImageArray) -> ModuleExtractor:
        return self

    def _prepare(self, x: Tensor) -> Tensor:
        if self.input_size is not None:
            x = resize(x, _spatial(self.input_size, x.ndim - 2))
        if self.channels is not None and x.shape[1] != self.channels:
            if x.shape[1] == 1:
                x = x.repeat(1, self.channels, *([1] * (x.ndim - 2)))
            elif self.channels == 1:
                x = x.mean(1, keepdim=True)
            else:
                raise ValueError(f"cannot map {x.shape[1]} channels to {self.channels}")
        if self.normalize is not None:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            mean, std = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in self.normalize)
            x = (x - mean.reshape(shape)) / std.reshape(shape)
        return x

    def embed(self, images: ImageArray) -> Tensor:
        fn = lambda b: _pool_output(self.module(self._prepare(b)))  # noqa: E731
        return batched_apply(fn, images, self.batch_size, self.device)

    def describe(self) -> dict[str, Any]:
        norm = None if self.normalize is None else [list(v) for v in self.normalize]
        fields = {k: getattr(self, k) for k in ("source", "input_size", "channels")}
        return {"name": self.name, **fields, "normalize": norm}
