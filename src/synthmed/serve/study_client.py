"""Client side of reader studies: create one on a server, fetch its results (standard library).

``synthmed serve study create`` zips a folder of real images (or sends a zip as it is) to
``POST /api/studies``; the readers' links come back once, to be handed to the readers.
"""

from __future__ import annotations

import json
import tempfile
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

from synthmed.errors import InputError
from synthmed.serve.client import get_json, request


def zip_folder(folder: Path, out: Path) -> Path:
    """Every file under ``folder`` (class subfolders kept) into ``out``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise InputError("no files in the real-image folder", folder)
    with zipfile.ZipFile(out, "w") as archive:
        for path in files:
            archive.write(path, path.relative_to(folder).as_posix())
    return out


def create_study(
    server: str,
    token: str,
    name: str,
    synthetic: str,
    real: Path,
    n: int,
    readers: list[str],
    ask_class: bool = False,
) -> dict[str, Any]:
    """POST the study; returns it with one ``{reader, token, link}`` per reader."""
    server = server.rstrip("/")
    query = urllib.parse.urlencode(
        [("name", name), ("synthetic", synthetic), ("n", str(n)), ("real_name", real.name),
         ("ask_class", "true" if ask_class else "false"), *(("reader", r) for r in readers)]
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="synthmed-study-") as tmp:
        upload = real if real.is_file() else zip_folder(real, Path(tmp) / "real.zip")
        headers = {"Content-Type": "application/zip", "Content-Length": str(upload.stat().st_size)}
        with (
            upload.open("rb") as fh,
            request("POST", f"{server}/api/studies?{query}", token, fh, headers) as resp,
        ):
            return json.loads(resp.read().decode("utf-8"))


def study_results(server: str, token: str, name: str) -> dict[str, Any]:
    return get_json(f"{server.rstrip('/')}/api/studies/{urllib.parse.quote(name)}/results", token)


def study_answers_csv(server: str, token: str, name: str) -> str:
    url = f"{server.rstrip('/')}/api/studies/{urllib.parse.quote(name)}/answers.csv"
    with request("GET", url, token) as resp:
        return resp.read().decode("utf-8")
