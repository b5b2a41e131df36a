"""Training throughput of each method family with the fast path off / on / on + compile.

The prepared GPU check of issue #15 (``bash benchmarks/gpu/run.sh`` on a lent GPU machine):
for each case (a preset's full-scale networks at a paper batch size, on a small slice of its
phantom data, rows repeated up to the global batch) and each fast-path mode, one child process
trains with the real loop (``synthmed.training.loop.train_gan``) and times generator steps
after a warm-up (which absorbs compilation); with more than one GPU the ``on`` mode is also run
under ``torchrun`` on all of them. Every child has a hard time limit, the whole run a deadline:
what does not fit is recorded as skipped, never estimated.

    python benchmarks/gpu/throughput.py --deadline 540            # what run.sh runs
    python benchmarks/gpu/throughput.py --device cpu --tiny       # seconds, on any machine
    python benchmarks/gpu/throughput.py --case wgan_gp_b64 --mode on --json out.json  # one child

Writes ``--out`` (benchmarks/gpu/results.json and .md by default): date, machine, torch and
CUDA versions, the command, and one row per case x mode (steps/s, critic steps/s, images/s,
warm-up seconds, peak GPU memory, status).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# name: (preset, per-rank batch, overrides shrinking the data but not the networks)
CASES: dict[str, tuple[str, int, list[str]]] = {
    "wgan_gp_b64": ("kossen2021-wgan-gp", 64, ["data.patches.per_image=64"]),
    "wgan_gp_b300": ("kossen2021-wgan-gp", 300, ["data.patches.per_image=64"]),
    "dcgan_per_class_b64": ("fridadar2018-dcgan-per-class", 64, []),
    "pix2pix_256_b1": ("shin2018-pix2pix", 1, []),
    "spade_128_b1": ("platscher2021-spade", 1, []),
    "diffusion_pairs_b64": ("diffusion-pairs", 64, ["data.patches.per_image=64"]),
}
SMALL_DATA = ["data.train.phantom.n_patients=6", "data.train.phantom.images_per_patient=1"]
# --tiny: the same families at test size (CPU, seconds)
TINY_CASES: dict[str, tuple[str, int, list[str]]] = {
    "wgan_gp_tiny": ("demo-gan", 4, ["model.base_channels=4", "model.latent_dim=8"]),
    "pix2pix_tiny": ("shin2018-pix2pix", 2, ["model.base_channels=4"]),
}
TINY_DATA = ["data.train.phantom.n_patients=6", "data.train.phantom.size=32"]
TINY_DATA += ["data.patches.size=16", "data.patches.per_image=4", "train.n_critic=2"]
MODES = {
    "off": {"autocast": "off", "channels_last": "off", "compile": "off", "fused_adam": "off"},
    "on": {"autocast": "bf16", "channels_last": "on", "compile": "off", "fused_adam": "on"},
    "compile": {"autocast": "bf16", "channels_last": "on", "compile": "on", "fused_adam": "on"},
}
QUIET = ["train.sample_every=1000000", "train.checkpoint_every=1000000", "train.select.every=0"]
QUIET += ["train.budget=null", "train.lr_schedule=constant"]


class _Enough(Exception):
    """Raised from the timed step once the measurement is complete (ends train_gan)."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TimedStep:
    """The method's step with a clock: ``warmup`` steps (compilation happens there), then up
    to ``steps`` timed steps or ``budget_s`` seconds, whichever ends first."""

    def __init__(self, step, device, warmup: int, steps: int, budget_s: float) -> None:
        self.step, self.device = step, device
        self.warmup, self.steps, self.budget_s = warmup, steps, budget_s
        self.calls, self.t_start, self.t0 = 0, time.perf_counter(), None
        self.result: dict = {}

    def _stop_now(self, measured: int) -> bool:
        from synthmed import distributed

        stop = measured >= self.steps or time.perf_counter() - self.t0 > self.budget_s
        return bool(distributed.broadcast_values([float(stop)], self.device)[0])

    def __call__(self, ctx):
        if self.calls == self.warmup:
            _sync(self.device)
            self.t0 = time.perf_counter()
            self.result["warmup_s"] = round(self.t0 - self.t_start, 2)
        elif self.calls > self.warmup:
            measured = self.calls - self.warmup
            if self._stop_now(measured):
                _sync(self.device)
                seconds = time.perf_counter() - self.t0
                self.result.update(steps=measured, seconds=round(seconds, 3))
                raise _Enough
        self.calls += 1
        return self.step(ctx)


def _config(case: str, mode: str, tiny: bool, device: str):
    from synthmed.config import resolve_config

    preset, batch, extra = (TINY_CASES if tiny else CASES)[case]
    fast = [f"train.fast_path.{k}={v}" for k, v in MODES[mode].items()]
    data = TINY_DATA if tiny and preset == "demo-gan" else SMALL_DATA
    if tiny and preset != "demo-gan":
        data = ["data.train.phantom.n_patients=4", "data.train.phantom.size=32"]
    overrides = data + extra + fast + QUIET + [f"train.device={device}"]
    overrides += [f"train.batch_size={batch}", "train.log_every=1000000"]
    return resolve_config({"name": f"bench-{case}"}, preset=preset, overrides=overrides)


def _enough_rows(data, rows: int):
    """Training rows repeated until a global batch fits (throughput does not need variety)."""
    n = data.pairs.shape[0]
    if n >= rows:
        return data
    reps = math.ceil(rows / n)
    pairs = data.pairs.repeat(reps, *[1] * (data.pairs.dim() - 1))
    classes = None if data.classes is None else data.classes.repeat(reps)
    return dataclasses.replace(data, pairs=pairs, classes=classes)


def run_case(case: str, mode: str, device: str, tiny: bool, warmup: int, steps: int, budget_s):
    """One case x mode in this process (under torchrun: this rank's share); returns its row."""
    from synthmed import distributed
    from synthmed.data.arrays import prepare_gan_data
    from synthmed.training import loop
    from synthmed.training.fast_path import resolve_fast_path

    cfg = _config(case, mode, tiny, device)
    tcfg = cfg.train
    with distributed.session(torch.device(device).type):
        dev = distributed.local_device(torch.device(device))
        world = distributed.world_size()
        data = _enough_rows(prepare_gan_data(cfg.data), tcfg.batch_size * world)
        method = loop.METHODS.get(tcfg.method)
        timed = TimedStep(method.step, dev, warmup, steps, budget_s)
        registry = loop.METHODS

        class _Registry:
            def get(self, name):
                return dataclasses.replace(registry.get(name), step=timed)

        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        loop.METHODS = _Registry()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = cfg.model_copy(update={"train": tcfg.model_copy(update={"steps": 10**9})})
                loop.train_gan(cfg, data, Path(tmp), quiet=True)
        except _Enough:
            pass
        finally:
            loop.METHODS = registry
        r = timed.result
        rate = r["steps"] / r["seconds"] if r.get("seconds") else 0.0
        critic = method.critic_steps(tcfg) if method.critic_steps else 0
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
        return {
            "case": case,
            "preset": cfg.preset,
            "model": cfg.model.name,
            "mode": mode,
            "fast_path": resolve_fast_path(dev, tcfg.fast_path).describe(),
            "world_size": world,
            "batch_per_rank": tcfg.batch_size,
            "image_size": list(data.spatial_size),
            "steps_measured": r.get("steps", 0),
            "warmup_steps": warmup,
            "warmup_s": r.get("warmup_s"),  # setup + warm-up steps (compilation)
            "generator_steps_per_s": round(rate, 3),
            "critic_steps_per_s": round(rate * critic, 3),
            "images_per_s": round(rate * tcfg.batch_size * world, 1),
            "peak_gpu_memory_gib": None if peak is None else round(peak, 2),
            "status": "ok",
        }


def _child(args, case: str, mode: str, world: int, timeout: float) -> dict:
    """One case x mode in a fresh process (torchrun on ``world`` GPUs when > 1)."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    own = [str(HERE / "throughput.py"), "--case", case, "--mode", mode, "--json", str(out)]
    own += ["--device", args.device, "--warmup", str(args.warmup), "--steps", str(args.steps)]
    own += ["--step-budget", str(args.step_budget)] + (["--tiny"] if args.tiny else [])
    cmd = [sys.executable, *own]
    if world > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += ["--nproc-per-node", str(world), *own]
    row = {"case": case, "mode": mode, "world_size": world}
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**row, "status": f"timeout after {timeout:.0f} s"}
    finally:
        row["wall_s"] = round(time.perf_counter() - t0, 1)
    if done.returncode != 0 or not out.stat().st_size:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**row, "status": f"failed (exit {done.returncode}): {tail[0][:300]}"}
    result = json.loads(out.read_text())
    out.unlink()
    return {**result, "wall_s": row["wall_s"]}


def _plan(args, gpus: int) -> list[tuple[str, str, int]]:
    """Most informative first: off and on for every case, then torchrun, then compile."""
    cases = list(TINY_CASES if args.tiny else CASES)
    if args.cases:
        cases = [c for c in cases if c in args.cases]
    modes = ["off", "on"] + (["compile"] if args.compile else [])
    plan = [(c, m, 1) for m in modes[:2] for c in cases]
    if gpus > 1:
        plan += [(c, "on", gpus) for c in cases]
    plan += [(c, m, 1) for m in modes[2:] for c in cases]
    return plan


def header(args) -> dict:
    from synthmed import __version__
    from synthmed.machine import describe_machine

    cuda = torch.cuda.is_available()
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "synthmed": __version__,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def markdown(result: dict) -> str:
    head = {k: v for k, v in result.items() if k != "rows"}
    lines = ["# GPU throughput (benchmarks/gpu/run.sh)", ""]
    lines += [f"- {k}: `{v}`" for k, v in head.items() if k != "settings"]
    lines += ["", "| case | mode | ranks | batch/rank | G steps/s | D steps/s | images/s |"]
    lines[-1] += " setup + warm-up s | peak GiB | status |"
    lines += ["|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        cells = [r.get("case"), r.get("mode"), r.get("world_size"), r.get("batch_per_rank")]
        cells += [r.get("generator_steps_per_s"), r.get("critic_steps_per_s")]
        cells += [r.get("images_per_s"), r.get("warmup_s"), r.get("peak_gpu_memory_gib")]
        cells += [r.get("status")]
        lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="test-size networks, in this process")
    p.add_argument("--isolate", action="store_true", help="--tiny in child processes too")
    p.add_argument("--cases", nargs="*", help="a subset of the cases")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (compilation)")
    p.add_argument("--steps", type=int, default=20, help="timed steps at most")
    p.add_argument("--step-budget", type=float, default=5.0, help="timed seconds at most")
    p.add_argument("--case-timeout", type=float, default=150.0, help="hard limit per child, s")
    p.add_argument("--deadline", type=float, default=540.0, help="whole run, seconds")
    p.add_argument("--out", type=Path, default=HERE / "results.json")
    p.add_argument("--case", help=argparse.SUPPRESS)  # child mode: one case x mode
    p.add_argument("--mode", choices=list(MODES), help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        row = run_case(args.case, args.mode, args.device, args.tiny, args.warmup, args.steps,
                       args.step_budget)  # fmt: skip
        if int(os.environ.get("RANK", 0)) == 0:
            args.json.write_text(json.dumps(row))
        return 0
    t_end = time.perf_counter() + args.deadline
    gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 0
    result = {**header(args), "rows": []}
    for case, mode, world in _plan(args, gpus):
        left = t_end - time.perf_counter()
        if left < 15:
            result["rows"].append({"case": case, "mode": mode, "world_size": world,
                                   "status": "skipped: the run's deadline"})  # fmt: skip
            continue
        if (
            args.tiny and not args.isolate
        ):  # in this process: seconds, no fresh interpreter per case
            row = run_case(case, mode, args.device, True, args.warmup, args.steps, args.step_budget)
        else:
            row = _child(args, case, mode, world, min(args.case_timeout, left))
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
        _write(args.out, result)  # after every row: a killed run keeps what it measured
    _write(args.out, result)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


def _write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))  # runs from a checkout without the install too
    raise SystemExit(main())
