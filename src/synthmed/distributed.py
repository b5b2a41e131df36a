"""torchrun support: the process group, rank queries and the few collectives training needs.

Everything goes through ``torch.distributed`` (gloo on CPU, NCCL on CUDA); a process not
started by torchrun (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) is world size 1 and every function
here is a no-op, so single-process code paths stay unchanged.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from synthmed.errors import InputError


@dataclass(frozen=True)
class LaunchEnv:
    """What torchrun put in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def read(cls) -> LaunchEnv:
        try:
            return cls(
                int(os.environ.get("RANK", 0)),
                int(os.environ.get("WORLD_SIZE", 1)),
                int(os.environ.get("LOCAL_RANK", 0)),
            )
        except ValueError:
            raise InputError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes files."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """Under torchrun on CUDA, this process's GPU (``cuda:LOCAL_RANK``); else ``device``."""
    if device.type == "cuda" and world_size() > 1:
        return torch.device("cuda", LaunchEnv.read().local_rank)
    return device


def setup(device_type: str) -> bool:
    """Join the torchrun job's process group (gloo on CPU, NCCL on CUDA) when
    ``WORLD_SIZE > 1`` and not already joined; returns True when this call joined.

    Raises:
        InputError: ``WORLD_SIZE > 1`` but the group cannot be formed (e.g. no
            ``MASTER_ADDR``/``MASTER_PORT``: start the job with torchrun).
    """
    env = LaunchEnv.read()
    if env.world_size <= 1 or dist.is_initialized():
        return False
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(env.local_rank)
    try:
        dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"WORLD_SIZE={env.world_size} but the {backend} process group could not start "
            f"({first}); launch with torchrun or synthmed train --nproc N"
        ) from None
    return True


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device_type: str) -> Iterator[None]:
    """The process group for the duration of the block (left as found when already joined)."""
    joined = setup(device_type)
    try:
        yield
    finally:
        if joined:
            cleanup()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def mean_losses(losses: dict[str, float], device: torch.device) -> dict[str, float]:
    """Each logged value averaged over the ranks (one all-reduce; identity in one process).

    Every rank's batch has the same size, so the mean of the per-rank means is the mean over
    the global batch.
    """
    if world_size() == 1 or not losses:
        return losses
    values = torch.tensor(list(losses.values()), dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(losses, (values / world_size()).tolist(), strict=True))


def broadcast_values(values: list[float], device: torch.device) -> list[float]:
    """Rank 0's ``values`` on every rank (decisions such as "budget spent" must agree)."""
    if world_size() == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the ranks, on every rank (a new tensor on ``values``' device;
    ``values`` itself in one process). For statistics every rank must agree on, e.g. the
    adaptive augmentation's overfitting signal."""
    if world_size() == 1:
        return values
    out = values.detach().clone()
    dist.all_reduce(out)
    return out


def average_gradients(params) -> None:
    """Each parameter's ``.grad`` replaced by its mean over the ranks (one all-reduce of the
    flattened gradients), for networks trained outside DDP's forward (the latent
    autoencoder's loss calls its encoder and decoder, not its ``forward``). Parameters
    without a gradient must be the same on every rank; they are skipped."""
    if world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def block_bounds(n: int, rank: int, world: int, unit: int = 1) -> tuple[int, int]:
    """``(start, stop)`` of this rank's contiguous block of ``n`` rows, cut at multiples of
    ``unit`` (a batch size: each rank then processes exactly the batches one process would)."""
    units = -(-n // unit)
    per, extra = divmod(units, world)
    first = rank * per + min(rank, extra)
    last = first + per + (1 if rank < extra else 0)
    return min(first * unit, n), min(last * unit, n)


def _collective_device() -> torch.device:
    """Where a collective's tensors must live: this rank's GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", LaunchEnv.read().local_rank)
    return torch.device("cpu")


def all_gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Every rank's ``rows`` ``(N_r, ...)`` joined in rank order, on every rank (on the CPU;
    the identity in one process). Blocks may differ in length, trailing shapes may not."""
    if world_size() == 1:
        return rows
    device = _collective_device()
    n = torch.tensor([rows.shape[0]], device=device)
    sizes = [torch.empty_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    counts = [int(s) for s in sizes]
    padded = torch.zeros((max(counts), *rows.shape[1:]), dtype=rows.dtype, device=device)
    padded[: rows.shape[0]] = rows.to(device)
    gathered = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(gathered, padded)
    return torch.cat([g[:c].cpu() for g, c in zip(gathered, counts, strict=True)])


def all_gather_objects(obj) -> list:
    """Every rank's picklable ``obj`` in rank order, on every rank (``[obj]`` in one
    process): results of work split over the ranks, e.g. the utility sweep's cells."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj):
    """Rank 0's picklable ``obj`` on every rank (``obj`` itself in one process)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def replicas_identical(modules: list[nn.Module], device: torch.device) -> bool:
    """True when every rank holds bitwise the same parameters and buffers (per-tensor float64
    sums gathered from all ranks; a cheap end-of-run check that DDP kept them in step)."""
    if world_size() == 1:
        return True
    sums = [t.detach().double().sum() for m in modules for t in (*m.parameters(), *m.buffers())]
    mine = torch.stack(sums).to(device) if sums else torch.zeros(1, device=device, dtype=float)
    gathered = [torch.empty_like(mine) for _ in range(world_size())]
    dist.all_gather(gathered, mine)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the global batch, for CPU (gloo) jobs.

    ``torch.nn.SyncBatchNorm`` runs only on GPUs, so on CPU the per-channel sums and counts
    go through ``torch.distributed.nn.functional.all_reduce`` (PyTorch's autograd-aware
    collective: its backward all-reduces the gradient, which is what the global statistics'
    gradient needs). Eval mode and a single process behave as plain BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 3:
            raise ValueError(f"expected a (N, C, *spatial) input, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dtype, x = x.dtype, x.float()  # statistics in fp32 (bf16 autocast gives bf16 inputs)
        dims = [0, *range(2, x.dim())]
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        with warnings.catch_warnings():  # deprecated for a private API; still the autograd one
            warnings.simplefilter("ignore", FutureWarning)
            stats = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        c = x.shape[1]
        n = stats[2 * c]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp_min(1.0), m)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(dtype)


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers over the global batch when the world is larger than one:
    ``torch.nn.SyncBatchNorm`` on CUDA, :class:`GlobalBatchNorm` on CPU. Parameters and
    buffers are kept (same objects), so optimisers built before still hold them."""
    if world_size() == 1:
        return module
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and type(child) is not (
            GlobalBatchNorm
        ):
            new = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine,
                child.track_running_stats,
            )  # fmt: skip
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            sync_batchnorm(child, device)
    return module
