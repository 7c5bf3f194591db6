"""Checkpoints: how a stopped run continues (``--resume``) exactly where it was.

Every epoch rank 0 writes ``<out>/checkpoints/last.safetensors`` (the weights) and
``last_state.pt`` (optimizer, scaler, counters, every rank's RNG state, the run's args and
commands: plain tensors, numbers and JSON strings, so it loads with ``weights_only=True``);
``best.safetensors`` too when ``--select best`` and the epoch improved. Each file is written
atomically (model.atomic): a run killed mid-write leaves the previous checkpoint and no temp
file. The names and keys are an on-disk format: a run started by an older trainer resumes here.
"""
from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from model.atomic import write_bytes_atomic

LAST_WEIGHTS = "last.safetensors"
LAST_STATE = "last_state.pt"
BEST_WEIGHTS = "best.safetensors"


@dataclass
class RunState:
    """How far a run got: saved with every checkpoint, restored by --resume."""

    epoch: int = 0            # the epoch being trained (0-based); after the loop, the epochs done
    step: int = 0             # optimizer steps so far
    elapsed: float = 0.0      # training + validation seconds counted against --max-minutes (stalls capped)
    best: float = -1.0        # best validation Dice so far (-1: none yet)
    best_epoch: int = -1      # its epoch, 1-based (-1: none yet)
    bad_vals: int = 0         # validations without gain since the best (--patience)
    images_seen: int = 0
    commands: list[str] = field(default_factory=list)  # every invocation of the run, the first one first


def save_weights(net: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save

    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    write_bytes_atomic(path, save(state))


def load_weights(net: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load

    net.load_state_dict(load(path.read_bytes()), strict=True)


def save_state(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomic(path, buf.getvalue())


def save_checkpoint(ckdir: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    run: RunState, rng_states: list[torch.Tensor], *, best: bool, model_id: str, config: dict,
                    args: argparse.Namespace) -> None:
    """The checkpoint of the epoch ``run.epoch`` just finished (``best``: also best.safetensors)."""
    save_weights(net, ckdir / LAST_WEIGHTS)
    if best:
        save_weights(net, ckdir / BEST_WEIGHTS)
    state = {
        "optimizer": opt.state_dict(),
        "epoch": run.epoch,
        "step": run.step,
        "elapsed": run.elapsed,
        "best": run.best,
        "best_epoch": run.best_epoch,
        "bad_vals": run.bad_vals,
        "images_seen": run.images_seen,
        "model_id": model_id,
        "config": json.dumps(config),
        "args": json.dumps(vars(args)),
        "commands": json.dumps(run.commands),
    }
    for r, s in enumerate(rng_states):
        state[f"rng_rank{r}"] = s
    if scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    save_state(ckdir / LAST_STATE, state)


def load_checkpoint(ckdir: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    rank: int, this_command: str) -> RunState:
    """Restore the last checkpoint into ``net``, ``opt``, ``scaler`` and this rank's RNG; returns
    where the run continues (the epoch after the one checkpointed). SystemExit when there is none."""
    last_w, last_s = ckdir / LAST_WEIGHTS, ckdir / LAST_STATE
    if not (last_w.exists() and last_s.exists()):
        raise SystemExit(f"--resume: no checkpoint in {ckdir}")
    load_weights(net, last_w)
    st = torch.load(last_s, map_location="cpu", weights_only=True)
    opt.load_state_dict(st["optimizer"])
    if "scaler" in st and scaler.is_enabled():
        scaler.load_state_dict(st["scaler"])
    run = RunState(epoch=int(st["epoch"]) + 1, step=int(st["step"]), elapsed=float(st["elapsed"]),
                   best=float(st["best"]), best_epoch=int(st["best_epoch"]), bad_vals=int(st["bad_vals"]),
                   images_seen=int(st.get("images_seen", 0)),
                   commands=[*json.loads(st.get("commands", "[]")), this_command])
    rng_key = f"rng_rank{rank}"
    if rng_key in st:
        torch.set_rng_state(st[rng_key])
    return run
