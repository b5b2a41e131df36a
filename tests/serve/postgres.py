"""A throw-away PostgreSQL cluster on a loopback port, for the API tests' PostgreSQL runs.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` (or
``nobody``) account and every server command runs through ``runuser``. Nothing outside the
temporary folder is touched; the cluster is stopped and deleted at the end of the session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SKIP_REASON = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql "
    "(apt-get install postgresql, as .ci/run does) to run the PostgreSQL half of these tests"
)


def find_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them off PATH), newest version first."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    candidates += [str(Path(on_path).parent)] if on_path else []
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_user() -> tuple[list[str], str | None]:
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither 'postgres' nor 'nobody' exists for initdb")


class Cluster:
    """``start()`` -> an admin URL (``postgresql+psycopg://synthmed@127.0.0.1:PORT/postgres``)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.prefix, self.user = _as_user()
        self.dir = Path(tempfile.mkdtemp(prefix="synthmed-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        if self.user:
            shutil.chown(self.dir, self.user)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                  "synthmed", "--no-sync", "-E", "UTF8")  # fmt: skip
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
                  "-l", str(self.dir / "log"), "start")  # fmt: skip
        return f"postgresql+psycopg://synthmed@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
