"""synthmed.serve: the SynthMed repository server, where synthetic datasets and model packages
are published behind a privacy gate, browsed, searched and downloaded.

Needs the ``serve`` extra (``pip install 'synthmed[serve]'``: FastAPI, SQLAlchemy, Alembic,
uvicorn, fsspec). Nothing here is imported by ``import synthmed``; the client side
(:mod:`synthmed.serve.client`, behind ``synthmed publish`` and ``synthmed models install``)
uses the standard library only, so publishing works from a plain install.
"""
