"""Label-map -> image translators: the shared model class and the conditional PatchGAN critic.

pix2pix (Isola et al. 2017) and SPADE (Park et al. 2019) map a one-hot label map to an image
and are judged by patch discriminators on ``concat(label map, image)``. Medical uses: Shin et
al. 2018 (pix2pix, 3D brain MRI from edited tumour labels), Platscher et al. 2021 (pix2pix vs
SPADE, 2D/3D DWI from label maps) and Guibas et al. 2017 (stage II: vessel mask -> fundus).
"""

from __future__ import annotations

import logging
import math

import torch
from monai.networks.nets import PatchDiscriminator
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from synthmed.models.base import GenerativeModel
from synthmed.models.blocks import check_spatial_dims

log = logging.getLogger(__name__)

# Names accepted by the ``norm`` option -> MONAI's norm factory names.
NORMS = {"instance": "INSTANCE", "batch": "BATCH"}
_AVG_POOL = {2: nn.AvgPool2d, 3: nn.AvgPool3d}
_PATCH_KERNEL = 4  # 4x4 convs, padding 1: the PatchGAN of Isola 2017 / pix2pixHD / SPADE


def monai_norm(norm: str) -> str:
    """Validate a ``norm`` option (``instance`` or ``batch``) and return MONAI's name for it."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
    return NORMS[norm]


def check_size(spatial_size: tuple[int, ...], spatial_dims: int) -> tuple[int, ...]:
    """Return ``spatial_size`` as ints; ValueError unless it has ``spatial_dims`` entries."""
    check_spatial_dims(spatial_dims)
    size = tuple(int(s) for s in spatial_size)
    if len(size) != spatial_dims:
        raise ValueError(f"spatial_size {size} must have {spatial_dims} entries (spatial_dims)")
    return size


def _last_hidden_size(side: int, n_layers: int) -> int:
    """Side of MONAI PatchDiscriminator's last normalised layer (k=4, p=1, strides 2..2,1)."""
    side = (side - 2) // 2 + 1  # initial stride-2 conv
    for i in range(n_layers):
        side = side - 1 if i == n_layers - 1 else (side - 2) // 2 + 1
    return side


def patch_layers_that_fit(spatial_size: tuple[int, ...], n_layers: int) -> int:
    """Largest ``n <= n_layers`` (>= 1) whose last hidden map has >= 2 voxels per side.

    The 70x70 PatchGAN (``n_layers=3``) needs >= 24 px per side; smaller inputs (patches,
    3D volumes) get a shallower, smaller-receptive-field critic instead of an error. Two voxels
    keep InstanceNorm defined and leave a >= 1 voxel logit map after the final 4x4 conv.

    Raises:
        ValueError: if even one layer does not fit (a side below 8).
    """
    for n in range(n_layers, 0, -1):
        if _last_hidden_size(min(spatial_size), n) >= 2:
            return n
    raise ValueError(f"spatial_size {tuple(spatial_size)} is too small for a PatchGAN (>= 8)")


class MultiScalePatchCritic(nn.Module):
    """Conditional PatchGAN on ``concat(condition, image)``, at one or more input scales.

    Each scale is a MONAI ``PatchDiscriminator`` (widths ``base, 2 base, 4 base, ...``, 4x4
    convs, LeakyReLU 0.2; ``n_layers=3`` is the 70x70 PatchGAN of Isola 2017 in 2D). Scale
    ``j`` sees the input average-pooled ``j`` times (3x3, stride 2), as in pix2pixHD (Wang et
    al. 2018) and SPADE (Park et al. 2019). MONAI's ``MultiScalePatchDiscriminator`` is not
    used: it deepens each discriminator instead of downsampling the input and requires
    >= 256 px inputs. Layers are trimmed per scale by :func:`patch_layers_that_fit`.

    Args:
        in_channels: condition channels K + image channels.
        spatial_size: input size, ``spatial_dims`` entries.
        spatial_dims: 2 or 3.
        base_channels: width of the first conv.
        n_layers: MONAI ``num_layers_d`` (3 -> 70x70 receptive field).
        num_scales: number of discriminators (1 for pix2pix, 2 for SPADE).
        norm: ``instance`` or ``batch``.
        bias: bias in the normalised convs (pix2pix: only with InstanceNorm).
        spectral_norm: spectral normalisation on every conv (Park 2019: "spectralinstance").

    Shapes:
        forward: condition ``(N, K, *S)``, image ``(N, C, *S)`` -> list (one per scale) of
        logit maps ``(N, 1, *S_j)``, unbounded.
    """

    def __init__(
        self,
        in_channels: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int = 2,
        base_channels: int = 64,
        n_layers: int = 3,
        num_scales: int = 1,
        norm: str = "instance",
        bias: bool = True,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        size = input_size = check_size(spatial_size, spatial_dims)
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        self.layers_per_scale: list[int] = []
        for _ in range(num_scales):
            self.layers_per_scale.append(patch_layers_that_fit(size, n_layers))
            size = tuple(math.ceil(s / 2) for s in size)  # the 3x3/2 average pool below
        if self.layers_per_scale != [n_layers] * num_scales:
            log.info("PatchGAN layers per scale: %s for %s", self.layers_per_scale, input_size)
        self.scales = nn.ModuleList(
            PatchDiscriminator(
                spatial_dims=spatial_dims,
                channels=base_channels,
                in_channels=in_channels,
                out_channels=1,
                num_layers_d=n,
                kernel_size=_PATCH_KERNEL,
                norm=monai_norm(norm),
                bias=bias,
                padding=1,
            )
            for n in self.layers_per_scale
        )
        self.downsample = _AVG_POOL[spatial_dims](3, stride=2, padding=1, count_include_pad=False)
        if spectral_norm:  # after MONAI's N(0, 0.02) init: the parametrisation keeps it
            for module in [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]:
                _spectral_norm(module)

    def forward_with_features(
        self, condition: torch.Tensor, image: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """Logit maps per scale and, per scale, the hidden activations (for feature matching).

        Returns:
            ``(logits, features)``: ``logits[j]`` is ``(N, 1, *S_j)``; ``features[j]`` lists
            the outputs of every layer of scale ``j`` except the final logit conv.
        """
        x = torch.cat([condition, image], dim=1)
        logits, features = [], []
        for j, disc in enumerate(self.scales):
            if j:
                x = self.downsample(x)
            outs = disc(x)  # MONAI: every layer's output, the logit map last
            logits.append(outs[-1])
            features.append(outs[:-1])
        return logits, features

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
        """Logit maps, one per scale (see class docstring)."""
        return self.forward_with_features(condition, image)[0]


class TranslatorModel(GenerativeModel):
    """A label-map -> image generator and its conditional critic (kind ``translator``).

    Shapes:
        generate: condition ``(N, K, *S)`` one-hot in {0, 1} (background first,
        ``K = label_channels + 1``), optional z ``(N, latent_dim)`` ->
        ``(N, image_channels, *S)`` in [-1, 1].
        critic: ``(condition, image)`` -> list of logit maps (see
        :class:`MultiScalePatchCritic`).
    """

    kind = "translator"
    needs_condition = True

    @property
    def condition_channels(self) -> int:
        """K: one-hot condition channels, background included."""
        return self.label_channels + 1

    def generate(self, condition: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Translate a one-hot label map into an image (see class docstring for shapes)."""
        return self.generator(condition, z)

    def synthesize(self, z=None, classes=None, condition=None) -> torch.Tensor:
        """The generated image next to the condition's label channels: the label map that
        made the image is its label."""
        image = self.generator(condition, z) if self.latent_dim else self.generator(condition)
        label_part = condition[:, 1:] * 2 - 1
        return torch.cat([image, label_part.to(image.dtype)], dim=1)

    forward = generate
