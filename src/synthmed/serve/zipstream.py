"""A folder as a zip written on the fly, chunk by chunk, for a streamed download.

The zip is never assembled in memory or on disk: :class:`zipfile.ZipFile` writes to a
non-seekable sink (local headers with data descriptors), and the bytes it has written are
handed out after every chunk of every file. Already-compressed files (``.gz``, ``.png``,
``.npz``) are stored, everything else deflated.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from synthmed.serve.bundle import walk_files

CHUNK = 1 << 20
STORED_ENDINGS = (".gz", ".png", ".npz", ".zip")


class _Sink:
    """A write-only, non-seekable file whose contents are taken out by :meth:`take`."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def zip_chunks(folder: Path, prefix: str = "") -> Iterator[bytes]:
    """The zip of every file under ``folder`` (entries ``PREFIX/relative/path``)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w") as archive:  # type: ignore[arg-type]
        for path in walk_files(folder):
            name = f"{prefix}/{path.relative_to(folder).as_posix()}".lstrip("/")
            stored = path.name.endswith(STORED_ENDINGS)
            method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo.from_file(path, name)
            info.compress_type = method
            with open(path, "rb") as src, archive.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    yield sink.take()
