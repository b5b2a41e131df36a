"""The repository's operations (publish, search, get, download, delete, audit), without HTTP.

The FastAPI app and the tests both call these; every refusal is a
:class:`~synthmed.serve.rules.Refusal`. Publishing checks everything on a local spool copy,
stores the files (pending -> items rename) and only then writes the database row, in one
transaction with its labels, files and audit entry.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from synthmed.serve import db
from synthmed.serve.accounts import User, now, require
from synthmed.serve.bundle import (
    CARD,
    read_descriptor,
    safe_extract,
    sha256_file,
    verify_checksums,
)
from synthmed.serve.gate import run_gate
from synthmed.serve.rules import Refusal
from synthmed.serve.settings import ServeSettings
from synthmed.serve.storage import BUNDLE, GRID, Storage

log = logging.getLogger("synthmed.serve")

EQUAL_FILTERS = ("kind", "modality", "anatomy", "task", "licence", "model_family")


def iso(moment: datetime) -> str:
    """UTC ISO 8601; SQLite hands timestamps back without their (UTC) zone."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


@dataclass(frozen=True)
class Filters:
    """Search filters; text ones match case-insensitively, evidence ones are bounds."""

    kind: str | None = None
    modality: str | None = None
    anatomy: str | None = None
    task: str | None = None
    licence: str | None = None
    model_family: str | None = None
    labels: tuple[str, ...] = ()
    q: str | None = None
    min_synthetic_dice: float | None = None
    max_near_copy_rate: float | None = None
    max_membership_auc: float | None = None


class Repository:
    """Database + storage + settings: one per server process."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.engine = db.make_engine(settings.db_url)
        self.storage = Storage(settings.storage_url)

    def prepare(self) -> list[str]:
        """Migrate the database and remove what an interrupted server left (start-up only)."""
        db.migrate(self.engine)
        shutil.rmtree(self.settings.spool_dir, ignore_errors=True)
        self.settings.spool_dir.mkdir(parents=True, exist_ok=True)
        with self.engine.connect() as conn:
            keys = conn.execute(sa.select(db.items.c.storage_key)).scalars().all()
        return self.storage.sweep(keys)

    # -- publish ---------------------------------------------------------------------------

    def spool_path(self) -> Path:
        self.settings.spool_dir.mkdir(parents=True, exist_ok=True)
        return self.settings.spool_dir / f"{uuid.uuid4().hex}.zip"

    def publish(self, user: User | None, bundle: Path) -> dict[str, Any]:
        """Check and store a spooled bundle; returns the item as the API shows it."""
        require(user, "publisher", "publishing")
        s = self.settings
        key = uuid.uuid4().hex
        work = s.spool_dir / key
        try:
            files = safe_extract(bundle, work / "x", s.max_file_bytes, s.max_total_bytes)
            desc = read_descriptor(files)
            self._check_name(desc["name"])
            measured = verify_checksums(desc, files)
            facts = run_gate(files, desc["kind"], s)
            grid = None
            if desc["kind"] == "dataset":
                from synthmed.serve.preview import sample_grid

                grid = sample_grid(files, facts["rows"], work / GRID)
            self.storage.put(key, {BUNDLE: bundle, **({GRID: grid} if grid else {})})
            card = files[CARD].read_text(encoding="utf-8", errors="replace")
            facts |= {"card": card, "has_grid": grid is not None}
            try:
                item_id = self._insert(user, key, desc, facts, measured, bundle)
            except BaseException as exc:  # no row: the stored files must not linger either
                self.storage.delete(key)
                if isinstance(exc, sa.exc.IntegrityError):  # lost a race for the name
                    raise Refusal(
                        "duplicate_name", f"'{desc['name']}' is already published"
                    ) from None
                raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("published %s (%s) by %s", desc["name"], desc["kind"], user.name)
        return self.get(user, desc["name"]) | {"id": item_id}

    def _check_name(self, name: str) -> None:
        from synthmed.errors import InputError
        from synthmed.packaging.package import check_name

        try:
            check_name(name)
        except InputError as exc:
            raise Refusal("bad_descriptor", exc.problem) from None
        with self.engine.connect() as conn:
            if conn.execute(sa.select(db.items.c.id).where(db.items.c.name == name)).first():
                raise Refusal("duplicate_name", f"'{name}' is already published")

    def _insert(self, user, key, desc, facts, measured, bundle: Path) -> int:
        ev = facts["evidence"]
        values = {k: desc[k] for k in ("name", "kind", "visibility", "title", "description")}
        values |= {k: desc[k] for k in ("licence", "modality", "anatomy")}
        values |= dict(
            task=desc["task"] or ev.task,
            owner_id=user.id,
            storage_key=key,
            created_at=now(),
            model_family=facts["model_family"],
            export_format=facts["format"],
            n_samples=facts["n_samples"],
            synthetic_only_dice=ev.synthetic_only_dice,
            near_copy_rate=ev.near_copy_rate,
            membership_auc=ev.membership_auc,
            bundle_sha256=sha256_file(bundle),
            bundle_bytes=bundle.stat().st_size,
            has_grid=facts["has_grid"],
            card_md=facts["card"],
            metrics_json=json.dumps(facts["metrics"]),
        )
        with self.engine.begin() as conn:
            item_id = conn.execute(db.items.insert().values(**values)).inserted_primary_key[0]
            labels = sorted(set(facts["label_names"]))
            if labels:
                conn.execute(
                    db.item_labels.insert(), [{"item_id": item_id, "label": n} for n in labels]
                )
            conn.execute(
                db.item_files.insert(),
                [{"item_id": item_id, "path": p, **m} for p, m in measured.items()],
            )
            self._audit(conn, user, "publish", desc["name"], {"sha256": values["bundle_sha256"]})
        return item_id

    @staticmethod
    def _audit(conn, user: User | None, action: str, name: str, detail: dict) -> None:
        conn.execute(
            db.audit.insert().values(
                at=now(),
                actor=user.name if user else None,
                action=action,
                item_name=name,
                detail=json.dumps(detail),
            )
        )

    # -- read ------------------------------------------------------------------------------

    def _visible(self, user: User | None):
        """Public items for everyone; private ones for any account on this server."""
        return sa.true() if user is not None else db.items.c.visibility == "public"

    def search(self, user: User | None, filters: Filters) -> list[dict[str, Any]]:
        t = db.items
        query = self._select(user).order_by(t.c.created_at.desc(), t.c.id.desc())
        for key in EQUAL_FILTERS:
            value = getattr(filters, key)
            if value:
                query = query.where(sa.func.lower(t.c[key]) == value.lower())
        for label in filters.labels:
            query = query.where(
                sa.exists().where(
                    db.item_labels.c.item_id == t.c.id,
                    sa.func.lower(db.item_labels.c.label) == label.lower(),
                )
            )
        if filters.q:
            needle = f"%{filters.q.lower()}%"
            query = query.where(
                sa.or_(
                    *(sa.func.lower(t.c[c]).like(needle) for c in ("name", "title", "description"))
                )
            )
        if filters.min_synthetic_dice is not None:
            query = query.where(t.c.synthetic_only_dice >= filters.min_synthetic_dice)
        if filters.max_near_copy_rate is not None:
            query = query.where(t.c.near_copy_rate <= filters.max_near_copy_rate)
        if filters.max_membership_auc is not None:
            query = query.where(t.c.membership_auc <= filters.max_membership_auc)
        with self.engine.connect() as conn:
            return [self._describe(conn, row) for row in conn.execute(query).all()]

    def _select(self, user: User | None):
        return (
            sa.select(db.items, db.users.c.name.label("owner"))
            .join(db.users, db.users.c.id == db.items.c.owner_id)
            .where(self._visible(user))
        )

    def _row(self, conn, user: User | None, name: str):
        row = conn.execute(self._select(user).where(db.items.c.name == name)).first()
        if row is None:
            raise Refusal("not_found", f"no item '{name}' (or it is private: give a token)")
        return row

    def _describe(self, conn, row) -> dict[str, Any]:
        labels = (
            conn.execute(
                sa.select(db.item_labels.c.label).where(db.item_labels.c.item_id == row.id)
            )
            .scalars()
            .all()
        )
        return {
            "name": row.name,
            "kind": row.kind,
            "title": row.title,
            "description": row.description,
            "visibility": row.visibility,
            "owner": row.owner,
            "created_at": iso(row.created_at),
            "licence": row.licence,
            "modality": row.modality,
            "anatomy": row.anatomy,
            "task": row.task,
            "model_family": row.model_family,
            "format": row.export_format,
            "n_samples": row.n_samples,
            "label_names": sorted(labels),
            "evidence": {
                "synthetic_only_dice": row.synthetic_only_dice,
                "near_copy_rate": row.near_copy_rate,
                "membership_auc": row.membership_auc,
            },
            "bundle": {"sha256": row.bundle_sha256, "bytes": row.bundle_bytes},
            "has_grid": row.has_grid,
            "download": f"/api/items/{row.name}/download",
        }

    def get(self, user: User | None, name: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return self._describe(conn, self._row(conn, user, name))

    def details(self, user: User | None, name: str) -> dict[str, Any]:
        """The item plus its card, metrics and file list (the item page)."""
        with self.engine.connect() as conn:
            row = self._row(conn, user, name)
            item = self._describe(conn, row)
            files = conn.execute(
                sa.select(db.item_files.c.path, db.item_files.c.sha256, db.item_files.c.size)
                .where(db.item_files.c.item_id == row.id)
                .order_by(db.item_files.c.path)
            ).all()
        item["card_md"] = row.card_md
        item["metrics"] = json.loads(row.metrics_json)
        item["files"] = [dict(f._mapping) for f in files]
        item["storage_key"] = row.storage_key
        return item

    def download(self, user: User | None, name: str):
        """(item, chunk iterator of the bundle zip); the download is audited."""
        with self.engine.begin() as conn:
            row = self._row(conn, user, name)
            self._audit(conn, user, "download", name, {"sha256": row.bundle_sha256})
        return self._describe_row(row), self.storage.iter_bytes(row.storage_key, BUNDLE)

    def download_relaid(self, user: User | None, name: str, layout: str):
        """(item, chunk iterator of a zip) of a dataset re-laid as ``layout`` (nnunet, monai);
        converted into the spool before the first byte, so a failure is still a 4xx."""
        from synthmed.serve.relayout import LAYOUTS, relay
        from synthmed.serve.zipstream import zip_chunks

        if layout not in LAYOUTS[1:]:
            raise Refusal(
                "bad_query", f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}"
            )
        with self.engine.connect() as conn:
            row = self._row(conn, user, name)
        if row.kind != "dataset":
            raise Refusal("not_a_dataset", f"'{name}' is a {row.kind} package, not a dataset export: "
                          "only datasets can be re-laid (download it with layout=original)")  # fmt: skip
        work = self.settings.spool_dir / uuid.uuid4().hex
        try:
            work.mkdir(parents=True)
            with (
                self.storage.open(row.storage_key, BUNDLE) as src,
                open(work / BUNDLE, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
            s = self.settings
            files = safe_extract(work / BUNDLE, work / "x", s.max_file_bytes, s.max_total_bytes)
            out = relay(files, layout, re.sub(r"[^A-Za-z0-9_-]", "-", name), work / layout)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        with self.engine.begin() as conn:
            self._audit(
                conn, user, "download", name, {"sha256": row.bundle_sha256, "layout": layout}
            )

        def chunks():
            try:
                yield from zip_chunks(out)
            finally:
                shutil.rmtree(work, ignore_errors=True)

        return {"name": f"{name}-{layout}", "sha256": row.bundle_sha256}, chunks()

    def _describe_row(self, row) -> dict[str, Any]:
        return {"name": row.name, "sha256": row.bundle_sha256, "bytes": row.bundle_bytes}

    def open_member(self, user: User | None, name: str, member: str) -> bytes:
        """One file of an item's bundle (report.html for the page), or its grid.png."""
        import zipfile

        with self.engine.connect() as conn:
            row = self._row(conn, user, name)
        if member == GRID:
            if not row.has_grid:
                raise Refusal("not_found", f"'{name}' has no sample grid")
            with self.storage.open(row.storage_key, GRID) as fh:
                return fh.read()
        with self.storage.open(row.storage_key, BUNDLE) as fh, zipfile.ZipFile(fh) as archive:
            try:
                return archive.read(member)
            except KeyError:
                raise Refusal("not_found", f"'{name}' has no {member}") from None

    # -- delete and audit ------------------------------------------------------------------

    def delete(self, user: User | None, name: str) -> None:
        """Owner or admin; the row goes first, so a crash leaves only unlisted files."""
        require(user, "publisher", "deleting")
        with self.engine.begin() as conn:
            row = self._row(conn, user, name)
            if row.owner_id != user.id and not user.can("admin"):
                raise Refusal("wrong_role", f"only '{row.owner}' or an admin may delete '{name}'")
            conn.execute(db.items.delete().where(db.items.c.id == row.id))
            self._audit(conn, user, "delete", name, {"sha256": row.bundle_sha256})
        self.storage.delete(row.storage_key)
        log.info("deleted %s by %s", name, user.name)

    def audit_log(self, user: User | None, limit: int = 200) -> list[dict[str, Any]]:
        require(user, "admin", "reading the audit log")
        query = sa.select(db.audit).order_by(db.audit.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "at": iso(r.at),
                "actor": r.actor,
                "action": r.action,
                "item": r.item_name,
                "detail": json.loads(r.detail),
            }
            for r in rows
        ]

    def health(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        self.storage.check()
        return {"status": "ok", "database": self.engine.dialect.name}
