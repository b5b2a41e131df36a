"""synthmed.training: GAN methods (one step each) and the one training loop."""

# Imported explicitly so that every method registers with METHODS on package import.
from synthmed.training import methods, methods_gan, methods_translation  # noqa: F401
