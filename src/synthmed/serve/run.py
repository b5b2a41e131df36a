"""Starting the server: migrate and sweep once, then hand over to uvicorn's workers.

``synthmed serve`` and ``synthmed serve token create`` call these; database errors become
one-line :class:`~synthmed.errors.InputError` messages (the URL shown without its password).
"""

from __future__ import annotations

import logging.config
import os

import sqlalchemy as sa
import uvicorn

from synthmed.errors import InputError
from synthmed.serve.accounts import create_token
from synthmed.serve.logs import log_config
from synthmed.serve.service import Repository
from synthmed.serve.settings import ServeSettings


def prepared(settings: ServeSettings) -> Repository:
    """A repository after migrations and the start-up sweep."""
    try:
        repo = Repository(settings)
        repo.prepare()
    except sa.exc.SQLAlchemyError as exc:
        url = sa.make_url(settings.db_url).render_as_string(hide_password=True)
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["error"])[0]
        raise InputError(f"cannot open the database {url}: {first}") from None
    return repo


def new_token(settings: ServeSettings, name: str, role: str) -> str:
    repo = prepared(settings)
    try:
        return create_token(repo.engine, name, role)
    finally:
        repo.engine.dispose()


def run_server(settings: ServeSettings, host: str, port: int, workers: int) -> None:
    """Serve until interrupted; workers build the app from ``SYNTHMED_SERVE_*``."""
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    logging.config.dictConfig(log_config())
    prepared(settings).engine.dispose()  # once, before any worker accepts an upload
    os.environ.update(settings.to_env())
    uvicorn.run(
        "synthmed.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config(),
    )
