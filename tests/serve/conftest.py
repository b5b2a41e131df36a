"""Fixtures of the repository-server tests: a real tiny evaluated run (made once per session),
its exports and package, publication bundles, and a server on SQLite or PostgreSQL.

Every API test runs twice, ``sqlite`` and ``postgresql``; the PostgreSQL run starts a
throw-away cluster (see :mod:`tests.serve.postgres`) and skips, saying why, only when the
PostgreSQL binaries are absent.
"""

from __future__ import annotations

import itertools
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from synthmed.serve.bundle import DESCRIPTOR, write_bundle  # noqa: E402
from synthmed.serve.client import build_bundle  # noqa: E402
from tests.serve.postgres import SKIP_REASON, Cluster, find_bin  # noqa: E402

EVALUATE = ["evaluate.utility.steps=2", "evaluate.utility.val_every=2",
            "evaluate.utility.channels=[4,8]", "evaluate.encoder_steps=50"]  # fmt: skip
FIELDS = dict(modality="fundus", anatomy="retina", licence="CC-BY-4.0", title="Tiny vessels")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """Train 2 steps on phantoms, sample 4, evaluate (privacy audit included), report."""
    from synthmed import api
    from tests.training.test_training import tiny_config

    run = tmp_path_factory.mktemp("serve") / "run"
    api.train(tiny_config(2, **{"sample.batch_size": "2"}), run, quiet=True)
    api.sample(run, n=4, seed=0, device="cpu", quiet=True)
    api.evaluate(run, device="cpu", quiet=True, overrides=EVALUATE)
    api.report(run)
    return run


@pytest.fixture(scope="session")
def exports(run_dir: Path) -> dict[str, Path]:
    from synthmed.export import export_dataset
    from synthmed.packaging import build_package

    return {
        "nifti": export_dataset(run_dir / "synthetic", "nifti", run_dir / "export" / "nifti", quiet=True),
        "dicom": export_dataset(run_dir / "synthetic", "dicom", run_dir / "export" / "dicom", quiet=True),
        "model": build_package(run_dir, name="tiny-model"),
    }  # fmt: skip


@pytest.fixture
def bundle(exports, tmp_path: Path) -> Callable[..., Path]:
    """``bundle("nifti", name=..., **descriptor fields)`` -> a valid publication zip."""
    counter = itertools.count()

    def make(source: str = "nifti", **fields) -> Path:
        out = tmp_path / f"bundle{next(counter)}.zip"
        return build_bundle(exports[source], out, **{**FIELDS, "name": f"tiny-{source}", **fields})

    return make


def rewrite(
    bundle: Path, out: Path, edit: Callable[[dict[str, bytes]], None], rehash: bool = True
) -> Path:
    """A copy of ``bundle`` whose members ``edit`` changed; ``rehash`` lists the new sha256s
    (else the old descriptor stays, so the edit shows as tampering)."""
    with zipfile.ZipFile(bundle) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    desc = json.loads(members.pop(DESCRIPTOR))
    edit(members)
    if not rehash:
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(DESCRIPTOR, json.dumps(desc))
            for name, data in members.items():
                archive.writestr(name, data)
        return out
    folder = out.parent / f"{out.stem}-files"
    paths = {}
    for name, data in members.items():
        paths[name] = folder / name
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        paths[name].write_bytes(data)
    desc.pop("files")
    return write_bundle(out, desc, paths)


@pytest.fixture(scope="session")
def postgres_admin_url():
    bin_dir = find_bin()
    if bin_dir is None:
        pytest.skip(SKIP_REASON)
    cluster = Cluster(bin_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


_databases = itertools.count()


def _create_database(admin_url: str, template: str | None = None) -> str:
    import sqlalchemy as sa

    name = f"synthmed_test_{next(_databases)}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(
            sa.text(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        )
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _migrated(url: str) -> str:
    from synthmed.serve import db

    engine = db.make_engine(url)
    db.migrate(engine)
    engine.dispose()  # a PostgreSQL template must have no open connections
    return url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "synthmed.db"
    _migrated(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_admin_url: str) -> str:
    """Name of a migrated database that each test's database is copied from."""
    return _migrated(_create_database(postgres_admin_url)).rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request, tmp_path: Path) -> str:
    """A fresh database without tables (for the migration test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return _create_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> str:
    """A fresh database per test, already at the newest migration (copied from a template
    migrated once per session: migrating every test's database would dominate the run)."""
    if request.param == "sqlite":
        target = tmp_path / "server" / "synthmed.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), target)
        return f"sqlite:///{target}"
    template = request.getfixturevalue("migrated_postgres")
    return _create_database(request.getfixturevalue("postgres_admin_url"), template)


class Server:
    """A TestClient on a fresh server, with one token per role (and a second publisher)."""

    def __init__(self, settings) -> None:
        from fastapi.testclient import TestClient

        from synthmed.serve.accounts import create_token
        from synthmed.serve.app import create_app

        self.settings = settings
        self.app = create_app(settings)
        self.repo = self.app.state.repo
        self.client = TestClient(self.app)
        self.tokens = {
            role: create_token(self.repo.engine, role, role)
            for role in ("reader", "publisher", "admin")
        }
        self.tokens["other"] = create_token(self.repo.engine, "other", "publisher")

    def headers(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get(who, who)}"} if who else {}

    def publish(self, bundle: Path, who: str | None = "publisher", **headers):
        headers = {"Content-Type": "application/zip", **self.headers(who), **headers}
        return self.client.post("/api/items", content=bundle.read_bytes(), headers=headers)

    def get(self, path: str, who: str | None = None, **params):
        return self.client.get(path, headers=self.headers(who), params=params)

    def delete(self, path: str, who: str | None = "publisher"):
        return self.client.delete(path, headers=self.headers(who))

    def close(self) -> None:
        self.client.close()
        self.repo.engine.dispose()


@pytest.fixture
def make_server(db_url: str, tmp_path: Path):
    from synthmed.serve.settings import ServeSettings

    servers = []

    def make(**limits) -> Server:
        settings = ServeSettings(data_dir=tmp_path / "server", db_url=db_url, **limits)
        servers.append(Server(settings))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def server(make_server) -> Server:
    return make_server()
