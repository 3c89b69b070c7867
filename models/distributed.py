"""Data-parallel training on torch DDP: `dosewise train --ddp N`.

The parent process checks the request (N against the devices present), then starts N copies of the
same command through `torchrun` (`torch.distributed.run --standalone`). Each copy sees torchrun's
`RANK`/`WORLD_SIZE`/`LOCAL_RANK`, joins the process group (gloo on the CPU, nccl on CUDA) and builds
its d3rlpy algorithm with `enable_ddp=True`, so d3rlpy wraps every trained network in
`DistributedDataParallel`: gradients are averaged across ranks at each step and the weights stay the
same on every rank. The vectorised sampler is sharded: rank r draws `batch_size / N` transitions per
step from its own 1/N of the transitions, so one step still sees `batch_size` transitions in all.
Rank 0 alone saves the policy, writes the manifest and logs to MLflow.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from dosewise.data_schemas import BadInputError, DeviceUnavailable

from .datasets import TransitionArrays


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes outputs and logs."""
        return self.rank == 0


def under_torchrun() -> bool:
    """True inside a process started by torchrun (its environment variables are set)."""
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def check_ddp_request(n_processes: int, device: str) -> None:
    """Refuse `--ddp N` when N is below 2 or above the devices present (exit 2).

    On CUDA a device is a GPU; on the CPU a device is a core (each rank needs one to make progress).
    """
    import torch

    if n_processes < 2:
        raise BadInputError(f"`--ddp` must be 2 or more processes. Got {n_processes}.",
                            "Drop --ddp to train in one process.")
    if device.startswith("cuda"):
        available, kind = torch.cuda.device_count(), "CUDA device(s)"
    else:
        available, kind = os.cpu_count() or 1, "CPU core(s)"
    if n_processes > available:
        raise DeviceUnavailable(
            f"`--ddp` must be at most the {available} {kind} present (device {device}). Got {n_processes}.",
            f"Use --ddp {available} or fewer, or run on a machine with more devices.",
        )


def check_batch_split(batch_size: int, world_size: int) -> int:
    """The per-rank batch: `batch_size` split evenly over the ranks (exit 2 if it does not divide)."""
    if batch_size % world_size:
        raise BadInputError(
            f"`batch_size` must be divisible by the --ddp process count {world_size}. Got {batch_size}.",
            f"Use --set batch_size={batch_size - batch_size % world_size or world_size}.",
        )
    return batch_size // world_size


def launch(n_processes: int, argv: list[str]) -> int:
    """Run `dosewise ARGV` in `n_processes` processes through torchrun; its exit status."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
               f"--nproc-per-node={n_processes}", "-m", "dosewise.app.cli", *argv]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default; one BLAS thread per rank
    return subprocess.run(command, env=env, check=False).returncode


def init_distributed(device: str) -> tuple[DistributedContext, str]:
    """Join the torchrun process group; the context and this rank's device string."""
    import torch.distributed as dist
    from d3rlpy.distributed import init_process_group

    local_rank = int(os.environ["LOCAL_RANK"])
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        init_process_group(backend)
    context = DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)
    return context, device


def shard_transitions(arrays: TransitionArrays, context: DistributedContext) -> TransitionArrays:
    """This rank's 1/N of the transitions (every N-th one, starting at its rank)."""
    take = slice(context.rank, None, context.world_size)
    return TransitionArrays(
        observations=arrays.observations[take], actions=arrays.actions[take], rewards=arrays.rewards[take],
        next_observations=arrays.next_observations[take], terminals=arrays.terminals[take],
    )


def weight_digest(algo: Any) -> str:
    """SHA-256 of every network's weights in `algo` (DDP wrappers unwrapped), in a fixed order."""
    import torch
    from d3rlpy.torch_utility import unwrap_ddp_model

    digest = hashlib.sha256()
    for name, module in sorted(vars(algo.impl.modules).items()):
        if isinstance(module, torch.nn.Module):
            for key, tensor in sorted(unwrap_ddp_model(module).state_dict().items()):
                digest.update(f"{name}.{key}".encode())
                digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
    return digest.hexdigest()


def gather_digests(algo: Any, context: DistributedContext) -> list[str]:
    """Every rank's `weight_digest`, in rank order (a collective: all ranks must call it)."""
    import torch.distributed as dist

    digests: list[Any] = [None] * context.world_size
    dist.all_gather_object(digests, weight_digest(algo))
    return [str(d) for d in digests]


def finish(context: DistributedContext | None) -> None:
    """Leave the process group (after the last collective)."""
    if context is None:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


__all__ = [
    "DistributedContext", "check_batch_split", "check_ddp_request", "finish", "gather_digests",
    "init_distributed", "launch", "shard_transitions", "under_torchrun", "weight_digest",
]
