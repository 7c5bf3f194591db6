"""The training run: set everything up (network, data, optimizer, precision, resume), then the
epoch loop (steps, progress lines, validation, checkpoint, stopping). What happens after the
loop, the released model, is training.release.

A run may stop at any time: SIGTERM/SIGINT or the time budget finish the current step, then the
epoch is validated and checkpointed and the model released; ``--stop-after`` and early stopping
end at an epoch's end. Augmentation randomness is a function of (seed, epoch, index) and the
sample order of (seed, epoch), so a resumed run continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import math
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from model import losses  # losses.adf_loss is looked up per step (tests spy on it)
from training.checkpoint import RunState, load_checkpoint, save_checkpoint
from training.click_sim import simulated_clicks
from training.hardware import (
    Precision,
    Processes,
    any_rank,
    choose_precision,
    rank0s,
    rng_states,
    start_processes,
    stop_processes,
    wrap_ddp,
)
from training.run_log import LOG_NAME, JsonLog, rounded
from training.schedule import EpochSampler, lr_factor, parse_size_schedule, run_progress, size_at
from training.train_args import check_args, inherited_operating_point, interactive_share
from training.train_data import build_datasets
from training.validation import set_train_mode, validate, without_cases

if TYPE_CHECKING:
    from model.config import ADFConfig

_DEBUG = bool(os.environ.get("ADF_TRAIN_DEBUG"))


@dataclass
class Run:
    """Everything a run set up; the epoch loop and the release read it, ``state`` is what moves."""

    args: argparse.Namespace
    procs: Processes
    cfg: ADFConfig
    net: torch.nn.Module
    model: torch.nn.Module         # net, or its DDP wrapper (what the training step calls)
    parent: dict | None            # the card's "parent" (fine-tuning), else None
    parent_state: dict | None      # the parent's weights, for the release's blend
    parent_interactive: bool
    freeze_norm: bool
    wli_drop: float
    interactive: float
    tta_flips: list[str]
    operating_point: dict          # inference_input_size / decision_threshold inherited from the parent
    model_id: str
    out: Path
    ckdir: Path
    log: JsonLog
    train_ds: Any
    val_ds: Any | None
    kind: str                      # "public" | "export" | "workspace"
    ws_path: Path | None           # the workspace the model is registered in
    schedule: list[tuple[int, float]]
    val_size: int
    sampler: EpochSampler
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    opt: torch.optim.Optimizer
    prec: Precision
    this_command: str
    budget_s: float | None
    state: RunState = field(default_factory=RunState)
    parent_val: dict = field(default_factory=dict)
    last_val: dict = field(default_factory=dict)
    teacher: torch.nn.Module | None = None  # the frozen parent (--distill), else None
    first_net: torch.nn.Module | None = None  # --first-masks-from: the fixed automatic network
    first_masks_from: dict | None = None  # its id, sha256 and path (the card's interactive field)
    released_blend: float | None = None     # the parent blend the release used (--parent-blend auto chooses it)
    stopped_by: str | None = None
    stop_requested: bool = False   # set by SIGTERM/SIGINT
    ema_dt: float | None = None    # smoothed step time (caps what a stall adds to the budget)
    t_start: float = field(default_factory=time.time)

    def progress(self) -> float:
        return run_progress(self.state.step, self.total_steps, self.state.elapsed, self.budget_s, self.args.epochs)

    def validate(self) -> dict:
        return validate(self.net, self.val_ds, self.procs.device, self.prec.ctx, max(1, self.args.batch_size),
                        self.args.channels_last, self.freeze_norm)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """The whole run of ``python -m training train``; returns the exit code (0)."""
    from training.release import release

    r = setup(args, argv)
    train_epochs(r)
    if r.procs.main_rank:
        release(r)
    stop_processes(r.procs)
    return 0


# ----------------------------------------------------------------------------- setup
def setup(args: argparse.Namespace, argv: list[str]) -> Run:
    """Check the options, join the processes, build the network, the data, the optimizer and the
    precision, measure the parent (fine-tuning), restore a checkpoint (--resume); logs ``start``."""
    from model.adf import count_params

    tta_flips = check_args(args)
    procs = start_processes(args.device, args.threads)
    net, cfg, parent, pcard = build_network(args)
    parent_state = {k: v.detach().clone() for k, v in net.state_dict().items()} if args.init else None
    teacher = frozen_copy(net) if getattr(args, "distill", 0.0) > 0 else None
    freeze_norm = args.norm_stats == "freeze" or (args.norm_stats == "auto" and bool(args.init))
    set_train_mode(net, freeze_norm)
    net.to(procs.device)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if teacher is not None:
        teacher.to(procs.device)
    first_net, first_masks_from = None, None
    if getattr(args, "first_masks_from", None):
        from model.card import card_id, load_model

        fnet, fcard = load_model(args.first_masks_from, map_location="cpu")
        first_net = frozen(fnet).to(procs.device)
        first_masks_from = {"id": card_id(fcard), "sha256": fcard.get("sha256"), "path": str(args.first_masks_from)}
        if args.channels_last:
            first_net = first_net.to(memory_format=torch.channels_last)

    model_id = args.model_id or f"adf-{cfg.preset}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out = Path(args.out) if args.out else Path("runs") / model_id
    ckdir = out / "checkpoints"
    if procs.main_rank:
        ckdir.mkdir(parents=True, exist_ok=True)
    parent_interactive = bool(args.init) and bool(pcard.get("interactive"))
    tta_flips, operating_point = inherited_operating_point(tta_flips, pcard if args.init else None)
    interactive = interactive_share(args, cfg.click_chans, parent_interactive)

    schedule = parse_size_schedule(args.size_schedule, args.size or cfg.input_size)
    val_size = args.val_size or cfg.input_size
    train_ds, val_ds, kind, ws_path = build_datasets(args, cfg, schedule[0][0], val_size)
    if len(train_ds) == 0:
        raise SystemExit("no training cases")
    limit = args.steps_per_epoch * args.batch_size if args.steps_per_epoch else None
    sampler = EpochSampler(len(train_ds), args.seed, procs.rank, procs.world, limit=limit)
    steps_per_epoch = math.ceil(len(sampler) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs

    r = Run(args=args, procs=procs, cfg=cfg, net=net, model=net, parent=parent, parent_state=parent_state,
            parent_interactive=parent_interactive, freeze_norm=freeze_norm,
            wli_drop=args.wli_dropout if cfg.nbi_skips else 0.0,  # older networks have no NBI-only path
            interactive=interactive, tta_flips=tta_flips, operating_point=operating_point, model_id=model_id, out=out, ckdir=ckdir,
            log=JsonLog(out / LOG_NAME, procs.main_rank), train_ds=train_ds, val_ds=val_ds, kind=kind,
            ws_path=ws_path, schedule=schedule, val_size=val_size, sampler=sampler,
            steps_per_epoch=steps_per_epoch, total_steps=total_steps,
            warmup_steps=max(1, int(args.warmup * total_steps)), opt=make_optimizer(net, args),
            prec=choose_precision(args.amp, procs), this_command="python -m training train " + shlex.join(argv),
            budget_s=args.max_minutes * 60.0 if args.max_minutes else None, teacher=teacher,
            first_net=first_net, first_masks_from=first_masks_from)
    r.state.commands = [r.this_command]
    if procs.main_rank and parent_state is not None and val_ds is not None:
        # the parent on the same held-out cases (the figure a new version has to beat), before any
        # resume loads later weights
        r.parent_val = r.validate()
    if args.resume:
        r.state = load_checkpoint(ckdir, net, r.opt, r.prec.scaler, procs.rank, r.this_command)
        if r.state.epoch >= args.epochs and not args.max_minutes:
            raise SystemExit(f"--resume: the run already finished {r.state.epoch} of {args.epochs} epochs")
        r.log({"event": "resume", "epoch": r.state.epoch, "step": r.state.step,
               "elapsed_s": round(r.state.elapsed, 1)})
    else:
        torch.manual_seed(args.seed * 1000 + procs.rank)
    r.model = wrap_ddp(net, procs)
    _stop_on_signals(r)
    r.log({"event": "start", "model_id": model_id, "out": str(out), "data": kind, "n_train": len(train_ds),
           "n_val": len(val_ds) if val_ds is not None else 0, "params": count_params(net),
           "device": procs.device, "amp": r.prec.amp, "threads": procs.threads, "world": procs.world,
           "epochs": args.epochs, "steps_per_epoch": steps_per_epoch, "size_schedule": schedule})
    if r.parent_val:
        r.log({"event": "parent_val", **rounded(without_cases(r.parent_val))})
    return r


def build_network(args: argparse.Namespace) -> tuple[torch.nn.Module, Any, dict | None, dict]:
    """(network, config, the card's "parent" field, the parent's card): the parent's network with
    --init (upgraded to the current one with --upgrade-arch), else a fresh one of --preset."""
    from model.adf import ADFNet, upgrade_state
    from model.card import load_model
    from model.config import ADFConfig, get_preset

    if not args.init:
        cfg = get_preset(args.preset)
        if args.input_size:
            cfg = dataclasses.replace(cfg, input_size=args.input_size)
        torch.manual_seed(args.seed)
        return ADFNet(cfg), cfg, None, {}
    net, pcard = load_model(args.init, map_location="cpu")
    cfg = ADFConfig.from_dict(pcard["config"])
    parent = {"id": pcard.get("id"), "sha256": pcard.get("sha256"), "path": str(args.init)}
    if args.upgrade_arch:
        new_cfg = dataclasses.replace(cfg, nbi_skips=True, click_chans=3)
        if new_cfg == cfg:
            raise SystemExit("--upgrade-arch: the parent already has the current network")
        old_state = net.state_dict()
        cfg = new_cfg
        torch.manual_seed(args.seed)
        net = ADFNet(cfg)
        parent["upgraded_from_config"] = {"nbi_skips": False, "click_chans": 0}
        parent["new_tensors"] = upgrade_state(net, old_state)
    return net, cfg, parent, pcard


def make_optimizer(net: torch.nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and the modality stand-ins; --freeze-encoders trains
    only the heads, fusion and decoder."""
    decay, no_decay = [], []
    for n, p in net.named_parameters():
        if args.freeze_encoders and n.startswith(("enc_w.", "enc_n.")):
            p.requires_grad_(False)
            continue
        (no_decay if p.ndim <= 1 or n.endswith("standin") else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.999),
    )


def _stop_on_signals(r: Run) -> None:
    """SIGTERM / SIGINT: finish the step, checkpoint, release (train.main restores the handlers)."""
    def on_signal(signum, frame) -> None:
        r.stop_requested = True

    with contextlib.suppress(ValueError):  # ValueError: not the main thread (tests)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)


# ----------------------------------------------------------------------------- the loop
def train_epochs(r: Run) -> None:
    """Epochs until the planned number, a stop, or early stopping; ``r.state.epoch`` ends as the
    number of epochs done and ``r.stopped_by`` says why it stopped early (None: it did not)."""
    args, st = r.args, r.state
    epochs_this_run = 0
    r.t_start = time.time()
    while st.epoch < args.epochs:
        prog = r.progress()
        if r.budget_s and st.elapsed >= r.budget_s:
            r.stopped_by = "time budget"
            break
        rec = train_epoch(r, size_at(r.schedule, prog))
        end_epoch(r, rec)
        st.epoch += 1
        epochs_this_run += 1
        early = rank0s(r.procs, args.patience > 0 and st.bad_vals >= args.patience)
        if early and r.stopped_by is None:
            r.stopped_by = "early stopping"
        if r.stopped_by is not None:
            break
        if args.stop_after is not None and epochs_this_run >= args.stop_after:
            r.stopped_by = "stop-after"
            break


def train_epoch(r: Run, size: int) -> dict:
    """One epoch's steps at image size ``size`` (fewer when a stop comes); returns its log record."""
    args, st = r.args, r.state
    r.train_ds.size = size
    r.train_ds.set_epoch(st.epoch)
    r.sampler.set_epoch(st.epoch)
    loader = DataLoader(r.train_ds, batch_size=args.batch_size, sampler=r.sampler, num_workers=args.workers,
                        drop_last=False, persistent_workers=False)
    sums: dict[str, float] = {}
    n_batches = n_img = 0
    t_ep = time.time()
    bar = None
    if r.procs.main_rank and not args.no_tqdm:
        from tqdm import tqdm

        bar = tqdm(total=len(loader), desc=f"epoch {st.epoch + 1}/{args.epochs} {size}px", file=sys.stderr,
                   dynamic_ncols=True, mininterval=2.0)
    t_prev = t_progress = time.time()
    for batch in loader:
        t0 = time.time()
        lr = args.lr * lr_factor(r.progress(), st.step, r.warmup_steps, args.warmup)
        parts = train_step(r, batch, lr)
        st.step += 1
        n_batches += 1
        n_img += batch["wli"].shape[0] * r.procs.world
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        dt = time.time() - t_prev  # the batch's loading and augmentation are part of the wall time asked for
        if _DEBUG:
            print(f"step {st.step} load {t0 - t_prev:.2f}s step {time.time() - t0:.2f}s", file=sys.stderr, flush=True)
        # a paused process (SIGSTOP) or a long stall must not eat the time budget
        r.ema_dt = dt if r.ema_dt is None else 0.9 * r.ema_dt + 0.1 * min(dt, 5 * r.ema_dt)
        st.elapsed += min(dt, max(5 * r.ema_dt, 1.0))
        if bar is not None:
            bar.set_postfix(loss=f"{parts['total']:.3f}", lr=f"{lr:.2e}", refresh=False)
            bar.update(1)
        if r.procs.main_rank and args.progress_every > 0 and time.time() - t_progress >= args.progress_every:
            t_progress = time.time()
            r.log({"event": "step", "epoch": st.epoch + 1, "epochs": args.epochs, "batch": n_batches,
                   "batches": len(loader), "step": st.step, "loss": round(float(parts["total"]), 5),
                   "lr": lr}, to_file=False)  # stdout only: the dialog's progress bar
        if any_rank(r.procs, r.stop_requested or (r.budget_s is not None and st.elapsed >= r.budget_s)):
            r.stopped_by = "signal" if r.stop_requested else "time budget"
            break
        t_prev = time.time()
    if bar is not None:
        bar.close()
    ep_s = time.time() - t_ep
    st.images_seen += n_img
    rec = {"event": "epoch", "epoch": st.epoch + 1, "epochs": args.epochs, "size": size,
           "lr": r.opt.param_groups[0]["lr"], "progress": round(r.progress(), 4), "images": n_img,
           "images_per_s": round(n_img / max(ep_s, 1e-9), 2), "seconds": round(ep_s, 1),
           "complete": r.stopped_by is None}
    rec.update({f"loss_{k}": v / max(1, n_batches) for k, v in sums.items()})
    return rec


def train_step(r: Run, batch: dict, lr: float) -> dict[str, float]:
    """One optimizer step at learning rate ``lr``: modality dropout, simulated clicks, the ADF
    loss, clipped gradients; returns the loss parts."""
    args, dev, st = r.args, r.procs.device, r.state
    for g in r.opt.param_groups:
        g["lr"] = lr
    wli = batch["wli"].to(dev, non_blocking=True)
    nbi = batch["nbi"].to(dev, non_blocking=True)
    target = batch["mask"].to(dev, non_blocking=True)
    present = batch["nbi_present"].to(dev)
    wli_present = None
    if args.modality_dropout > 0 or r.wli_drop > 0:
        # one draw per sample: drop NBI, drop WLI (only where NBI is there), or keep both
        u = torch.rand(present.shape[0]).to(dev)
        drop_w = (u >= args.modality_dropout) & (u < args.modality_dropout + r.wli_drop) & present
        present = present & (u >= args.modality_dropout)
        wli_present = ~drop_w if bool(drop_w.any()) else None
    if args.channels_last:
        wli = wli.contiguous(memory_format=torch.channels_last)
        nbi = nbi.contiguous(memory_format=torch.channels_last)
    clicks = None
    if r.interactive > 0:
        with r.prec.ctx():
            clicks = simulated_clicks(r.net, wli, nbi, present, wli_present, target, r.interactive,
                                      np.random.default_rng([args.seed, st.step, 11]), rounds=getattr(args, "click_rounds", 1),
                                      first_net=r.first_net, wrong_share=getattr(args, "wrong_masks", 0.0))
        if clicks is not None and r.freeze_norm:
            set_train_mode(r.net, r.freeze_norm)
    with r.prec.ctx():
        out = r.model(wli, nbi, present, wli_present, clicks)
        loss, parts = losses.adf_loss(out, target, r.progress(), aux=not args.no_aux, net=r.net,
                                     fn_weight=getattr(args, "fn_weight", 0.5))
        if r.teacher is not None:
            loss = loss + args.distill * distill_term(r, out.logits, clicks, wli, nbi, present, wli_present, parts)
    r.opt.zero_grad(set_to_none=True)
    scaler = r.prec.scaler
    if scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.unscale_(r.opt)
        torch.nn.utils.clip_grad_norm_(r.net.parameters(), 1.0)
        scaler.step(r.opt)
        scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(r.net.parameters(), 1.0)
        r.opt.step()
    return parts


def frozen(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` made a network no step changes (the --first-masks-from network): eval mode, no
    gradients."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def frozen_copy(net: torch.nn.Module) -> torch.nn.Module:
    """The parent as the distillation teacher: a frozen copy of the network being trained."""
    import copy

    return frozen(copy.deepcopy(net))


def distill_term(r: Run, logits: torch.Tensor, clicks: torch.Tensor | None, wli: torch.Tensor, nbi: torch.Tensor,
                 present: torch.Tensor, wli_present: torch.Tensor | None, parts: dict) -> torch.Tensor:
    """The --distill loss on the click-free samples (the automatic mode): the student's logits
    against the frozen parent's on the same inputs (same dropped streams); adds "distill" to
    ``parts``. Zero when every sample of the batch has clicks."""
    free = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device) if clicks is None \
        else clicks.flatten(1).abs().amax(1) == 0
    if not bool(free.any()):
        return logits.sum() * 0.0
    with torch.no_grad():
        wp = None if wli_present is None else wli_present[free]
        t = r.teacher(wli[free], nbi[free], present[free], wp).logits
    d = losses.distill_loss(logits[free], t)
    parts["distill"] = float(d.detach())
    return d


def end_epoch(r: Run, rec: dict) -> None:
    """Validate (rank 0, every --val-every epochs and at the end), checkpoint, log the epoch."""
    args, st = r.args, r.state
    do_val = r.val_ds is not None and ((st.epoch + 1) % max(1, args.val_every) == 0 or r.stopped_by is not None
                                       or st.epoch + 1 == args.epochs)
    improved = False
    if r.procs.main_rank and do_val:
        tv = time.time()
        r.last_val = r.validate()
        val_s = time.time() - tv
        r.last_val["val_seconds"] = round(val_s, 1)
        st.elapsed += val_s  # the time budget covers validation too
        rec.update(without_cases(r.last_val))
        vd = r.last_val.get("val_dice")
        if vd is not None and vd > st.best:
            st.best, st.best_epoch, st.bad_vals, improved = vd, st.epoch + 1, 0, True
        else:
            st.bad_vals += 1
    states = rng_states(r.procs)  # a collective: every rank
    if r.procs.main_rank:
        save_checkpoint(r.ckdir, r.net, r.opt, r.prec.scaler, st, states, best=improved and args.select == "best",
                        model_id=r.model_id, config=r.cfg.to_dict(), args=args)
        rec["best_val_dice"] = st.best if st.best >= 0 else None
        rec["best_epoch"] = st.best_epoch if st.best_epoch >= 0 else None
        r.log(rounded(rec))
