"""Shared by the server benchmarks: the tiny demo dataset as a publication bundle, and a
``synthmed serve`` subprocess on a loopback port (SQLite, or a throw-away PostgreSQL cluster).

The dataset is ``synthmed demo --tiny`` (the demo preset's ``diffusion_pairs`` model trained
for seconds on 8 built-in fundus phantom patients, 8 samples of noise-like images; see
:func:`synthmed.api.demo`) exported as NIfTI. Such a toy
run is not private: its membership-inference AUC is about 0.85, above the server's default
gate of 0.75, so these scripts start the server with ``--max-membership-auc 0.95`` and say so.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATE = ["--max-membership-auc", "0.95"]  # the tiny demo fails the default 0.75 (see above)
FIELDS = dict(modality="fundus", anatomy="retina", licence="CC-BY-4.0",
              title="Tiny demo fundus vessels",
              description="synthmed demo --tiny: the demo preset (diffusion_pairs) trained for seconds on built-in fundus phantoms")  # fmt: skip


def demo_bundle(work: Path, name: str = "demo-fundus") -> Path:
    """The tiny demo run (made once under ``work``), its NIfTI export, zipped for publishing."""
    from synthmed import api
    from synthmed.export import export_dataset
    from synthmed.serve.client import build_bundle

    run, export = work / "demo", work / "demo" / "export" / "nifti"
    if not (run / "report.html").is_file():
        api.demo(run, tiny=True, device="cpu", quiet=True)
    if not (export / "export.json").is_file():
        export_dataset(run / "synthetic", "nifti", export, quiet=True)
    return build_bundle(export, work / f"{name}.zip", name=name, **FIELDS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_url():
    """A throw-away PostgreSQL cluster (the test suite's helper), yielding its admin URL."""
    sys.path.insert(0, str(ROOT))
    from tests.serve.postgres import SKIP_REASON, Cluster, find_bin

    bin_dir = find_bin()
    if bin_dir is None:
        raise SystemExit(SKIP_REASON)
    cluster = Cluster(bin_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@contextmanager
def server(data_dir: Path, db_url: str, workers: int, timeout_s: float = 180):
    """``synthmed serve`` in its own process group; yields (url, publisher token)."""
    from synthmed.serve.run import new_token
    from synthmed.serve.settings import ServeSettings

    data_dir.mkdir(parents=True, exist_ok=True)
    token = new_token(ServeSettings(data_dir=data_dir, db_url=db_url), "bench", "publisher")
    port = free_port()
    cmd = [sys.executable, "-m", "synthmed", "serve", "--data-dir", str(data_dir), "--db",
           db_url, "--port", str(port), "--workers", str(workers), *GATE]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with (data_dir / "server.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {(data_dir / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as resp:
                    if json.load(resp)["status"] == "ok":
                        break
            except OSError:
                time.sleep(0.2)
        yield url, token
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
