"""synthmed.packaging: share a trained generator as a checksummed, pickle-free package.

``build_package`` writes ``NAME.synthmed/`` (safetensors weights, config, model card);
``load_package`` verifies and loads it; ``local_registry`` installs packages by name.
"""

from __future__ import annotations

from synthmed.packaging.local_registry import (
    default_registry,
    install_package,
    list_models,
    read_card,
    registry_dir,
    resolve_package,
)
from synthmed.packaging.package import (
    PACKAGE_FORMAT,
    ModelPackage,
    build_package,
    load_package,
    package_digest,
    package_export_info,
    verified_bytes,
)

__all__ = [
    "PACKAGE_FORMAT",
    "ModelPackage",
    "build_package",
    "default_registry",
    "install_package",
    "list_models",
    "load_package",
    "package_digest",
    "package_export_info",
    "read_card",
    "registry_dir",
    "resolve_package",
    "verified_bytes",
]
