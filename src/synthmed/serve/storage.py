"""Published files in a local folder or any fsspec URL (s3://, gcs://, memory://, ...).

Each item is a folder ``items/KEY/`` holding ``bundle.zip`` (the publication exactly as
uploaded and checked) and, for datasets, ``grid.png``. Files are first written under
``pending/KEY/`` and renamed into ``items/KEY/`` when complete; the database row comes after
that. A server killed at any point therefore leaves at most an unlisted folder, which
:meth:`Storage.sweep` removes at the next start.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import fsspec

log = logging.getLogger(__name__)

BUNDLE, GRID = "bundle.zip", "grid.png"
CHUNK = 1 << 20


class Storage:
    """Item folders under one fsspec root."""

    def __init__(self, url: str) -> None:
        self.fs, root = fsspec.core.url_to_fs(str(url))
        self.root = root.rstrip("/")
        self.fs.makedirs(self._path("items"), exist_ok=True)
        self.fs.makedirs(self._path("pending"), exist_ok=True)

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def put(self, key: str, files: dict[str, Path]) -> None:
        """Copy local ``files`` (name -> path) into ``items/KEY/`` via ``pending/KEY/``."""
        pending = self._path("pending", key)
        self.fs.makedirs(pending, exist_ok=True)
        for name, local in files.items():
            with open(local, "rb") as src, self.fs.open(f"{pending}/{name}", "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
        self.fs.mv(pending, self._path("items", key), recursive=True)

    def open(self, key: str, name: str) -> BinaryIO:
        return self.fs.open(self._path("items", key, name), "rb")

    def iter_bytes(self, key: str, name: str) -> Iterator[bytes]:
        """The file in chunks, for a streamed download."""
        with self.open(key, name) as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        path = self._path("items", key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def keys(self) -> set[str]:
        return {Path(p).name for p in self.fs.ls(self._path("items"), detail=False)}

    def sweep(self, listed: Iterable[str]) -> list[str]:
        """Remove half-written uploads and item folders no database row names.

        Run once at start-up, before workers accept uploads (an upload in flight looks
        exactly like an orphan). Returns what was removed.
        """
        removed = []
        for path in self.fs.ls(self._path("pending"), detail=False):
            self.fs.rm(path, recursive=True)
            removed.append(f"pending/{Path(path).name}")
        for key in sorted(self.keys() - set(listed)):
            self.delete(key)
            removed.append(f"items/{key}")
        if removed:
            log.warning("removed %d unlisted upload(s) left by an interrupted server", len(removed))
        return removed

    def check(self) -> None:
        """Raise if the storage root cannot be listed (the health endpoint's probe)."""
        self.fs.ls(self._path("items"), detail=False)
