"""A local folder of installed model packages, addressed by name.

The folder is ``--registry`` when given, else ``$SYNTHMED_MODELS``, else the user's cache dir
(``$XDG_CACHE_HOME/synthmed/models``, default ``~/.cache/synthmed/models``). Each package is a
``NAME.synthmed/`` folder; installing verifies it first and copies the verified bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from synthmed.atomic import atomic_dir, write_bytes
from synthmed.errors import InputError
from synthmed.outputs import PACKAGE_MARKERS, check_output_dir
from synthmed.packaging.package import (
    CARD_MD,
    CHECKSUMS,
    META,
    SUFFIX,
    check_name,
    package_digest,
    read_package_meta,
    verified_bytes,
)

ENV_VAR = "SYNTHMED_MODELS"


def default_registry() -> Path:
    """``$XDG_CACHE_HOME/synthmed/models`` (``~/.cache/synthmed/models`` without it)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "synthmed" / "models"


def registry_dir(registry: str | Path | None = None) -> Path:
    """The registry folder: the argument, else ``$SYNTHMED_MODELS``, else the default."""
    if registry:
        return Path(registry)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else default_registry()


def list_models(registry: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per installed package (name, model, version, created, path, digest).

    Listing reads ``package.json`` only; checksums are verified when a package is loaded.
    """
    folder = registry_dir(registry)
    rows = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        row = {"name": path.name[: -len(SUFFIX)], "path": str(path)}
        try:
            meta = json.loads((path / META).read_text())
            row.update(
                name=meta["name"],
                model=meta["model_name"],
                version=meta["synthmed_version"],
                created=meta["created"],
                digest=package_digest(path),
            )
        except (OSError, ValueError, KeyError) as exc:
            row["error"] = f"unreadable package: {type(exc).__name__}"
        rows.append(row)
    return rows


def resolve_package(name_or_path: str | Path, registry: str | Path | None = None) -> Path:
    """A package folder from a path, or from a name installed in the registry."""
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate
    folder = registry_dir(registry)
    name = str(name_or_path).removesuffix(SUFFIX)
    path = folder / f"{name}{SUFFIX}"
    if path.is_dir():
        return path
    known = ", ".join(row["name"] for row in list_models(folder)) or "none"
    raise InputError(
        f"no model package '{name_or_path}': not a folder, and not installed in {folder} "
        f"(installed: {known})"
    )


def install_package(
    path: str | Path, registry: str | Path | None = None, name: str | None = None
) -> Path:
    """Verify a package and copy it into the registry as ``NAME.synthmed`` (replacing one)."""
    path = Path(path)
    contents = verified_bytes(path)
    meta = read_package_meta(contents, path)
    if name is not None and name != meta["name"]:
        raise InputError(f"package is named '{meta['name']}', not '{name}'", path / META)
    target = registry_dir(registry) / f"{check_name(meta['name'])}{SUFFIX}"
    check_output_dir(target, option="--registry", markers=PACKAGE_MARKERS)
    with atomic_dir(target) as tmp:
        for file, data in contents.items():
            write_bytes(tmp / file, data)
        write_bytes(tmp / CHECKSUMS, (path / CHECKSUMS).read_bytes())
    verified_bytes(target)  # the copy is what users will load: check it too
    return target


def read_card(name_or_path: str | Path, registry: str | Path | None = None) -> str:
    """The verified Markdown model card of a package."""
    path = resolve_package(name_or_path, registry)
    contents = verified_bytes(path)
    if CARD_MD not in contents:
        raise InputError(f"package has no {CARD_MD}", path)
    return contents[CARD_MD].decode("utf-8")
