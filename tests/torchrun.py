"""Running ``synthmed`` as a CPU (gloo) torchrun job from a test, with this checkout's code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import synthmed

SRC = str(Path(synthmed.__file__).resolve().parents[1])


def child_env() -> dict[str, str]:
    """The test's environment with this checkout first on ``PYTHONPATH`` (torchrun's workers
    inherit it) and one thread per process (two ranks on a small CPU)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    return env


def synthmed_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m synthmed ARGS`` in a fresh process (``--nproc N`` then launches torchrun)."""
    cmd = [sys.executable, "-m", "synthmed", *args]
    return subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=timeout)


def output(done: subprocess.CompletedProcess) -> str:
    return done.stdout[-3000:] + done.stderr[-3000:]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_node_job(*args: str, timeout: float = 240) -> list[subprocess.CompletedProcess]:
    """``synthmed ARGS`` as the README's 2-node rendezvous command, both "nodes" on this
    machine: two torchrun agents of 1 process each meet at a c10d endpoint."""
    endpoint = f"127.0.0.1:{free_port()}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
    cmd += ["--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint]
    cmd += ["--rdzv-id", "test", "-m", "synthmed", "--", *args]
    agents = [
        subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    done = []
    for agent in agents:
        out, err = agent.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(cmd, agent.returncode, out.decode(), err.decode()))
    return done
