"""Where a run computes: the device of each process (the app's rule, without its CPU fallback),
DistributedDataParallel under ``torchrun`` (gloo on CPU, nccl on CUDA; only rank 0 validates and
writes), torch threads, mixed precision, and the machine written into the card.
"""
from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


def pick_device(name: str, local_rank: int) -> str:
    """The device of this process by the app's rule (model.predictor.choose_device), except that an
    unusable CUDA that was asked for stops the run instead of falling back to the CPU: a run sized
    for a GPU must not quietly take days."""
    from model.predictor import DeviceUnavailable, choose_device

    try:
        return choose_device(name, fallback=False, index=local_rank)[0]
    except (ValueError, DeviceUnavailable) as e:
        raise SystemExit(f"--device {name}: {e}") from None


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: one process, or one rank of a torchrun DDP group."""

    world: int
    rank: int
    local_rank: int
    device: str
    threads: int

    @property
    def ddp(self) -> bool:
        return self.world > 1

    @property
    def main_rank(self) -> bool:
        return self.rank == 0

    @property
    def dev_type(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"


def start_processes(device: str, threads: int | None) -> Processes:
    """Join the DDP group when torchrun started us (WORLD_SIZE > 1), pick the device, set threads."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device, local_rank)
    if world > 1:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    if threads:
        torch.set_num_threads(threads)
    return Processes(world, rank, local_rank, device, torch.get_num_threads())


def wrap_ddp(net: torch.nn.Module, procs: Processes) -> torch.nn.Module:
    """The module the training steps call: ``net`` itself, or its DDP wrapper."""
    if not procs.ddp:
        return net
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(net, device_ids=[torch.device(procs.device).index] if procs.dev_type == "cuda" else None,
               find_unused_parameters=True)


def any_rank(procs: Processes, flag: bool) -> bool:
    """True on every rank when it is true on any (a stop request reaches all of them)."""
    if not procs.ddp:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=procs.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def rank0s(procs: Processes, flag: bool) -> bool:
    """Rank 0's value of ``flag`` on every rank (only rank 0 validates, so only it knows)."""
    if not procs.ddp:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=procs.device)
    dist.broadcast(t, 0)
    return bool(t.item() > 0)


def rng_states(procs: Processes) -> list[torch.Tensor]:
    """Every rank's torch RNG state, in rank order (a checkpoint restores each rank's own)."""
    if not procs.ddp:
        return [torch.get_rng_state()]
    gathered: list[Any] = [None] * procs.world
    dist.all_gather_object(gathered, torch.get_rng_state())
    return gathered


def stop_processes(procs: Processes) -> None:
    if procs.ddp:
        dist.barrier()
        dist.destroy_process_group()


@dataclass
class Precision:
    """Mixed precision of a run: ``amp`` ("off", "bf16", "fp16"), the autocast context to run the
    network in, and the gradient scaler (enabled for fp16 on CUDA only)."""

    amp: str
    ctx: Callable[[], contextlib.AbstractContextManager]
    scaler: torch.amp.GradScaler


def choose_precision(requested: str, procs: Processes) -> Precision:
    """--amp: auto is fp16 on CUDA, bf16 on a CPU that computes it natively, else off."""
    amp = requested
    if amp == "auto":
        amp = "fp16" if procs.dev_type == "cuda" else ("bf16" if cpu_has_native_bf16() else "off")
    if amp == "off":
        ctx: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    else:
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        if procs.dev_type == "cpu" and amp == "fp16":
            raise SystemExit("--amp fp16 is CUDA only; use bf16 on CPU")

        def ctx() -> contextlib.AbstractContextManager:
            return torch.autocast(procs.dev_type, dtype=dtype)

    return Precision(amp, ctx, torch.amp.GradScaler("cuda", enabled=(amp == "fp16" and procs.dev_type == "cuda")))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX-512 BF16; Linux /proc/cpuinfo flags).

    Why: bf16 autocast is ~2x faster than fp32 where the CPU has it and ~10x slower where it is
    emulated (measured: AMD EPYC with AVX2 only, one training step at 256 px 55 s in bf16 vs 5 s
    in fp32), so "auto" must not pick it blindly. Unknown (other OSes): False, fp32 is safe."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"amx_bf16", "avx512_bf16"})
    return False


def machine_info(threads: int, device: str) -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info
