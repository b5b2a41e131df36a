"""Client side of the repository: build a publication bundle, publish it, download, install.

Standard library only (urllib), so ``synthmed publish`` and ``synthmed models install URL``
work from a plain ``pip install synthmed`` without the server extra. Server refusals become
one-line :class:`~synthmed.errors.InputError` messages naming the rule and the numbers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from synthmed.errors import InputError
from synthmed.serve.bundle import (
    CARD,
    CONTENT,
    METRICS,
    REPORT,
    read_descriptor,
    safe_extract,
    sha256_file,
    walk_files,
    write_bundle,
)
from synthmed.serve.rules import Refusal

TIMEOUT_S = 600
CHUNK = 1 << 20
DOWNLOAD_LIMIT = 1 << 40  # the server's own limits apply to what it stores


def source_kind(source: Path) -> str:
    """``model`` for a package folder, ``dataset`` for an export folder."""
    if (source / "checksums.sha256").is_file() and (source / "package.json").is_file():
        return "model"
    if (source / "manifest.csv").is_file() and (source / "export.json").is_file():
        return "dataset"
    raise InputError(
        "not a dataset export (manifest.csv + export.json) nor a model package "
        "(package.json + checksums.sha256); make one with `synthmed export` or `synthmed package`",
        source,
    )


def find_run(source: Path) -> Path | None:
    """The run folder above an export (RUN/export/FMT[/DatasetNNN]) or package (RUN/NAME.synthmed)."""
    for parent in list(source.resolve().parents)[:3]:
        if (parent / "config.yaml").is_file() and (parent / "metrics.json").is_file():
            return parent
    return None


def dataset_card(desc: dict[str, Any], export: dict[str, Any], metrics: dict[str, Any]) -> str:
    """A short Markdown dataset card from the descriptor, export.json and the audit numbers."""
    from synthmed.serve.gate import read_evidence

    try:
        ev = read_evidence(metrics)
        numbers = [
            f"- synthetic-only Dice on real test data: {ev.synthetic_only_dice}",
            f"- near-copy rate: {ev.near_copy_rate:.4f}",
            f"- highest membership-inference AUC: {ev.membership_auc:.4f} ({ev.membership_attack})",
        ]
    except Refusal as exc:
        numbers = [f"- privacy audit: {exc.detail}"]
    gen = export.get("generator") or {}
    return "\n".join(
        [
            f"# {desc['title'] or desc['name']}",
            "",
            desc["description"] or "Synthetic labelled images generated with synthmed.",
            "",
            f"- modality: {desc['modality']}; anatomy: {desc['anatomy']}; task: {desc['task']}",
            f"- licence: {desc['licence']}",
            f"- {export.get('n')} samples, format {export.get('format')}, labels "
            f"{', '.join(export.get('label_names') or [])}",
            f"- generator: {gen.get('model')} (checkpoint sha256 {gen.get('checkpoint_sha256')})",
            *numbers,
            "",
            "Synthetic images: no image shows a real patient. Not for clinical use.",
            "",
        ]
    )


def build_bundle(
    source: str | Path,
    out: str | Path,
    *,
    run_dir: str | Path | None = None,
    name: str | None = None,
    visibility: str = "public",
    licence: str = "CC-BY-4.0",
    modality: str = "",
    anatomy: str = "",
    task: str = "",
    title: str = "",
    description: str = "",
) -> Path:
    """Zip an export or package with its run's metrics.json, report.html and a card."""
    source = Path(source)
    kind = source_kind(source)
    run = Path(run_dir) if run_dir else find_run(source)
    if run is None:
        raise InputError("cannot find the run folder above it; pass --run RUN_DIR", source)
    for file, command in ((METRICS, "evaluate"), (REPORT, "report")):
        if not (run / file).is_file():
            raise InputError(f"no {file}: run `synthmed {command} {run}` first", run)
    metrics = json.loads((run / METRICS).read_text())
    if kind == "model":
        meta = json.loads((source / "package.json").read_text())
        name = name or meta["name"]
    desc = {
        "kind": kind,
        "name": name or source.name,
        "title": title,
        "description": description,
        "licence": licence,
        "modality": modality,
        "anatomy": anatomy,
        "task": task or str(metrics.get("task") or ""),
        "visibility": visibility,
    }
    members = {f"{CONTENT}/{p.relative_to(source).as_posix()}": p for p in walk_files(source)}
    members |= {METRICS: run / METRICS, REPORT: run / REPORT}
    with tempfile.TemporaryDirectory(prefix="synthmed-publish-") as tmp:
        card = Path(tmp) / CARD
        if kind == "model":
            shutil.copyfile(source / "card.md", card)
        else:
            export = json.loads((source / "export.json").read_text())
            card.write_text(dataset_card(desc, export, metrics), encoding="utf-8")
        return write_bundle(Path(out), desc, {**members, CARD: card})


def _refusal_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read().decode("utf-8"))
        return f"server refused ({body['error']}, HTTP {exc.code}): {body['detail']}"
    except (ValueError, KeyError, TypeError):
        return f"server answered HTTP {exc.code} {exc.reason}"


def request(method: str, url: str, token: str | None = None, body=None, headers=None):
    """An open response; HTTP errors become InputError with the server's rule and detail."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        return urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise InputError(_refusal_message(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"cannot reach {url}: {reason}") from None


def get_json(url: str, token: str | None = None) -> Any:
    with request("GET", url, token) as resp:
        return json.loads(resp.read().decode("utf-8"))


def publish_bundle(server: str, token: str, bundle: str | Path) -> dict[str, Any]:
    """POST a bundle zip; the server's size limit is checked first so nothing is sent in vain."""
    server, bundle = server.rstrip("/"), Path(bundle)
    size = bundle.stat().st_size
    limit = get_json(f"{server}/api/health")["limits"]["max_bundle_bytes"]
    if size > limit:
        raise InputError(f"bundle is {size} bytes; {server} accepts at most {limit}", bundle)
    headers = {"Content-Type": "application/zip", "Content-Length": str(size)}
    with bundle.open("rb") as fh, request("POST", f"{server}/api/items", token, fh, headers) as r:
        return json.loads(r.read().decode("utf-8"))


def publish(source: str | Path, server: str, token: str, **fields) -> dict[str, Any]:
    """Build the bundle of an export or package and publish it; returns the item."""
    with tempfile.TemporaryDirectory(prefix="synthmed-publish-") as tmp:
        bundle = build_bundle(source, Path(tmp) / "bundle.zip", **fields)
        return publish_bundle(server, token, bundle)


def download_url(url: str) -> str:
    """``.../items/NAME``, ``.../api/items/NAME`` or the download URL itself -> download URL."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/download"):
        head, sep, name = path.rpartition("/items/")
        if not sep or not name or "/" in name:
            raise InputError(f"{url} is not an item URL (.../items/NAME)")
        path = f"{head.removesuffix('/api')}/api/items/{name}/download"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def download_bundle(
    url: str, out: Path, token: str | None = None, layout: str = "original"
) -> Path:
    """Stream an item's bundle (or its ``layout`` zip) to ``out``; the bundle is checked
    against the server's sha256."""
    query = "" if layout == "original" else "?" + urllib.parse.urlencode({"layout": layout})
    with request("GET", download_url(url) + query, token) as resp, out.open("wb") as fh:
        expected = resp.headers.get("X-Synthmed-Sha256")
        shutil.copyfileobj(resp, fh, CHUNK)
    if expected and sha256_file(out) != expected:
        raise InputError(f"download of {url} is corrupt: sha256 differs from the server's")
    return out


def _extract(bundle: Path, dest: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    try:
        files = safe_extract(bundle, dest, DOWNLOAD_LIMIT, DOWNLOAD_LIMIT)
        return read_descriptor(files), files
    except Refusal as exc:
        raise InputError(f"downloaded bundle refused ({exc.rule}): {exc.detail}") from None


LAYOUTS = ("original", "nnunet", "monai")


def download_relaid(url: str, out: Path, token: str | None, layout: str) -> Path:
    """A dataset re-laid by the server as ``layout`` (an export folder), written to ``out``."""
    from synthmed.atomic import atomic_dir

    with tempfile.TemporaryDirectory(prefix="synthmed-download-") as tmp:
        archive = download_bundle(url, Path(tmp) / "layout.zip", token, layout)
        try:
            files = safe_extract(archive, Path(tmp) / "x", DOWNLOAD_LIMIT, DOWNLOAD_LIMIT)
        except Refusal as exc:
            raise InputError(
                f"downloaded {layout} zip refused ({exc.rule}): {exc.detail}"
            ) from None
        with atomic_dir(out) as target:
            for name, path in files.items():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / name)
    return out


def download(url: str, out: str | Path, token: str | None = None, layout: str = "original") -> Path:
    """The item's original export (or package) folder, or the dataset re-laid as ``layout``
    (``nnunet``: an nnU-Net raw dataset folder; ``monai``: NIfTI + datalist.json), at ``out``."""
    from synthmed.atomic import atomic_dir
    from synthmed.outputs import DATASET_MARKERS, PACKAGE_MARKERS, check_output_dir

    if layout not in LAYOUTS:
        raise InputError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    out = check_output_dir(Path(out), markers=DATASET_MARKERS + PACKAGE_MARKERS)
    if layout != "original":
        return download_relaid(url, out, token, layout)
    with tempfile.TemporaryDirectory(prefix="synthmed-download-") as tmp:
        bundle = download_bundle(url, Path(tmp) / "bundle.zip", token)
        _, files = _extract(bundle, Path(tmp) / "x")
        with atomic_dir(out) as target:
            for name, path in files.items():
                if name.startswith(f"{CONTENT}/"):
                    dest = target / name[len(CONTENT) + 1 :]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, dest)
    return out


def install_model(url: str, registry: str | Path | None = None, token: str | None = None) -> Path:
    """Download a model item and install its package (verified) into the local registry."""
    from synthmed.packaging import install_package

    with tempfile.TemporaryDirectory(prefix="synthmed-install-") as tmp:
        bundle = download_bundle(url, Path(tmp) / "bundle.zip", token)
        desc, _ = _extract(bundle, Path(tmp) / "x")
        if desc["kind"] != "model":
            raise InputError(f"{url} is a {desc['kind']}, not a model package")
        return install_package(Path(tmp) / "x" / CONTENT, registry)
