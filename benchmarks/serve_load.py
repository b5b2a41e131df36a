"""Load test of the repository server: concurrent readers browse, search, open and download.

    python benchmarks/serve_load.py --duration 60 --readers 50            # PostgreSQL, 4 workers
    python benchmarks/serve_load.py --db sqlite --duration 2 --readers 3  # a smoke run

Starts ``synthmed serve`` (``--workers`` uvicorn workers) against a throw-away PostgreSQL
cluster (or SQLite), publishes the tiny demo dataset (see ``serve_demo.py``; or ``--bundle``),
then runs ``--readers`` simulated readers (httpx, asyncio) that loop over: the index page, a
filtered search page, the JSON search, the item page, its sample grid and the bundle download,
until ``--duration`` seconds or ``--max-requests`` requests. Writes
benchmarks/results/serve_load.json and .md: date, machine, command, request count, p50/p99
latency per endpoint and the errors (anything but HTTP 200, or no answer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_demo import ROOT, demo_bundle, postgres_url, server  # noqa: E402

ITEM = "demo-fundus"


def endpoints(name: str) -> list[tuple[str, str]]:
    """(endpoint label, path) in the order one reader visits them."""
    return [
        ("index", "/"),
        ("search page", "/?modality=fundus&label=vessel"),
        ("search api", "/api/items?q=demo&max_membership_auc=0.99"),
        ("item page", f"/items/{name}"),
        ("grid.png", f"/items/{name}/grid.png"),
        ("download", f"/api/items/{name}/download"),
    ]


async def reader(client, paths, stop_at: float, budget: list[int], log: list) -> None:
    while time.monotonic() < stop_at and budget[0] > 0:
        for label, path in paths:
            if time.monotonic() >= stop_at or budget[0] <= 0:
                return
            budget[0] -= 1
            start = time.perf_counter()
            try:
                async with client.stream("GET", path) as resp:
                    size = 0
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                    error = None if resp.status_code == 200 and size else f"HTTP {resp.status_code}"
            except Exception as exc:  # a refused or dropped connection is an error, not a crash
                error = type(exc).__name__
            log.append((label, time.perf_counter() - start, error))


async def load(url: str, name: str, readers: int, duration: float, max_requests: int) -> list:
    import httpx

    log: list = []
    budget = [max_requests]
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        stop_at = time.monotonic() + duration
        paths = endpoints(name)
        await asyncio.gather(*(reader(client, paths, stop_at, budget, log) for _ in range(readers)))
    return log


def summarise(log: list, wall_s: float) -> dict:
    per = {}
    for label in dict.fromkeys(label for label, _, _ in log):
        ms = np.array([1000 * t for lab, t, _ in log if lab == label])
        errors = [e for lab, _, e in log if lab == label and e]
        per[label] = {"requests": int(ms.size), "errors": len(errors),
                      "p50_ms": round(float(np.percentile(ms, 50)), 1),
                      "p99_ms": round(float(np.percentile(ms, 99)), 1)}  # fmt: skip
    errors = sorted({e for _, _, e in log if e})
    return {"requests": len(log), "errors": sum(v["errors"] for v in per.values()),
            "error_kinds": errors, "requests_per_s": round(len(log) / wall_s, 1),
            "endpoints": per}  # fmt: skip


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = [
        "# Repository server under load",
        "",
        f"- date: {result['date']}",
        f"- machine: {result['machine']}",
        f"- command: `{result['command']}`",
        f"- database: {result['database']}, {result['workers']} uvicorn workers, "
        f"{result['readers']} concurrent readers for {result['duration_s']} s",
        f"- dataset: {result['dataset']}",
        f"- requests: {s['requests']} ({s['requests_per_s']}/s), errors: {s['errors']}"
        + (f" ({', '.join(s['error_kinds'])})" if s["error_kinds"] else ""),
        "",
        "| endpoint | requests | errors | p50 (ms) | p99 (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, v in s["endpoints"].items():
        lines.append(
            f"| {label} | {v['requests']} | {v['errors']} | {v['p50_ms']} | {v['p99_ms']} |"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, work: Path) -> dict:
    from synthmed.machine import describe_machine
    from synthmed.serve.client import publish_bundle

    bundle = args.bundle or demo_bundle(work, ITEM)
    with contextlib.ExitStack() as stack:
        if args.db == "postgresql":
            db_url = stack.enter_context(postgres_url())
        else:
            db_url = f"sqlite:///{work / 'server' / 'synthmed.db'}"
        url, token = stack.enter_context(server(work / "server", db_url, args.workers))
        name = publish_bundle(url, token, bundle)["name"]
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        log = asyncio.run(load(url, name, args.readers, args.duration, args.max_requests))
        wall = time.perf_counter() - start
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{describe_machine()}, {os.cpu_count()} CPUs, "
        f"1-min load average {load_before:.1f} before the run (shared machine)",
        "command": " ".join(["python", *sys.argv]),
        "database": args.db,
        "workers": args.workers,
        "readers": args.readers,
        "duration_s": args.duration,
        "dataset": "given bundle" if args.bundle else "synthmed demo --tiny, NIfTI export",
        "summary": summarise(log, wall),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--readers", type=int, default=50, help="concurrent readers")
    parser.add_argument("--max-requests", type=int, default=100_000, help="stop after this many")
    parser.add_argument("--workers", type=int, default=4, help="uvicorn workers")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--bundle", type=Path, default=None, help="publish this bundle instead")
    parser.add_argument("--work", type=Path, default=None, help="keep the demo run here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="synthmed-load-") as tmp:
        work = args.work or Path(tmp)
        if args.work:
            import shutil

            shutil.rmtree(work / "server", ignore_errors=True)
        result = run(args, work)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serve_load.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
