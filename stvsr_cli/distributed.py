"""Running under ``torchrun``: which process this is, its device, and the process group.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; outside it (or with one process)
``Ranks.from_env()`` is ``None`` and nothing here is used. Each process takes ``cuda:LOCAL_RANK``
where CUDA is available (backend NCCL), else the CPU (backend gloo). Collectives wait at most
``TIMEOUT``: a process that never arrives gives an error, not a hang (and ``torchrun`` stops the
others when one exits with an error).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Ranks:
    world: int
    rank: int
    local_rank: int

    @classmethod
    def from_env(cls) -> Ranks | None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        return cls(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def main(self) -> bool:
        """Rank 0: the one that reports, and writes what is shared."""
        return self.rank == 0

    def device(self, asked: str = "auto") -> torch.device:
        """This process's device: its own GPU where there are GPUs (``auto`` or ``cuda``), else the CPU."""
        if asked in ("auto", "cuda") and torch.cuda.is_available():
            device = torch.device("cuda", self.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(device)
            return device
        return torch.device("cpu") if asked == "auto" else torch.device(asked)


@contextmanager
def process_group(device: torch.device):
    """The default process group for the block (NCCL on CUDA, gloo elsewhere)."""
    import torch.distributed as dist

    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def gather(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process."""
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
