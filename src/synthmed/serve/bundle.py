"""The publication bundle: one zip holding an export (or model package) and its evidence.

Layout (paths inside the zip)::

    publication.json   descriptor: kind, name, licence, modality, ... and the sha256 and
                       size of every other file
    content/...        the dataset export folder or the NAME.synthmed package folder, as is
    metrics.json       `synthmed evaluate` output of the run that made the content
    report.html        `synthmed report` of that run
    card.md            dataset or model card

The server reads the zip only through :func:`safe_extract`, which refuses entries that would
land outside the target folder (zip-slip), links, duplicates and anything over the size
limits, counting the bytes actually decompressed rather than trusting the zip's headers.
Standard library only: the client builds bundles with the same module.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from synthmed.serve.rules import Refusal

FORMAT = "synthmed-publication-1"
DESCRIPTOR, CONTENT = "publication.json", "content"
METRICS, REPORT, CARD = "metrics.json", "report.html", "card.md"
KINDS = ("dataset", "model")
VISIBILITIES = ("public", "private")
TEXT_FIELDS = {  # descriptor field -> longest value the database column holds
    "name": 200, "title": 300, "description": 100_000, "licence": 100, "modality": 100,
    "anatomy": 100, "task": 100,
}  # fmt: skip
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def walk_files(folder: Path) -> Iterator[Path]:
    """Regular files under ``folder`` in a stable order (hidden temporaries skipped)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(
            part.startswith(".") for part in path.relative_to(folder).parts
        ):
            yield path


def entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an archive entry could write outside its folder, or None when it cannot."""
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return f"entry '{name}' is a symbolic link"
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return f"entry '{name}' is an absolute or Windows path"
    parts = PurePosixPath(name).parts
    if any(part in ("..", "") for part in parts) or not parts:
        return f"entry '{name}' climbs out of the bundle folder"
    return None


def check_entries(archive: zipfile.ZipFile, max_file: int, max_total: int) -> list[zipfile.ZipInfo]:
    """The file entries of ``archive``, refused whole if any is unsafe or oversized."""
    seen: set[str] = set()
    total, files = 0, []
    for info in archive.infolist():
        problem = entry_problem(info)
        if problem:
            raise Refusal("zip_slip", problem)
        if info.is_dir():
            continue
        if info.filename in seen:
            raise Refusal("bad_bundle", f"entry '{info.filename}' appears twice")
        seen.add(info.filename)
        if info.file_size > max_file:
            raise Refusal(
                "file_too_large",
                f"{info.filename}: {info.file_size} bytes, limit {max_file} bytes per file",
            )
        total += info.file_size
        if total > max_total:
            raise Refusal(
                "bundle_too_large", f"uncompressed contents exceed the limit of {max_total} bytes"
            )
        files.append(info)
    return files


def _copy_limited(src, dst, info: zipfile.ZipInfo, max_file: int) -> None:
    written = 0
    while chunk := src.read(CHUNK):
        written += len(chunk)
        if written > max_file or written > info.file_size:  # a header that lies about the size
            raise Refusal(
                "file_too_large",
                f"{info.filename}: decompresses past its declared {info.file_size} bytes "
                f"(limit {max_file} bytes per file)",
            )
        dst.write(chunk)


def safe_extract(zip_path: Path, dest: Path, max_file: int, max_total: int) -> dict[str, Path]:
    """Extract every file of ``zip_path`` under ``dest``; returns ``{entry name: path}``.

    Raises:
        Refusal: ``bad_bundle`` (not a zip, duplicate entry), ``zip_slip``,
            ``file_too_large``, ``bundle_too_large``.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Refusal("bad_bundle", f"not a zip archive ({exc})") from None
    out: dict[str, Path] = {}
    root = dest.resolve()
    with archive:
        for info in check_entries(archive, max_file, max_total):
            target = (root / info.filename).resolve()
            if root not in target.parents:  # belt and braces after entry_problem
                raise Refusal("zip_slip", f"entry '{info.filename}' resolves outside the bundle")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "wb") as dst:
                    _copy_limited(src, dst, info, max_file)
            except (zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as exc:
                raise Refusal("bad_bundle", f"{info.filename}: cannot decompress ({exc})") from None
            out[info.filename] = target
    return out


def read_descriptor(files: dict[str, Path]) -> dict[str, Any]:
    """``publication.json`` parsed and checked for the fields the server needs."""
    if DESCRIPTOR not in files:
        raise Refusal("bad_descriptor", f"the bundle has no {DESCRIPTOR}")
    try:
        desc = json.loads(files[DESCRIPTOR].read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refusal("bad_descriptor", f"{DESCRIPTOR} is not JSON ({exc})") from None
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise Refusal("bad_descriptor", f"{DESCRIPTOR} 'format' must be {FORMAT!r}")
    if desc.get("kind") not in KINDS:
        raise Refusal("bad_descriptor", f"'kind' must be one of {KINDS}, got {desc.get('kind')!r}")
    if desc.get("visibility") not in VISIBILITIES:
        raise Refusal("bad_descriptor", f"'visibility' must be one of {VISIBILITIES}")
    for key, longest in TEXT_FIELDS.items():
        if not isinstance(desc.get(key), str):
            raise Refusal("bad_descriptor", f"'{key}' must be a string")
        if len(desc[key]) > longest:
            raise Refusal(
                "bad_descriptor", f"'{key}' is {len(desc[key])} characters, at most {longest}"
            )
    listed = desc.get("files")
    if not isinstance(listed, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in listed.values()
    ):
        raise Refusal("bad_descriptor", "'files' must map each path to {sha256, size}")
    return desc


def verify_checksums(desc: dict[str, Any], files: dict[str, Path]) -> dict[str, dict]:
    """Every file present is listed with its sha256 and size, and nothing listed is missing.

    Returns ``{path: {"sha256", "size"}}`` as measured.
    """
    listed = desc["files"]
    present = set(files) - {DESCRIPTOR}
    for name in sorted(present - set(listed)):
        raise Refusal("checksum_mismatch", f"{name} is in the bundle but not in {DESCRIPTOR}")
    for name in sorted(set(listed) - present):
        raise Refusal("checksum_mismatch", f"{name} is listed in {DESCRIPTOR} but missing")
    measured = {}
    for name in sorted(present):
        digest = sha256_file(files[name])
        if digest != listed[name]["sha256"]:
            raise Refusal(
                "checksum_mismatch",
                f"{name}: sha256 {digest[:12]}... differs from the listed {listed[name]['sha256'][:12]}...",
            )
        measured[name] = {"sha256": digest, "size": files[name].stat().st_size}
    return measured


def write_bundle(out: Path, descriptor: dict[str, Any], members: dict[str, Path]) -> Path:
    """Write a bundle zip: ``members`` (zip path -> local file) plus the descriptor, whose
    ``files`` entry is filled with every member's sha256 and size."""
    descriptor = {
        **descriptor,
        "format": FORMAT,
        "files": {
            name: {"sha256": sha256_file(path), "size": path.stat().st_size}
            for name, path in sorted(members.items())
        },
    }
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(DESCRIPTOR, json.dumps(descriptor, indent=2) + "\n")
        for name, path in sorted(members.items()):
            archive.write(path, name)
    return out
