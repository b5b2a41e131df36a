"""Reader studies (visual Turing test, Frid-Adar et al. 2018), without HTTP.

An admin builds a study from a published synthetic dataset and a zip of real images, with
``n`` images per side, and names its readers. Each reader gets a link holding a study token
(random, shown once, only its sha256 stored, as API tokens are) and a seed stored with them.
The reader's sequence is every image of the study (n real + n synthetic) ordered by
``sha256(seed:image id)``: balanced by construction, the same on every visit, so a reader
who stops resumes at the first unanswered position. Answers are accepted in order only; a
position already answered is refused (409 ``already_answered``): the first answer stands.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from synthmed.serve import db
from synthmed.serve.accounts import User, hash_token, now, require
from synthmed.serve.rules import Refusal
from synthmed.serve.service import Repository, iso
from synthmed.serve.storage import BUNDLE
from synthmed.serve.study_results import AnswerRecord, summarise

READER_TOKEN_PREFIX = "smr_"
ANSWERS = ("real", "synthetic")
MAX_PER_SIDE = 1000
CSV_FIELDS = ("study", "reader", "position", "image_id", "truth", "answer", "confidence",
              "class_truth", "class_answer", "answered_at")  # fmt: skip


def reader_sequence(seed: int, image_ids: list[str]) -> list[str]:
    """The reader's order of the study's images: a seeded shuffle that needs no RNG, so it
    cannot change with a Python or NumPy version."""
    return sorted(image_ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())


@dataclass(frozen=True)
class StudyRequest:
    """What an admin asks for (the real images come as an uploaded zip)."""

    name: str
    synthetic_item: str
    n_per_side: int
    ask_class: bool
    readers: tuple[str, ...]
    real_source: str = "uploaded zip"


@dataclass(frozen=True)
class Reader:
    """A reader authenticated by their study token, with their study's settings."""

    id: int
    name: str
    seed: int
    study_id: int
    study: str
    ask_class: bool
    classes: tuple[str, ...]


class Studies:
    """Study operations on a :class:`~synthmed.serve.service.Repository`'s database."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.engine = repo.engine

    # -- admin -----------------------------------------------------------------------------

    def create(self, user: User | None, req: StudyRequest, upload: Path) -> dict[str, Any]:
        """Build the study; returns it with each reader's token (shown only now)."""
        from synthmed.serve.study_images import study_images

        require(user, "admin", "creating a reader study")
        self._check(req)
        with self.engine.connect() as conn:
            item = self.repo._row(conn, user, req.synthetic_item)
        if item.kind != "dataset":
            raise Refusal("bad_study", f"'{req.synthetic_item}' is a {item.kind}, not a dataset")
        seed = secrets.randbelow(2**31)
        s = self.repo.settings
        with self.repo.storage.open(item.storage_key, BUNDLE) as bundle:
            images = study_images(
                bundle, upload, req.n_per_side, seed, s.spool_dir,
                (s.max_file_bytes, s.max_total_bytes),
            )  # fmt: skip
        classes = sorted({i.class_name for i in images if i.class_name is not None})
        if req.ask_class and any(i.class_name is None for i in images):
            raise Refusal(
                "bad_study",
                "asking the class needs a class for every image: a 'class' column in the "
                "synthetic manifest and real images in one folder per class (CLASS/x.png)",
            )
        tokens = {r.strip(): READER_TOKEN_PREFIX + secrets.token_urlsafe(32) for r in req.readers}
        try:
            study_id = self._insert(user, req, seed, classes, images, tokens)
        except sa.exc.IntegrityError:
            raise Refusal("bad_study", f"a study named '{req.name}' exists already") from None
        return self.describe(user, req.name) | {
            "id": study_id,
            "reader_tokens": [{"reader": n, "token": t} for n, t in tokens.items()],
        }

    @staticmethod
    def _check(req: StudyRequest) -> None:
        from synthmed.errors import InputError
        from synthmed.packaging.package import check_name

        try:
            check_name(req.name)
        except InputError as exc:
            raise Refusal("bad_study", exc.problem) from None
        if not 1 <= req.n_per_side <= MAX_PER_SIDE:
            raise Refusal("bad_study", f"n must be in 1..{MAX_PER_SIDE}, got {req.n_per_side}")
        _check_readers(req.readers)

    def _insert(self, user, req, seed, classes, images, tokens) -> int:
        with self.engine.begin() as conn:
            study_id = conn.execute(
                db.studies.insert().values(
                    name=req.name, synthetic_item=req.synthetic_item,
                    real_source=req.real_source[:300], n_per_side=req.n_per_side,
                    ask_class=req.ask_class, classes_json=json.dumps(classes), seed=seed,
                    created_by=user.id, created_at=now(),
                )
            ).inserted_primary_key[0]  # fmt: skip
            conn.execute(
                db.study_images.insert(),
                [
                    {"study_id": study_id, "public_id": secrets.token_hex(12), "truth": i.truth,
                     "class_truth": i.class_name, "source": i.source[:1000], "png": i.png}
                    for i in images
                ],
            )  # fmt: skip
            self._insert_readers(conn, study_id, tokens)
            self.repo._audit(conn, user, "study", req.name, {"readers": list(tokens)})
        return study_id

    @staticmethod
    def _insert_readers(conn, study_id: int, tokens: dict[str, str]) -> None:
        conn.execute(
            db.study_readers.insert(),
            [
                {"study_id": study_id, "name": name, "token_sha256": hash_token(t),
                 "seed": secrets.randbelow(2**31), "created_at": now()}
                for name, t in tokens.items()
            ],
        )  # fmt: skip

    def add_readers(self, user: User | None, name: str, readers: list[str]) -> list[dict]:
        """New readers for an existing study; returns their tokens (shown only now)."""
        require(user, "admin", "adding readers")
        _check_readers(readers)
        tokens = {r.strip(): READER_TOKEN_PREFIX + secrets.token_urlsafe(32) for r in readers}
        try:
            with self.engine.begin() as conn:
                self._insert_readers(conn, self._study(conn, name).id, tokens)
                self.repo._audit(conn, user, "study_readers", name, {"readers": list(tokens)})
        except sa.exc.IntegrityError:
            raise Refusal("bad_study", f"a reader of that name is already in '{name}'") from None
        return [{"reader": r, "token": t} for r, t in tokens.items()]

    def revoke_reader(self, user: User | None, name: str, reader: str) -> int:
        """Revoke a reader's link; their answers stay in the results."""
        require(user, "admin", "revoking a reader's link")
        r = db.study_readers
        with self.engine.begin() as conn:
            study_id = self._study(conn, name).id
            done = conn.execute(
                r.update()
                .where(r.c.study_id == study_id, r.c.name == reader, r.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
            self.repo._audit(conn, user, "study_revoke", name, {"reader": reader})
        return done.rowcount

    def _study(self, conn, name: str):
        row = conn.execute(sa.select(db.studies).where(db.studies.c.name == name)).first()
        if row is None:
            raise Refusal("not_found", f"no reader study '{name}'")
        return row

    def describe(self, user: User | None, name: str) -> dict[str, Any]:
        """Settings and each reader's progress (no truths, no tokens)."""
        require(user, "admin", "reading a study")
        with self.engine.connect() as conn:
            row = self._study(conn, name)
            total = self._count_images(conn, row.id)
            progress = conn.execute(
                sa.select(db.study_readers.c.name, sa.func.count(db.study_answers.c.id))
                .outerjoin(db.study_answers, db.study_answers.c.reader_id == db.study_readers.c.id)
                .where(db.study_readers.c.study_id == row.id)
                .group_by(db.study_readers.c.id, db.study_readers.c.name)
                .order_by(db.study_readers.c.name)
            ).all()
        return {
            "name": row.name,
            "synthetic_item": row.synthetic_item,
            "real_source": row.real_source,
            "n_per_side": row.n_per_side,
            "n_images": total,
            "ask_class": row.ask_class,
            "classes": json.loads(row.classes_json),
            "created_at": iso(row.created_at),
            "readers": [{"reader": n, "answered": c, "of": total} for n, c in progress],
        }

    def list(self, user: User | None) -> list[dict[str, Any]]:
        require(user, "admin", "listing reader studies")
        with self.engine.connect() as conn:
            names = conn.execute(sa.select(db.studies.c.name).order_by(db.studies.c.id)).scalars()
            names = list(names)
        return [self.describe(user, n) for n in names]

    @staticmethod
    def _count_images(conn, study_id: int) -> int:
        query = sa.select(sa.func.count()).where(db.study_images.c.study_id == study_id)
        return conn.execute(query.select_from(db.study_images)).scalar_one()

    def records(self, user: User | None, name: str) -> tuple[Any, list[str], list[AnswerRecord]]:
        """(study row, reader names, every answer joined with its image's truth)."""
        require(user, "admin", "reading a study's results")
        a, i, r = db.study_answers, db.study_images, db.study_readers
        with self.engine.connect() as conn:
            study = self._study(conn, name)
            readers = conn.execute(
                sa.select(r.c.name).where(r.c.study_id == study.id).order_by(r.c.name)
            ).scalars()
            readers = list(readers)
            rows = conn.execute(
                sa.select(r.c.name, a.c.position, i.c.public_id, i.c.truth, a.c.answer,
                          a.c.confidence, i.c.class_truth, a.c.class_answer, a.c.answered_at)
                .join(r, r.c.id == a.c.reader_id)
                .join(i, i.c.id == a.c.image_id)
                .where(r.c.study_id == study.id)
                .order_by(r.c.name, a.c.position)
            ).all()  # fmt: skip
        records = [AnswerRecord(*row[:8], iso(row[8])) for row in rows]
        return study, readers, records

    def results(self, user: User | None, name: str) -> dict[str, Any]:
        study, readers, records = self.records(user, name)
        with self.engine.connect() as conn:
            total = self._count_images(conn, study.id)
        return {"study": name, **summarise(records, readers, total, study.ask_class)}

    def answers_csv(self, user: User | None, name: str) -> str:
        """One row per answer, truths included (admins only)."""
        _, _, records = self.records(user, name)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for rec in records:
            writer.writerow([name, *(("" if v is None else v) for v in vars(rec).values())])
        return buf.getvalue()

    # -- readers ---------------------------------------------------------------------------

    def reader(self, token: str | None) -> Reader:
        """The reader a study token belongs to; refuses a missing or unknown one."""
        if not token:
            raise Refusal("bad_token", "a reader page needs the study link's token (?token=...)")
        r, s = db.study_readers, db.studies
        query = (
            sa.select(r.c.id, r.c.name, r.c.seed, r.c.revoked_at, s.c.id.label("study_id"),
                      s.c.name.label("study"), s.c.ask_class, s.c.classes_json)
            .join(s, s.c.id == r.c.study_id)
            .where(r.c.token_sha256 == hash_token(token))
        )  # fmt: skip
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise Refusal("bad_token", "the study link's token is unknown; ask the study's admin")
        if row.revoked_at is not None:
            when = row.revoked_at.strftime("%Y-%m-%d %H:%M UTC")
            raise Refusal("bad_token", f"this study link was revoked on {when}")
        return Reader(row.id, row.name, row.seed, row.study_id, row.study, row.ask_class,
                      tuple(json.loads(row.classes_json)))  # fmt: skip

    def sequence(self, conn, reader: Reader) -> list[str]:
        ids = conn.execute(
            sa.select(db.study_images.c.public_id).where(
                db.study_images.c.study_id == reader.study_id
            )
        ).scalars()
        return reader_sequence(reader.seed, list(ids))

    def _answered(self, conn, reader: Reader) -> int:
        query = sa.select(sa.func.count()).select_from(db.study_answers)
        return conn.execute(query.where(db.study_answers.c.reader_id == reader.id)).scalar_one()

    def current(self, token: str | None) -> dict[str, Any]:
        """Where the reader stands: the next position and its image's opaque id (or done)."""
        reader = self.reader(token)
        with self.engine.connect() as conn:
            order = self.sequence(conn, reader)
            position = self._answered(conn, reader)
        done = position >= len(order)
        return {
            "reader": reader.name,
            "study": reader.study,
            "position": position,
            "total": len(order),
            "done": done,
            "image_id": None if done else order[position],
            "ask_class": reader.ask_class,
            "classes": list(reader.classes),
        }

    def answer(self, token: str | None, form: dict[str, str]) -> int:
        """Store one answer (fields: position, image_id, answer, confidence, class_answer);
        returns the next position."""
        reader = self.reader(token)
        position, confidence = _integer(form, "position"), _integer(form, "confidence")
        answer, klass = form.get("answer", ""), form.get("class_answer") or None
        if answer not in ANSWERS:
            raise Refusal("bad_answer", f"answer must be real or synthetic, got {answer!r}")
        if not 1 <= confidence <= 5:
            raise Refusal("bad_answer", f"confidence must be 1-5, got {confidence}")
        if reader.ask_class and klass not in reader.classes:
            raise Refusal("bad_answer", f"class must be one of {', '.join(reader.classes)}")
        with self.engine.begin() as conn:
            order = self.sequence(conn, reader)
            done = self._answered(conn, reader)
            if position < done:
                raise Refusal("already_answered", f"position {position} is answered already")
            if position != done or position >= len(order):
                raise Refusal("wrong_position", f"the next open position is {done}, not {position}")
            if form.get("image_id") != order[position]:
                raise Refusal("bad_answer", f"that image is not at position {position}")
            image_pk = conn.execute(
                sa.select(db.study_images.c.id).where(
                    db.study_images.c.public_id == order[position]
                )
            ).scalar_one()
            try:
                conn.execute(
                    db.study_answers.insert().values(
                        reader_id=reader.id, image_id=image_pk, position=position, answer=answer,
                        confidence=confidence, class_answer=klass if reader.ask_class else None,
                        answered_at=now(),
                    )
                )  # fmt: skip
            except sa.exc.IntegrityError:  # a concurrent submit of the same position won
                raise Refusal(
                    "already_answered", f"position {position} is answered already"
                ) from None
        return position + 1

    def image(self, token: str | None, public_id: str) -> bytes:
        """A study image's PNG, for a reader of that study only."""
        reader = self.reader(token)
        query = sa.select(db.study_images.c.png).where(
            db.study_images.c.public_id == public_id,
            db.study_images.c.study_id == reader.study_id,
        )
        with self.engine.connect() as conn:
            png = conn.execute(query).scalar()
        if png is None:
            raise Refusal("not_found", "no such image in your study")
        return png


def _check_readers(readers) -> None:
    names = [r.strip() for r in readers]
    if not names or any(not r or len(r) > 100 for r in names) or len(set(names)) < len(names):
        raise Refusal("bad_study", "name at least one reader, each once (1-100 characters)")


def _integer(form: dict[str, str], key: str) -> int:
    try:
        return int(form.get(key, ""))
    except ValueError:
        raise Refusal(
            "bad_answer", f"{key} must be a whole number, got {form.get(key)!r}"
        ) from None
