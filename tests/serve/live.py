"""A real ``synthmed serve`` in a subprocess (uvicorn, 2 workers), for restart and CLI tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

START_TIMEOUT_S = (
    120  # generous: a loaded CI machine imports slowly; a healthy start returns at once
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``start()`` / ``kill()`` (SIGKILL to uvicorn and its workers) / ``stop()``."""

    def __init__(self, data_dir: Path, db_url: str, workers: int = 2) -> None:
        self.data_dir, self.db_url, self.workers = data_dir, db_url, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    def token(self, name: str, role: str) -> str:
        from synthmed.serve.run import new_token
        from synthmed.serve.settings import ServeSettings

        return new_token(ServeSettings(data_dir=self.data_dir, db_url=self.db_url), name, role)

    def start(self) -> LiveServer:
        cmd = [sys.executable, "-m", "synthmed", "serve", "--data-dir", str(self.data_dir),
               "--db", self.db_url, "--port", str(self.port), "--workers", str(self.workers)]  # fmt: skip
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=2) as resp:
                    if json.load(resp)["status"] == "ok":
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not answer in {START_TIMEOUT_S}s: {self.log.read_text()}")

    def kill(self) -> None:
        """kill -9 the server and every worker (one process group), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
