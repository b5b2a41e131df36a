"""synthmed: labelled synthetic medical-image datasets, with proof of what they are worth."""

import os
from importlib.metadata import PackageNotFoundError, version

# Before torch loads MKL: dynamic threading makes two runs of one command differ whenever
# another process competes for the cores (see synthmed.determinism).
os.environ.setdefault("MKL_DYNAMIC", "FALSE")

try:
    __version__ = version("synthmed")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.1.0"

__all__ = ["__version__"]


def __getattr__(name: str):
    """``synthmed.generate(name, n, seed)`` without importing torch on ``import synthmed``."""
    if name == "generate":
        from synthmed.hub import generate

        globals()["generate"] = generate
        return generate
    raise AttributeError(f"module 'synthmed' has no attribute {name!r}")
