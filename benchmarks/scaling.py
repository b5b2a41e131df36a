"""Inputs of the torchrun throughput model (benchmarks/SCALING.md), measured on this machine:

* per preset (main stage; full and ``--quick`` scale): trainable parameters of generator and
  critic, the gradient bytes DDP all-reduces per training step (every gradient a backward
  computes for a network the method trains, fp32, counted by parameter hooks over real
  training steps, so n_critic and frozen networks are accounted for exactly), and the CPU
  seconds one process spends per step (process CPU time of the method's step call, median
  over the steps after the first, with ``--threads`` torch threads; full scale at a per-rank
  batch of at most ``--full-batch``, quick scale at its own batch);
* gloo all-reduce bandwidth between 2 processes on this machine.

    python benchmarks/scaling.py [PRESET ...] [--steps 3] [--full-batch 1] [--threads 1]
    python benchmarks/scaling.py --table    # SCALING.md's table, from the JSON

Data are each preset's default data (phantoms unless the preset names a shared data set).
Writes benchmarks/results/scaling.json (date, machine, load average, command, rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from synthmed import __version__
from synthmed.config import resolve_config
from synthmed.config.loading import list_presets
from synthmed.data.arrays import prepare_gan_data
from synthmed.machine import describe_machine
from synthmed.training import loop

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "scaling.json"
MEASURE = ["train.device=cpu", "train.log_every=1", "train.sample_every=100000"]
MEASURE += ["train.checkpoint_every=100000", "train.select.every=0", "train.budget=null"]


class GradientCounter:
    """Counts the gradient elements each backward computes for generator and critic: under
    DDP each of them is all-reduced once (frozen networks run unwrapped and compute none)."""

    def __init__(self) -> None:
        self.elements = 0
        self.params: dict[str, int] = {}

    def build(self, name, kwargs):
        model = BUILD(name, kwargs)
        for net in ("generator", "critic"):
            module = getattr(model, net, None)
            if module is None:
                continue
            params = [p for p in module.parameters() if p.requires_grad]
            self.params[net] = sum(p.numel() for p in params)
            for p in params:
                p.register_hook(self._hook(p.numel()))
        return model

    def _hook(self, n: int):
        def count(grad):
            self.elements += n
            return grad

        return count


class TimedMethod:
    """The configured training method, timed per call (one call = one training step's
    forward, backward and optimiser updates): process CPU time, which other jobs sharing the
    cores do not inflate, and wall time."""

    def __init__(self, method) -> None:
        self.method, self.cpu, self.wall = method, [], []

    def __call__(self, ctx):
        c0, w0 = time.process_time(), time.perf_counter()
        out = self.method(ctx)
        self.cpu.append(time.process_time() - c0)
        self.wall.append(time.perf_counter() - w0)
        return out

    def __getattr__(self, name: str):
        return getattr(self.method, name)


class TimingRegistry:
    """``loop.METHODS`` with each method handed out wrapped in :class:`TimedMethod`."""

    def __init__(self, registry) -> None:
        self.registry, self.timed = registry, None

    def get(self, name: str):
        self.timed = TimedMethod(self.registry.get(name))
        return self.timed


BUILD, METHODS = loop.build_model, loop.METHODS


def _no_grid(*_args, **_kwargs) -> None:
    return None


def measure_preset(preset: str, quick: bool, steps: int, full_batch: int) -> dict:
    """One preset at one scale: parameters, all-reduce bytes and CPU seconds per step."""
    cfg = resolve_config(preset=preset, quick=quick)
    batch = cfg.train.batch_size if quick else min(cfg.train.batch_size, full_batch)
    overrides = MEASURE + [f"train.steps={steps}", f"train.batch_size={batch}"]
    cfg = resolve_config(preset=preset, quick=quick, overrides=overrides)
    data = prepare_gan_data(cfg.data)
    counter, timing = GradientCounter(), TimingRegistry(METHODS)
    # the final sample grid is not a training step: a full-size diffusion U-Net spends minutes
    # on it with one thread, so it is skipped here
    grid = loop._sample_grid
    loop.build_model, loop.METHODS, loop._sample_grid = counter.build, timing, _no_grid
    try:
        with tempfile.TemporaryDirectory() as tmp:
            loop.train_gan(cfg, data, Path(tmp), quiet=True)
    finally:
        loop.build_model, loop.METHODS, loop._sample_grid = BUILD, METHODS, grid
    cpu, wall = timing.timed.cpu[1:], timing.timed.wall[1:]  # step 1 (warm-up) left out
    per_step = statistics.median(cpu)
    return {
        "preset": preset,
        "scale": "quick" if quick else "full",
        "method": cfg.train.method,
        "model": cfg.model.name,
        "pair_shape": list(data.pairs.shape[1:]),
        "training_rows": len(data.pairs),
        "preset_batch_size": resolve_config(preset=preset, quick=quick).train.batch_size,
        "measured_batch_size": batch,
        "n_critic": cfg.train.n_critic,
        "params": counter.params,
        "allreduce_bytes_per_step": 4 * counter.elements // steps,
        "cpu_s_per_step": per_step,
        "cpu_s_per_sample": per_step / batch,
        "cpu_s_steps": cpu,
        "wall_s_steps": wall,
    }


def _allreduce_worker(rank: int, world: int, init: str, sizes: list[int], reps: int, q) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    rows = []
    for nbytes in sizes:
        x = torch.ones(nbytes // 4)
        dist.all_reduce(x)  # warm-up: connections and buffers
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(x)
        rows.append({"bytes": nbytes, "seconds": (time.perf_counter() - t0) / reps})
    if rank == 0:
        q.put(rows)
    dist.destroy_process_group()


def gloo_bandwidth(sizes: list[int], reps: int = 5, world: int = 2) -> list[dict]:
    """Seconds per all-reduce of ``sizes`` bytes between ``world`` local gloo processes."""
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        init = f"file://{tmp}/store"
        mp.start_processes(
            _allreduce_worker, (world, init, sizes, reps, q), nprocs=world, start_method="spawn"
        )
        rows = q.get()
    for row in rows:  # ring all-reduce: each rank sends and receives 2 (N-1) / N x bytes
        row["bus_GB_per_s"] = 2 * (world - 1) / world * row["bytes"] / row["seconds"] / 1e9
    return rows


LINKS = {"10GbE": 1.25e9, "100Gb_IB": 12.5e9}
"""Nominal link bandwidths in bytes/s (assumed, not measured here), beside the measured gloo."""


def model_rows(result: dict) -> list[dict]:
    """The throughput model of SCALING.md applied to the measured inputs.

    Per rank and step: compute ``t_c = b s`` (``s`` = measured CPU seconds per sample at the
    measured batch) and ring all-reduce ``2 (N-1)/N B / beta`` (``B`` = bytes per step), not
    overlapped. With the preset's global batch ``G`` split over ``N`` ranks (``b = G / N``)
    the speedup is ``N G s / (G s + 2 (N-1) B / beta)``: half the ideal at
    ``N_half = 1 + G s beta / (2 B)``; ``N`` is also bounded by ``G`` (one sample per rank).
    """
    gloo = max(r["bus_GB_per_s"] for r in result["gloo_allreduce_2_processes"]) * 1e9
    links = {"gloo_here": gloo, **LINKS}
    out = []
    for r in result["rows"]:
        g, s, b = r["preset_batch_size"], r["cpu_s_per_sample"], r["allreduce_bytes_per_step"]
        row = {"preset": r["preset"], "scale": r["scale"], "G": g, "s": s, "MB": b / 1e6}
        row["params_M"] = sum(r["params"].values()) / 1e6
        row["t_c_G"] = g * s
        for name, beta in links.items():
            row[f"t_comm_{name}"] = 2 * b / beta  # the N -> infinity limit of 2 (N-1)/N B/beta
            row[f"N_half_{name}"] = 1 + g * s * beta / (2 * b)
        out.append(row)
    return out


def print_table(result: dict) -> None:
    """SCALING.md's table: one row per preset and scale."""
    names = ["gloo_here", *LINKS]
    head = ["preset", "scale", "params (M)", "all-reduce MB/step", "G", "CPU s/sample"]
    head += ["t_c(G) s"] + [f"2B/beta {n} s" for n in names] + [f"N_half {n}" for n in names]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in model_rows(result):
        cells = [row["preset"], row["scale"], f"{row['params_M']:.2f}", f"{row['MB']:.1f}"]
        cells += [str(row["G"]), f"{row['s']:.3g}", f"{row['t_c_G']:.3g}"]
        cells += [f"{row[f't_comm_{n}']:.2g}" for n in names]
        cells += [f"{min(row[f'N_half_{n}'], row['G']):.0f}" for n in names]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=None)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--full-batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", action="store_true", help="print the model from the JSON")
    args = parser.parse_args()
    if args.table:
        print_table(json.loads(OUT.read_text()))
        return
    torch.set_num_threads(args.threads)
    result = {
        "date": dt.date.today().isoformat(),
        "machine": describe_machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "synthmed_version": __version__,
        "command": "python benchmarks/scaling.py " + shlex.join(sys.argv[1:]),
        "gloo_allreduce_2_processes": gloo_bandwidth([1 << 20, 16 << 20, 64 << 20]),
        "rows": [],
    }
    print(json.dumps(result["gloo_allreduce_2_processes"]), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for quick in (True, False):  # every preset's quick scale first: cheap, and what CPUs run
        for preset in args.presets or list_presets():
            result["rows"].append(measure_preset(preset, quick, args.steps, args.full_batch))
            print(json.dumps(result["rows"][-1]), flush=True)
            OUT.write_text(
                json.dumps(result, indent=2) + "\n"
            )  # after each row: partial runs keep theirs
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
