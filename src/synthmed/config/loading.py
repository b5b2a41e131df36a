"""YAML loading, presets, ``--set`` overrides and config hashing.

Resolution order (later wins): preset file -> the preset's ``quick`` block (with ``--quick``)
-> the user's YAML -> ``--set key.path=value`` overrides. The resolved config is what the
run folder stores and what the config hash covers.
"""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from synthmed.config.schema import RunConfig
from synthmed.errors import InputError

PRESET_PACKAGE = "synthmed.config.presets"


def list_presets() -> list[str]:
    """Names of the built-in presets (file stems of ``config/presets/*.yaml``)."""
    folder = resources.files(PRESET_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_preset(name: str) -> dict[str, Any]:
    """The raw mapping of a built-in preset; unknown names list the valid ones."""
    path = resources.files(PRESET_PACKAGE) / f"{name}.yaml"
    if not path.is_file():
        raise InputError(f"unknown preset '{name}'; valid presets: {', '.join(list_presets())}")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save the config as UTF-8",
            path,
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read the config: {exc.strerror or exc}", path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}".replace("\n", " "), path) from exc
    except RecursionError:  # PyYAML's composer recurses once per level of nesting
        raise InputError("YAML nested too deeply to read (thousands of levels)", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("a config file must hold a mapping at the top level", path)
    return data


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins, mappings merge, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if _same_kind_mappings(out.get(key), value):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _same_kind_mappings(old: Any, new: Any) -> bool:
    """Mappings merge, except a data source whose ``kind`` changes: that one is replaced whole
    (a user's folder source must not inherit the preset's phantom settings)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return False
    return "kind" not in new or old.get("kind") == new.get("kind")


def apply_override(config: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``a.b.c=value`` override; the value is parsed as YAML (numbers, lists, ...)."""
    if "=" not in assignment:
        raise InputError(f"override '{assignment}' must look like key.path=value")
    dotted, raw = assignment.split("=", 1)
    keys = [k for k in dotted.strip().split(".") if k]
    if not keys:
        raise InputError(f"override '{assignment}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise InputError(
            f"override '{assignment}': the value is not valid YAML ({problem})"
        ) from None
    nested: dict[str, Any] = value
    for key in reversed(keys):
        nested = {key: nested}
    return deep_merge(config, nested)


def _format_validation_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"key '{key}': {msg}")
    return f"invalid config ({source}): " + "; ".join(parts)


def resolve_config(
    user: dict[str, Any] | None = None,
    *,
    preset: str | None = None,
    quick: bool = False,
    overrides: list[str] | None = None,
    source: str = "config",
    apply_preset: bool = True,
) -> RunConfig:
    """Merge preset, quick block, user mapping and overrides, then validate.

    ``apply_preset=False`` reads an already resolved config (a run folder's): its ``preset``
    key is a record, and merging the preset again would bring back what the run changed.

    Raises:
        InputError: naming the bad key(s) when validation fails.
    """
    user = dict(user or {})
    preset = preset or user.get("preset")
    merged: dict[str, Any] = {}
    if preset and apply_preset:
        merged = read_preset(preset)
        quick_block = merged.pop("quick", {}) or {}
        if quick:
            merged = deep_merge(merged, quick_block)
        merged["preset"] = preset
    user.pop("quick", None)
    merged = deep_merge(merged, user)
    for assignment in overrides or []:
        merged = apply_override(merged, assignment)
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise InputError(_format_validation_error(exc, source)) from None


def read_data_file(path: str | Path) -> dict[str, Any]:
    """A data description file (its ``data:`` mapping, or the whole file when it has none),
    with the sources' relative paths resolved against the file's folder."""
    path = Path(path)
    raw = read_yaml(path)
    data = raw.get("data", raw)
    if not isinstance(data, dict):
        raise InputError("a data file must hold a mapping (the run config's data section)", path)
    data = copy.deepcopy(data)
    for split in ("train", "test"):
        source = data.get(split)
        if isinstance(source, dict):
            for key in ("root", "csv", "npz"):
                if source.get(key) is not None:
                    source[key] = str((path.resolve().parent / source[key]).resolve())
    split = data.get("split")
    if isinstance(split, dict) and split.get("file") is not None:
        split["file"] = str((path.resolve().parent / split["file"]).resolve())
    return data


def load_run_config(
    path: str | Path | None = None,
    *,
    preset: str | None = None,
    quick: bool = False,
    overrides: list[str] | None = None,
    data_file: str | Path | None = None,
) -> tuple[RunConfig, Path | None]:
    """Load a user YAML (may name a preset) and resolve it.

    ``data_file`` (``--data``) replaces the data section with a separate data description,
    so one data file serves every preset.

    Returns:
        The validated config and the folder relative paths in it are resolved against
        (the YAML's folder), or None when no file was given.
    """
    user = read_yaml(path) if path is not None else {}
    if data_file is not None:
        user["data"] = deep_merge(user.get("data", {}), read_data_file(data_file))
    base_dir = Path(path).resolve().parent if path is not None else None
    source = str(path) if path is not None else f"preset {preset}"
    return resolve_config(
        user, preset=preset, quick=quick, overrides=overrides, source=source
    ), base_dir


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """JSON/YAML-safe mapping of a config (paths as strings, tuples as lists)."""
    return json.loads(config.model_dump_json())


def config_hash(config: RunConfig) -> str:
    """sha256 of the canonical JSON of the resolved config (key order independent)."""
    canonical = json.dumps(config_to_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def dump_yaml(config: RunConfig) -> str:
    """Readable YAML of the resolved config, every key written (a ``null`` is kept: dropping
    it would let the schema default, e.g. ``patches``, come back when the file is read)."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def absolutize_paths(config: RunConfig, base_dir: Path | None) -> RunConfig:
    """Resolve data paths against the config file's folder, so the saved run config works
    from any working directory (``synthmed evaluate`` re-reads the real data from it)."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()

    def fix(source):
        if source is None:
            return None
        updates = {
            key: (base / value).resolve()
            for key in ("root", "csv", "npz")
            if (value := getattr(source, key)) is not None
        }
        return source.model_copy(update=updates)

    split = config.data.split
    if split.file is not None:
        split = split.model_copy(update={"file": (base / split.file).resolve()})
    data = config.data.model_copy(
        update={"train": fix(config.data.train), "test": fix(config.data.test), "split": split}
    )
    return config.model_copy(update={"data": data})


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config saved in a run folder (``config.yaml``)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise InputError("no config.yaml: not a synthmed run folder", run_dir)
    return resolve_config(read_yaml(path), source=str(path), apply_preset=False)
