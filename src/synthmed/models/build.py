"""Build a registered generative model from a run's config and the data it trains on.

Shared by training (a new model), sampling, evaluation and packaging (the architecture a
checkpoint was trained with, from its stored ``model_kwargs``).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from synthmed.config.schema import RunConfig
from synthmed.data.arrays import GanData
from synthmed.errors import InputError
from synthmed.models import MODELS


def model_kwargs(cfg: RunConfig, data: GanData) -> dict[str, Any]:
    """Builder arguments: sizes from the data, widths from the config, plus model.options."""
    m = cfg.model
    kwargs = {
        "image_channels": data.image_channels,
        "label_channels": data.label_channels,
        "spatial_size": list(data.spatial_size),
        "spatial_dims": m.spatial_dims,
        "latent_dim": m.latent_dim,
        "base_channels": m.base_channels,
        "kernel_size": m.kernel_size,
    }
    if data.num_image_classes:
        kwargs["num_classes"] = data.num_image_classes
    return {**kwargs, **m.options}


def build_model(name: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    """Build a registered model; data-derived arguments it does not declare are left out
    (``num_classes`` only reaches class-conditional builders)."""
    try:
        builder = MODELS.get(name)
    except KeyError as exc:
        raise InputError(f"model.name: {exc.args[0]}") from None
    kw = dict(kwargs)
    kw["spatial_size"] = tuple(kw["spatial_size"])
    params = inspect.signature(builder).parameters
    if "num_classes" in kw and "num_classes" not in params:
        kw.pop("num_classes")
    try:
        return builder(**kw)
    except TypeError as exc:  # an option the model does not know
        raise InputError(f"model '{name}': {exc}") from None
    except ValueError as exc:  # e.g. a patch size the architecture cannot produce
        raise InputError(f"model '{name}' cannot be built for these data: {exc}") from None
