"""Compute device choice (`auto | cpu | cuda[:N]`) and the determinism switches for training.

One code path runs on both devices: the device string only decides where the tensors live.
"""

from __future__ import annotations

import logging
import os
import random
import re

import numpy as np

from dosewise.data_schemas import DeviceUnavailable

_DEVICE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def quiet_d3rlpy() -> None:
    """Import d3rlpy without its gym banner and with its structlog output at ERROR."""
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import d3rlpy  # noqa: F401
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def resolve_device(spec: str) -> str:
    """Turn `auto`, `cpu` or `cuda[:N]` into d3rlpy's device string (`cpu:0`, `cuda:N`).

    Raises `DeviceUnavailable` (exit 2) when CUDA is asked for and this machine has none.
    """
    import torch

    match = _DEVICE.match(spec.strip().lower())
    if match is None:
        raise DeviceUnavailable(
            f"`--device {spec}` is not a device name.", "Use auto, cpu, cuda or cuda:N."
        )
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu:0"
    if kind == "cpu":
        return "cpu:0"
    if not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"`--device {spec}` was asked for, but this machine has no usable CUDA device "
            f"(torch {torch.__version__}).",
            "Use --device cpu (or auto), or run on a machine with an NVIDIA GPU and a CUDA build of torch.",
        )
    n = torch.cuda.device_count()
    number = int(index or 0)
    if number >= n:
        raise DeviceUnavailable(
            f"`--device {spec}` was asked for, but only {n} CUDA device(s) exist.",
            f"Use cuda:0 .. cuda:{n - 1}.",
        )
    return f"cuda:{number}"


def seed_everything(seed: int, device: str, threads: int | None = None) -> None:
    """Seed python, numpy and torch, make CPU kernels deterministic, optionally cap CPU threads.

    On CUDA, cuDNN is set deterministic (as `d3rlpy.seed` does) but bitwise-equal runs are only
    promised on the CPU: some CUDA kernels (scatter/index_add in backward) have no deterministic
    variant without a large slowdown.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    if device.startswith("cpu"):
        torch.use_deterministic_algorithms(True)
        # Filling every new tensor with NaN (the default under deterministic mode) costs up to 4x
        # per step in d3rlpy's numpy->torch path and adds nothing on the CPU.
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    else:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(False)
