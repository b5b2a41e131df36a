"""The model table: builders are registered here by method name (``wgan_gp``, ``unet``, ...).

Kept in its own module so network modules can register themselves without importing the
package ``__init__`` (which imports them), avoiding an import cycle.
"""

from __future__ import annotations

from synthmed.registry import Registry

MODELS = Registry("model")

__all__ = ["MODELS"]
