"""synthmed.training: GAN methods (one step each) and the one training loop."""

# Imported explicitly so that every method registers with METHODS on package import.
from synthmed.training import (  # noqa: F401
    methods,
    methods_diffusion,
    methods_gan,
    methods_translation,
)
