"""Model packages: a trained generator as an inspectable, checksummed folder without pickle.

A package is a folder ``NAME.synthmed/`` rather than one archive, so it can be read with any
file browser, diffed, and checked with ``sha256sum -c checksums.sha256``::

    weights.safetensors   generator state dict (safetensors: tensors only, no code)
    critic.safetensors    optional (``include_critic``), e.g. for LOGAN-style audits
    package.json          format, model name/kwargs, label names, preprocessing, sample
                          defaults, versions, hashes, sha256 of every other file
    config.yaml           the resolved run config, local data paths removed
    card.md, card.json    model card (intended use, data description, results, limitations)
    checksums.sha256      sha256 of every file above, ``sha256sum`` format

Loading verifies every checksum (weights and package.json from the very bytes that are then
parsed) and refuses a package that differs, naming the file. Nothing is ever unpickled; the
run checkpoint is read with ``torch.load(weights_only=True)``. The checksums detect corruption
and edits; they are not a signature: pin :func:`package_digest` to trust a specific package.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from synthmed import __version__
from synthmed.atomic import atomic_dir, write_json, write_text
from synthmed.errors import InputError
from synthmed.packaging.card import build_card
from synthmed.privacy_record import checkpoint_record

PACKAGE_FORMAT = "synthmed-package-1"
SUFFIX = ".synthmed"
WEIGHTS, CRITIC, META = "weights.safetensors", "critic.safetensors", "package.json"
CONFIG, CARD_MD, CARD_JSON, CHECKSUMS = "config.yaml", "card.md", "card.json", "checksums.sha256"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
REDACTED = "<local path removed>"
NOISE_SEED_REDACTED = "<removed: it reproduces the DP noise>"


@dataclass
class ModelPackage:
    """A verified package: its folder, ``package.json`` and the ready generator."""

    path: Path
    meta: dict[str, Any]
    generator: Any  # synthmed.sampling.export.LoadedGenerator

    @property
    def name(self) -> str:
        return str(self.meta["name"])


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or name.endswith(SUFFIX):
        raise InputError(f"package name '{name}': use letters, digits, '.', '_' and '-' only")
    return name


def redact_config(config: dict) -> dict:
    """The config without local data locations (folder names may identify patients)."""
    config = json.loads(json.dumps(config))
    for stage in (config, config.get("mask_stage") or {}):
        privacy = (stage.get("train") or {}).get("privacy") or {}
        if privacy.get("noise_seed") is not None:  # it would let anyone recompute the noise
            privacy["noise_seed"] = NOISE_SEED_REDACTED
    for split in ("train", "test"):
        source = (config.get("data") or {}).get(split) or {}
        for key in ("root", "csv", "npz"):
            if source.get(key) is not None:
                source[key] = REDACTED
    return config


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _weights_used(state: dict, config) -> str:
    from synthmed.sampling.export import generator_state

    return generator_state(state, config.sample.weights)[1]


def package_meta(run_dir: Path, state: dict, config, name: str, ckpt_sha: str) -> dict:
    """``package.json`` content (without the file hashes, added when the files exist)."""
    from synthmed.export.core import run_export_info

    kwargs = state["model_kwargs"]
    dims = len(kwargs["spatial_size"])
    info = run_export_info(
        run_dir, int(kwargs["image_channels"]), dims, int(state["num_classes"]) - 1
    )
    pre = config.data.preprocess.model_dump(mode="json")
    patches = config.data.patches
    return {
        "format": PACKAGE_FORMAT,
        "name": name,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model_name": state["model_name"],
        "model_kwargs": kwargs,
        "num_classes": int(state["num_classes"]),
        "image_channels": int(kwargs["image_channels"]),
        "label_names": info.label_names,
        "channel_names": info.channel_names,
        "preprocessing": {
            **pre,
            "patch_size": patches.size if patches is not None else None,
            "output_range": [0.0, 1.0],
            "spacing_mm": list(info.spacing),
            "spacing_source": info.spacing_source,
        },
        "sample_defaults": config.sample.model_dump(mode="json", exclude={"formats"}),
        "training": {
            "steps": int(state["step"]),
            "method": config.train.method,
            "generator_weights": _weights_used(state, config),
            "privacy": checkpoint_record(state),  # train.privacy: epsilon spent, delta, ...
        },
        "synthmed_version": __version__,
        "trained_with_version": state.get("synthmed_version", ""),
        "config_hash": state["config_hash"],
        "source_checkpoint_sha256": ckpt_sha,
    }


def _save_tensors(path: Path, state_dict: dict) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    save_file(tensors, str(path), metadata={"format": PACKAGE_FORMAT})


def _write_checksums(folder: Path, meta: dict) -> None:
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    meta["files"] = {f: sha256_bytes((folder / f).read_bytes()) for f in files}
    write_json(folder / META, meta)
    digests = {**meta["files"], META: sha256_bytes((folder / META).read_bytes())}
    write_text(folder / CHECKSUMS, "".join(f"{d}  {f}\n" for f, d in sorted(digests.items())))


def build_package(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    name: str | None = None,
    include_critic: bool = False,
) -> Path:
    """Package a trained run's last checkpoint as ``NAME.synthmed/`` (written atomically).

    Args:
        run_dir: a trained run folder (config.yaml, checkpoints/last.pt; metrics.json and
            data_summary.json are used for the card when present).
        out: package folder; default ``RUN/NAME.synthmed``.
        name: package name (default: the run config's ``name``).
        include_critic: also ship the critic (needed for critic-score privacy audits).
    """
    from synthmed.api import load_run_config
    from synthmed.checkpoints import file_sha256, load_checkpoint, sampling_checkpoint
    from synthmed.config.loading import config_to_dict
    from synthmed.outputs import PACKAGE_MARKERS, check_output_dir
    from synthmed.sampling.export import generator_state

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    name = check_name(name or config.name)
    out = Path(out) if out is not None else run_dir / f"{name}{SUFFIX}"
    check_output_dir(out, markers=PACKAGE_MARKERS, protected={"the run folder": run_dir})
    ckpt = sampling_checkpoint(run_dir, config.sample.checkpoint)
    state = load_checkpoint(ckpt)
    meta = package_meta(run_dir, state, config, name, file_sha256(ckpt))
    public_config = redact_config(config_to_dict(config))
    card_md, card = build_card(
        meta,
        public_config,
        _read_json(run_dir / "data_summary.json"),
        _read_json(run_dir / "metrics.json"),
        _read_json(run_dir / "synthetic" / "gate.json"),
    )
    with atomic_dir(out) as tmp:
        _save_tensors(tmp / WEIGHTS, generator_state(state, config.sample.weights)[0])
        if include_critic:
            _save_tensors(tmp / CRITIC, state["critic"])
        write_text(tmp / CONFIG, yaml.safe_dump(public_config, sort_keys=False))
        write_text(tmp / CARD_MD, card_md)
        write_json(tmp / CARD_JSON, card)
        _write_checksums(tmp, meta)
    return out


def package_digest(path: str | Path) -> str:
    """sha256 of ``checksums.sha256``: one value that pins every file of a package."""
    return sha256_bytes((Path(path) / CHECKSUMS).read_bytes())


def _parse_checksums(path: Path) -> dict[str, str]:
    listed: dict[str, str] = {}
    for line in (path / CHECKSUMS).read_text().splitlines():
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](\S+)", line.strip())
        if not match:
            raise InputError(f"malformed line in {CHECKSUMS}: {line!r}", path)
        listed[match.group(2)] = match.group(1)
    return listed


def verified_bytes(path: str | Path, expected_digest: str | None = None) -> dict[str, bytes]:
    """Every file of a package, read once and checked against ``checksums.sha256``.

    Raises:
        InputError: not a package; a file missing, unexpected or changed (named); the digest
            differs from ``expected_digest``.
    """
    path = Path(path)
    if not (path / CHECKSUMS).is_file():
        raise InputError(f"not a synthmed model package (no {CHECKSUMS})", path)
    if expected_digest and package_digest(path) != expected_digest:
        raise InputError("package digest differs from the expected sha256", path / CHECKSUMS)
    listed = _parse_checksums(path)
    present = {p.name for p in path.iterdir() if not p.name.startswith(".")} - {CHECKSUMS}
    for extra in sorted(present - set(listed)):
        raise InputError("unexpected file, not covered by the package checksums", path / extra)
    contents = {}
    for name, digest in listed.items():
        file = path / name
        if name not in present or not file.is_file():
            raise InputError("file listed in the package checksums is missing", file)
        contents[name] = file.read_bytes()
        if sha256_bytes(contents[name]) != digest:
            raise InputError("checksum mismatch: the file was changed or corrupted", file)
    return contents


def read_package_meta(contents: dict[str, bytes], path: Path) -> dict[str, Any]:
    """Parse and cross-check ``package.json`` from verified bytes."""
    if META not in contents or WEIGHTS not in contents:
        raise InputError(f"package lacks {META} or {WEIGHTS}", path)
    try:
        meta = json.loads(contents[META].decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte offset {exc.start})", path / META) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path / META
        ) from None
    if not isinstance(meta, dict):
        raise InputError(f"must hold a JSON object, found {type(meta).__name__}", path / META)
    if meta.get("format") != PACKAGE_FORMAT:
        raise InputError(f"unknown package format {meta.get('format')!r}", path / META)
    if not isinstance(meta.get("files"), dict):
        raise InputError("'files' must be a JSON object of sha256 digests", path / META)
    expected = dict(meta["files"])
    actual = {k: sha256_bytes(v) for k, v in contents.items() if k != META}
    if expected != actual:
        raise InputError("package.json file list disagrees with checksums.sha256", path / META)
    _check_meta_fields(meta, path / META)
    return meta


META_FIELDS = {
    "name": str,
    "model_name": str,
    "model_kwargs": dict,
    "image_channels": int,
    "label_names": list,
    "channel_names": list,
    "preprocessing": dict,
    "sample_defaults": dict,
    "config_hash": str,
}
"""What loading and generating read from ``package.json``, with the JSON type each needs."""


def _check_meta_fields(meta: dict, path: Path) -> None:
    for key, kind in META_FIELDS.items():
        if key not in meta:
            raise InputError(f"no '{key}' field", path)
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise InputError(f"'{key}' must be a JSON {kind.__name__}", path)
    defaults = meta["sample_defaults"]
    for key in ("label_threshold", "batch_size"):
        if not isinstance(defaults.get(key), (int, float)) or isinstance(defaults.get(key), bool):
            raise InputError(f"'sample_defaults.{key}' must be a number", path)
    if not -1.0 <= defaults["label_threshold"] <= 1.0 or defaults["batch_size"] < 1:
        raise InputError(
            "'sample_defaults' needs label_threshold in [-1, 1] and batch_size >= 1", path
        )
    pre = meta["preprocessing"]
    if not isinstance(pre.get("spacing_mm"), list) or "spacing_source" not in pre:
        raise InputError("'preprocessing' needs spacing_mm (a list) and spacing_source", path)


def load_package(
    path: str | Path, device: str = "cpu", expected_digest: str | None = None
) -> ModelPackage:
    """Verify a package and rebuild its generator (eval mode) from the safetensors weights.

    The generator is the same module with the same weights as the run's checkpoint, so
    ``synthmed.sampling.export.generate_pairs`` gives the run's images for the same seeds.
    """
    from safetensors.torch import load as load_safetensors

    from synthmed.devices import resolve_device
    from synthmed.models.build import build_model
    from synthmed.sampling.export import LoadedGenerator

    path = Path(path)
    contents = verified_bytes(path, expected_digest)
    meta = read_package_meta(contents, path)
    try:
        weights = load_safetensors(contents[WEIGHTS])
    except Exception as exc:  # a foreign or truncated file that still matches its checksum
        raise InputError(f"cannot read weights: {exc}", path / WEIGHTS) from exc
    try:
        model = build_model(meta["model_name"], meta["model_kwargs"])
    except (InputError, KeyError) as exc:
        problem = exc.problem if isinstance(exc, InputError) else f"no {exc} in model_kwargs"
        raise InputError(f"cannot rebuild the generator: {problem}", path / META) from None
    try:
        model.generator.load_state_dict(weights)
    except RuntimeError as exc:
        problem = str(exc).splitlines()[0]
        raise InputError(f"weights do not fit '{meta['model_name']}': {problem}", path) from exc
    model = model.to(resolve_device(device)).eval()
    generator = LoadedGenerator(
        model=model,
        image_channels=int(meta["image_channels"]),
        model_name=meta["model_name"],
        checkpoint=path / WEIGHTS,
        checkpoint_sha256=meta["files"][WEIGHTS],
        config_hash=meta["config_hash"],
        config=yaml.safe_load(contents.get(CONFIG, b"{}")) or {},
        privacy=meta["training"].get("privacy"),
    )
    return ModelPackage(path, meta, generator)


def package_export_info(meta: dict[str, Any]):
    """Label/channel names and spacing recorded in a package, for the dataset exporters."""
    from synthmed.export.core import ExportInfo

    pre = meta["preprocessing"]
    return ExportInfo(
        list(meta["label_names"]),
        list(meta["channel_names"]),
        tuple(pre["spacing_mm"]),
        f"{pre['spacing_source']} (recorded in the package)",
    )
