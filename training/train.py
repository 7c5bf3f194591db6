"""``python -m training train``: train or fine-tune the ADF network; checkpoints, log, model card.

Why it looks like this:
- The Train dialog runs this as a subprocess and reads stdout: every stdout line is one JSON
  object: ``start``, ``parent_val`` (fine-tuning: the parent's Dice on the same held-out cases),
  ``resume``, ``step`` (progress inside an epoch, every --progress-every
  seconds), ``epoch`` (losses, val Dice, lr, images/s, seconds), ``error``, and last
  ``{"event": "done", "model": <card .json>, "metrics": {...}}``. tqdm progress goes to stderr.
  All but the ``step`` lines also go to ``<out>/log.jsonl``.
- With ``--max-minutes`` the learning-rate schedule and the progressive image size follow
  max(share of steps done, share of the time budget used), so a time-boxed run still anneals.
- A run may be stopped at any time (SIGTERM/SIGINT, ``--max-minutes``, the end of a session):
  the weights, optimizer and RNG state are checkpointed every epoch
  (``<out>/checkpoints/last.safetensors`` + ``last_state.pt``, the latter plain tensors and
  dicts, loaded with ``weights_only=True``) and ``--resume`` continues the same run. The best
  epoch by validation Dice is kept as ``best.safetensors``; the exported model is the best one.
- Fine-tuning (``--init``) keeps the parent's BatchNorm statistics and releases the average of
  the parent's and the fine-tuned weights (``--parent-blend``): on a few dozen cases both lose
  far less of what the parent knew (docs/MODEL.md, "Fine-tuning from the bundled model").
- Augmentation randomness is a function of (seed, epoch, index) and the per-epoch order of
  (seed, epoch), so resuming gives the same images in the same order as an uninterrupted run.
- Runs unchanged under ``torchrun`` (DistributedDataParallel; gloo on CPU, nccl on CUDA); only
  rank 0 validates and writes.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import shlex
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from training.metrics import dice_score

LOG_NAME = "log.jsonl"
_DEBUG = bool(os.environ.get("ADF_TRAIN_DEBUG"))


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training train", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="public", help="'public', a workspace folder, or an exported dataset folder")
    p.add_argument("--shared-root", default=None, help="root of the public sets (default: ../shared/data)")
    p.add_argument("--statuses", default="corrected,approved", help="workspace case statuses to train on")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--input-size", type=int, default=None, help="override the preset's input size (px)")
    p.add_argument("--init", default=None, help="fine-tune from this model (.json card or stem)")
    p.add_argument("--out", default=None, help="run folder (default runs/<model-id>)")
    p.add_argument("--model-id", default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--max-minutes", type=float, default=None, help="time budget of the whole run (schedule follows it)")
    p.add_argument("--stop-after", type=int, default=None, help="stop this invocation after N epochs (resume later)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap the batches per epoch (smoke tests, benchmarks)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=float, default=0.03, help="warm-up share of the run (linear)")
    p.add_argument("--size", type=int, default=None, help="training image size (default: input size)")
    p.add_argument(
        "--size-schedule",
        default=None,
        help="progressive resizing, e.g. '128:0.6,192:0.85,256' = 128 px for the first 60%% of the run ...",
    )
    p.add_argument("--val-size", type=int, default=None, help="validation image size (default: input size)")
    p.add_argument("--val-every", type=int, default=1)
    p.add_argument("--val-fraction", type=float, default=0.2, help="workspace/export: share of cases held out")
    p.add_argument("--patience", type=int, default=0, help="early stop after N validations without gain (0: off)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-aux", action="store_true", help="segmentation loss only (no align/disentangle/DACL/MMD)")
    p.add_argument("--modality-dropout", type=float, default=0.25, help="share of samples whose NBI is dropped")
    p.add_argument("--wli-dropout", type=float, default=0.15,
                   help="share of samples (with NBI) whose WLI is dropped, so the NBI stream must segment alone "
                        "(needs a network with NBI skips; never both streams)")
    p.add_argument("--tumour-repeat", type=int, default=6, help="public: repeats of the vocalfolds tumour frames")
    p.add_argument("--no-negatives", action="store_true", help="public: leave out tumour-free vocalfolds frames")
    p.add_argument("--which", default="kvasir,vocalfolds", help="public: which sets")
    p.add_argument("--fold", default="a", choices=["a", "b", "all", "legacy"],
                   help="public: laryngeal recordings trained on (a: seq1, measured on seq2; b: the reverse; "
                        "all: both; legacy: releases 1-2's block split of seq1)")
    p.add_argument("--val-which", default="kvasir",
                   help="public: sets validated on during training (default kvasir: its val_choose half; "
                        "the laryngeal recording a fold is measured on stays unseen until evaluation)")
    p.add_argument("--kvasir-val", default="val_choose", choices=["val", "val_choose", "val_report"],
                   help="public: which half of Kvasir's validation split training validates on")
    p.add_argument("--aug", default="scope", choices=["basic", "scope"],
                   help="augmentation: basic (releases 1-2) or scope (+ another endoscope's colour, light, "
                        "blur, JPEG, resolution; wider zoom-out)")
    p.add_argument("--select", default="last", choices=["last", "best"],
                   help="weights released: the last epoch (default; the held-out cases then chose nothing) "
                        "or the best validation epoch (the validation figure is then optimistic)")
    p.add_argument("--upgrade-arch", action="store_true",
                   help="with --init: build the current network (NBI skips, click inputs) and start it from "
                        "the parent's weights, new paths at zero (releases 1-2 -> 3)")
    p.add_argument("--misregistration", type=float, default=0.01, help="public: residual registration error")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--amp", default="auto", choices=["auto", "off", "bf16", "fp16"],
                   help="mixed precision (auto: fp16 on CUDA; bf16 on a CPU with native bf16 (AMX/AVX-512 BF16), "
                        "else off: emulated bf16 is ~10x slower than fp32 on an AVX2-only CPU)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--no-tqdm", action="store_true")
    p.add_argument("--progress-every", type=float, default=10.0,
                   help="seconds between {'event': 'step'} progress lines on stdout (0: off)")
    p.add_argument("--register", action="store_true",
                   help="workspace: also make the new model active if it beats its parent on the held-out cases "
                        "(a version that does not is registered but stays inactive)")
    p.add_argument("--norm-stats", default="auto", choices=["auto", "update", "freeze"],
                   help="BatchNorm running statistics: update them, or freeze them (auto: freeze when "
                        "fine-tuning with --init)")
    p.add_argument("--freeze-encoders", action="store_true",
                   help="train only the disentangle heads, fusion and decoder (small fine-tuning sets)")
    p.add_argument("--parent-blend", type=float, default=None,
                   help="with --init: release parent + BLEND x (fine-tuned - parent), a weight-space "
                        "average (WiSE-FT); 1: the fine-tuned weights as they are (default 0.5 with --init)")
    p.add_argument("--interactive", type=float, default=None,
                   help="share of samples trained with simulated clicks (the interactive mode, issue 16); "
                        "default: 0.5 when fine-tuning a model that has the mode, else 0 (automatic only)")
    p.add_argument("--tta-flips", default="none,h",
                   help="test-time flip views written to the card for the predictor to average "
                        "(none,h,v,hv; training always flips, so these are views the model has seen)")
    return p


# ----------------------------------------------------------------------------- helpers
def _parse_size_schedule(text: str | None, default: int) -> list[tuple[int, float]]:
    """'128:0.6,256' -> [(128, 0.6), (256, 1.0)]."""
    if not text:
        return [(default, 1.0)]
    out = []
    for part in text.split(","):
        part = part.strip()
        if ":" in part:
            s, until = part.split(":")
            out.append((int(s), float(until)))
        else:
            out.append((int(part), 1.0))
    if out[-1][1] < 1.0:
        out.append((out[-1][0], 1.0))
    return out


def size_at(schedule: list[tuple[int, float]], progress: float) -> int:
    for s, until in schedule:
        if progress < until:
            return s
    return schedule[-1][0]


def lr_factor(progress: float, step: int, warmup_steps: int, warmup_share: float = 0.0) -> float:
    """Linear warm-up, then polynomial (power 0.9) decay to 1 % of the peak.

    ``progress`` is max(share of the planned steps, share of the time budget). The warm-up ends
    after ``warmup_steps`` steps or at ``warmup_share`` of that progress, whichever comes first:
    with a time budget far shorter than the planned epochs, counting planned steps alone would
    stretch the warm-up well past its share of the run."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    if warmup_share > 0:
        warm = max(warm, min(1.0, progress / warmup_share))
    poly = max(0.0, 1.0 - progress) ** 0.9
    return warm * max(poly, 0.01)


@torch.no_grad()
def blend_with_parent(net: torch.nn.Module, parent_state: dict[str, torch.Tensor], share: float) -> None:
    """Set every float weight to parent + share * (weight - parent), in place (WiSE-FT).

    Why: 80 optimizer steps on 30 cases end in weights that fit those cases and lose some of
    what the parent knew; halfway between the two keeps most of the gain on the new cases and
    little of the loss elsewhere (measured in docs/MODEL.md; Wortsman et al., CVPR 2022)."""
    for name, w in net.state_dict().items():
        if w.is_floating_point():
            w.copy_(parent_state[name].to(w.device, w.dtype).lerp(w, share))


def activation_verdict(metrics: dict) -> tuple[bool, str]:
    """(activate?, why) for a new workspace version, from its card metrics.

    A version is made active only when it beats its parent on the same held-out cases (or has
    no parent or no held-out cases to compare on): a clinic should not silently get a model
    that scores lower on its own cases. The Train dialog offers "Activate anyway"."""
    new, old = metrics.get("val_dice"), metrics.get("parent_val_dice")
    if old is None:
        return True, "no parent to compare with"
    if new is None:
        return True, "no held-out cases to compare on"
    if new > old:
        return True, f"held-out Dice {new:.3f} beats the parent's {old:.3f}"
    return False, f"held-out Dice {new:.3f} does not beat the parent's {old:.3f}: registered, not activated"


@torch.no_grad()
def simulated_clicks(net: torch.nn.Module, wli: torch.Tensor, nbi: torch.Tensor, present: torch.Tensor,
                     wli_present: torch.Tensor | None, target: torch.Tensor, share: float,
                     rng: np.random.Generator, max_clicks: int = 3) -> torch.Tensor | None:
    """Click maps (B,3,S,S) for a batch: a share of the samples get clicks, the rest zeros (the
    automatic mode keeps training).

    For a clicked sample the current mask is the network's own automatic prediction (or, one time
    in five, nothing: a clinician starting from scratch) and 1-3 clicks go into its largest error
    regions; half of the time one more round follows: the network redraws from those clicks and
    the next click goes into the largest error of that result (the iterative simulation of
    DeepEdit/RITM, one extra pass instead of one per click)."""
    from model.interactive import CLICK_RADIUS, click_maps, error_clicks, next_click

    b, _, s, _ = wli.shape
    chosen = np.nonzero(rng.random(b) < share)[0]
    if len(chosen) == 0:
        return None
    radius = max(2, round(CLICK_RADIUS * s / 256))
    was_training = net.training
    net.eval()
    auto = (net(wli, nbi, present, wli_present).logits[:, 0] > 0).cpu().numpy()
    gt = (target[:, 0] > 0.5).cpu().numpy()
    maps = np.zeros((b, s, s, 3), np.float32)
    clicks: dict[int, list] = {}
    prev: dict[int, np.ndarray] = {}
    for i in chosen:
        prev[i] = auto[i] if rng.random() >= 0.2 else np.zeros_like(auto[i])
        clicks[i] = error_clicks(prev[i], gt[i], int(rng.integers(1, max_clicks + 1)))
        maps[i] = click_maps(clicks[i], prev[i], (s, s), s, radius)
    again = [i for i in chosen if clicks[i] and rng.random() < 0.5]
    if again:
        idx = torch.as_tensor(again, device=wli.device)
        ck = torch.from_numpy(maps[again]).permute(0, 3, 1, 2).to(wli.device)
        wp = None if wli_present is None else wli_present[idx]
        redo = (net(wli[idx], nbi[idx], present[idx], wp, ck).logits[:, 0] > 0).cpu().numpy()
        for j, i in enumerate(again):
            c = next_click(redo[j], gt[i])
            if c is not None:
                clicks[i] = [*clicks[i], c]
            maps[i] = click_maps(clicks[i], redo[j], (s, s), s, radius)
    if was_training:
        net.train()
    return torch.from_numpy(maps).permute(0, 3, 1, 2).to(wli.device)


class EpochSampler(Sampler):
    """A permutation that depends only on (seed, epoch), sharded over DDP ranks (padded to even)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True,
                 limit: int | None = None) -> None:
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.limit = limit  # per-rank cap on samples per epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if self.shuffle:
            idx = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.n).tolist()
        else:
            idx = list(range(self.n))
        per = math.ceil(self.n / self.world)
        idx = idx + idx[: per * self.world - self.n]
        idx = idx[self.rank :: self.world]
        return idx[: self.limit] if self.limit else idx

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        n = math.ceil(self.n / self.world)
        return min(n, self.limit) if self.limit else n


def interactive_card(share: float, parent_had_it: bool) -> dict | None:
    """The card's "interactive" field: how the click mode was trained, or None without one."""
    from model.interactive import CLICK_RADIUS

    if share <= 0 and not parent_had_it:
        return None
    return {"channels": ["positive clicks", "negative clicks", "current mask"],
            "click_radius_px_at_input": CLICK_RADIUS, "trained_share": share,
            "simulation": "1-3 clicks in the largest error regions of the automatic prediction (or of "
                          "nothing, 1 in 5), half the time one more iterative click"}


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


def _atomic_save_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_weights(net: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save

    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    _atomic_save_bytes(path, save(state))


def _load_weights(net: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load

    net.load_state_dict(load(path.read_bytes()), strict=True)


def _save_state(path: Path, state: dict) -> None:
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    _atomic_save_bytes(path, buf.getvalue())


class JsonLog:
    """One JSON object per line to stdout and <out>/log.jsonl (rank 0 only)."""

    def __init__(self, path: Path | None, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def __call__(self, obj: dict, to_file: bool = True) -> None:
        if not self.enabled:
            return
        line = json.dumps(obj, default=_json_default)
        print(line, flush=True)
        if to_file and self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def _round(d: dict, nd: int = 5) -> dict:
    return {k: (round(v, nd) if isinstance(v, float) else v) for k, v in d.items()}


# ----------------------------------------------------------------------------- data
def _default_shared_root() -> Path:
    here = Path(__file__).resolve().parents[1]
    return (here / ".." / "shared" / "data").resolve()


def build_datasets(args, cfg, size: int, val_size: int):
    """(train dataset, val dataset or None, kind, workspace path or None)."""
    from training.data import AUG_PRESETS, ExportFolderDataset, PublicDataset, WorkspaceDataset
    from training.splits import split_cases_by_patient

    common = {"seed": args.seed, "mean": cfg.mean, "std": cfg.std}
    train_aug = AUG_PRESETS[getattr(args, "aug", "basic")]
    if args.data == "public":
        root = Path(args.shared_root) if args.shared_root else _default_shared_root()
        which = tuple(w.strip() for w in args.which.split(",") if w.strip())
        tr = PublicDataset(
            root,
            "train",
            which=which,
            tumour_repeat=args.tumour_repeat,
            negatives=not args.no_negatives,
            misregistration=args.misregistration,
            size=size,
            fold=args.fold,
            aug=train_aug,
            **common,
        )
        val_which = tuple(w.strip() for w in args.val_which.split(",") if w.strip() and w.strip() in which)
        va = None
        if val_which:
            va = PublicDataset(root, "val", which=val_which, misregistration=args.misregistration, size=val_size,
                               fold=args.fold, kvasir_val=args.kvasir_val, **common)
        return tr, va, "public", None
    path = Path(args.data)
    common["aug"] = train_aug
    if (path / "manifest.csv").exists():
        full = ExportFolderDataset(path, None, size=size, **common)
        splits = {r[1] for r in full.rows}
        if "val" in splits:
            tr = ExportFolderDataset(path, "train", size=size, **common)
            va = ExportFolderDataset(path, "val", size=val_size, train=False, **common)
        else:
            tr_ids, va_ids = split_cases_by_patient(full.case_patients, args.val_fraction, args.seed)
            tr = _subset_rows(full, tr_ids, size, True)
            va = _subset_rows(full, va_ids, val_size, False) if va_ids else None
        return tr, va, "export", None
    if (path / "workspace.sqlite").exists():
        statuses = tuple(s.strip() for s in args.statuses.split(",") if s.strip())
        full = WorkspaceDataset(path, statuses=statuses, size=size, **common)
        if len(full) == 0:
            raise SystemExit(f"{path}: no case with status {'/'.join(statuses)} and a mask to learn from")
        tr_ids, va_ids = split_cases_by_patient(full.case_patients, args.val_fraction, args.seed)
        tr = full.subset(tr_ids)
        va = None
        if va_ids:
            va = full.subset(va_ids)
            va.train = False
            va.size = val_size
        return tr, va, "workspace", path
    raise SystemExit(f"--data {args.data!r}: not 'public', a workspace (workspace.sqlite) or an export (manifest.csv)")


def _subset_rows(ds, ids, size: int, train: bool):
    import copy

    keep = set(ids)
    out = copy.copy(ds)
    out.rows = [r for r in ds.rows if r[0] in keep]
    out.size = size
    out.train = train
    return out


# ----------------------------------------------------------------------------- validation
@torch.no_grad()
def set_train_mode(net: torch.nn.Module, freeze_norm_stats: bool) -> None:
    """Training mode; with ``freeze_norm_stats`` the BatchNorm layers keep their running statistics.

    Why: fine-tuning on a few dozen cases re-estimates those statistics from small batches of
    them, which moves every prediction whatever the learning rate (measured in docs/MODEL.md)."""
    net.train()
    if freeze_norm_stats:
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def validate(net, ds, device, amp_ctx, batch_size: int, channels_last: bool,
             freeze_norm_stats: bool = False) -> dict:
    """Per-image Dice at the validation size, averaged per group (macro mean over groups with
    tumour = ``val_dice``); tumour-free images give the false-positive rate."""
    net.eval()
    groups = ds.groups()
    per_group: dict[str, list[float]] = {}
    neg_fp: list[bool] = []
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    for batch in loader:
        wli = batch["wli"].to(device)
        nbi = batch["nbi"].to(device)
        if channels_last:
            wli = wli.contiguous(memory_format=torch.channels_last)
            nbi = nbi.contiguous(memory_format=torch.channels_last)
        with amp_ctx():
            out = net(wli, nbi, batch["nbi_present"].to(device))
        pred = (out.logits.float() > 0).cpu().numpy()[:, 0]
        gt = batch["mask"].numpy()[:, 0] > 0.5
        for k in range(pred.shape[0]):
            g = groups[int(batch["index"][k])]
            if gt[k].any():
                per_group.setdefault(g, []).append(dice_score(pred[k], gt[k]))
            else:
                neg_fp.append(bool(pred[k].any()))
    set_train_mode(net, freeze_norm_stats)
    res: dict = {}
    for g, v in sorted(per_group.items()):
        res[f"val_dice_{g}"] = float(np.mean(v))
    res["val_dice"] = float(np.mean([np.mean(v) for v in per_group.values()])) if per_group else None
    res["val_fpr"] = float(np.mean(neg_fp)) if neg_fp else None
    res["val_n"] = len(ds)
    return res


# ----------------------------------------------------------------------------- main
def _pick_device(name: str, local_rank: int) -> str:
    """The device of this process by the app's rule (model.predictor.choose_device), except that an
    unusable CUDA that was asked for stops the run instead of falling back to the CPU."""
    from model.predictor import DeviceUnavailable, choose_device

    try:
        return choose_device(name, fallback=False, index=local_rank)[0]
    except (ValueError, DeviceUnavailable) as e:
        raise SystemExit(f"--device {name}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m training train``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run(args, argv)
    except SystemExit as e:
        if isinstance(e.code, str):
            print(json.dumps({"event": "error", "message": e.code}), flush=True)
            print(f"error: {e.code}", file=sys.stderr)
            return 2
        raise
    finally:
        for s, h in saved.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(s, h)


def _run(args, argv: list[str]) -> int:
    from model.adf import ADFNet, count_params
    from model.card import check_test_time_flips, load_model, save_model
    from model.config import ADFConfig, get_preset
    from model.losses import adf_loss

    try:
        tta_flips = check_test_time_flips([f.strip() for f in args.tta_flips.split(",") if f.strip()])
    except ValueError as e:
        raise SystemExit(f"--tta-flips: {e}") from None

    if args.parent_blend is None:
        args.parent_blend = 0.5 if args.init else 1.0
    if not 0.0 < args.parent_blend <= 1.0:
        raise SystemExit("--parent-blend must be in (0, 1]")
    if args.parent_blend < 1.0 and not args.init:
        raise SystemExit("--parent-blend needs --init (the parent to blend with)")
    if args.upgrade_arch and not args.init:
        raise SystemExit("--upgrade-arch needs --init (the network to upgrade)")
    if args.upgrade_arch and args.parent_blend < 1.0:
        raise SystemExit("--upgrade-arch: the parent has other tensors, so it cannot be blended (--parent-blend 1)")
    if not 0.0 <= args.modality_dropout + args.wli_dropout < 1.0:
        raise SystemExit("--modality-dropout + --wli-dropout must be below 1 (a sample keeps one stream)")

    # --- distributed -------------------------------------------------------------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(args.device, local_rank)
    ddp = world > 1
    if ddp:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    main_rank = rank == 0
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    # --- model -------------------------------------------------------------------------------
    parent = None
    if args.init:
        net, pcard = load_model(args.init, map_location="cpu")
        cfg = ADFConfig.from_dict(pcard["config"])
        parent = {"id": pcard.get("id"), "sha256": pcard.get("sha256"), "path": str(args.init)}
        if args.upgrade_arch:
            import dataclasses

            from model.adf import upgrade_state

            new_cfg = dataclasses.replace(cfg, nbi_skips=True, click_chans=3)
            if new_cfg == cfg:
                raise SystemExit("--upgrade-arch: the parent already has the current network")
            old_state = net.state_dict()
            cfg = new_cfg
            torch.manual_seed(args.seed)
            net = ADFNet(cfg)
            parent["upgraded_from_config"] = {"nbi_skips": False, "click_chans": 0}
            parent["new_tensors"] = upgrade_state(net, old_state)
    else:
        cfg = get_preset(args.preset)
        if args.input_size:
            import dataclasses

            cfg = dataclasses.replace(cfg, input_size=args.input_size)
        torch.manual_seed(args.seed)
        net = ADFNet(cfg)
    parent_state = {k: v.detach().clone() for k, v in net.state_dict().items()} if args.init else None
    freeze_norm = args.norm_stats == "freeze" or (args.norm_stats == "auto" and bool(args.init))
    set_train_mode(net, freeze_norm)
    net.to(device)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)

    model_id = args.model_id or f"adf-{cfg.preset}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out = Path(args.out) if args.out else Path("runs") / model_id
    ckdir = out / "checkpoints"
    if main_rank:
        ckdir.mkdir(parents=True, exist_ok=True)
    log = JsonLog(out / LOG_NAME, main_rank)

    wli_drop = args.wli_dropout if cfg.nbi_skips else 0.0  # older networks have no NBI-only path
    parent_interactive = bool(args.init) and bool(pcard.get("interactive"))
    interactive = args.interactive if args.interactive is not None else (0.5 if parent_interactive else 0.0)
    if interactive > 0 and not cfg.click_chans:
        raise SystemExit("--interactive: this network has no click inputs (use --upgrade-arch, or train the "
                         "current network)")
    if not 0.0 <= interactive <= 1.0:
        raise SystemExit("--interactive must be in [0, 1]")

    # --- data --------------------------------------------------------------------------------
    schedule = _parse_size_schedule(args.size_schedule, args.size or cfg.input_size)
    val_size = args.val_size or cfg.input_size
    train_ds, val_ds, kind, ws_path = build_datasets(args, cfg, schedule[0][0], val_size)
    if len(train_ds) == 0:
        raise SystemExit("no training cases")
    limit = args.steps_per_epoch * args.batch_size if args.steps_per_epoch else None
    sampler = EpochSampler(len(train_ds), args.seed, rank, world, limit=limit)
    steps_per_epoch = math.ceil(len(sampler) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = max(1, int(args.warmup * total_steps))

    # --- optimizer / amp ----------------------------------------------------------------------
    decay, no_decay = [], []
    for n, p in net.named_parameters():
        if args.freeze_encoders and n.startswith(("enc_w.", "enc_n.")):
            p.requires_grad_(False)  # fine-tune the heads, fusion and decoder only
            continue
        (no_decay if p.ndim <= 1 or n.endswith("standin") else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.999),
    )
    amp = args.amp
    if amp == "auto":
        amp = "fp16" if device.startswith("cuda") else ("bf16" if cpu_has_native_bf16() else "off")
    dev_type = "cuda" if device.startswith("cuda") else "cpu"
    if amp == "off":
        amp_ctx = contextlib.nullcontext
    else:
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        if dev_type == "cpu" and amp == "fp16":
            raise SystemExit("--amp fp16 is CUDA only; use bf16 on CPU")

        def amp_ctx():
            return torch.autocast(dev_type, dtype=dtype)

    scaler = torch.amp.GradScaler("cuda", enabled=(amp == "fp16" and dev_type == "cuda"))

    parent_val: dict = {}
    if main_rank and parent_state is not None and val_ds is not None:
        # the parent on the same held-out cases (the figure a new version has to beat), before any
        # resume loads later weights
        parent_val = validate(net, val_ds, device, amp_ctx, max(1, args.batch_size), args.channels_last, freeze_norm)

    # --- resume -------------------------------------------------------------------------------
    start_epoch, step, elapsed = 0, 0, 0.0
    best, best_epoch, bad_vals = -1.0, -1, 0
    images_seen = 0
    this_command = "python -m training train " + shlex.join(argv)
    commands = [this_command]
    if args.resume:
        last_w, last_s = ckdir / "last.safetensors", ckdir / "last_state.pt"
        if not (last_w.exists() and last_s.exists()):
            raise SystemExit(f"--resume: no checkpoint in {ckdir}")
        _load_weights(net, last_w)
        st = torch.load(last_s, map_location="cpu", weights_only=True)
        opt.load_state_dict(st["optimizer"])
        if "scaler" in st and scaler.is_enabled():
            scaler.load_state_dict(st["scaler"])
        start_epoch = int(st["epoch"]) + 1
        step, elapsed = int(st["step"]), float(st["elapsed"])
        best, best_epoch, bad_vals = float(st["best"]), int(st["best_epoch"]), int(st["bad_vals"])
        images_seen = int(st.get("images_seen", 0))
        commands = [*json.loads(st.get("commands", "[]")), this_command]
        rng_key = f"rng_rank{rank}"
        if rng_key in st:
            torch.set_rng_state(st[rng_key])
        if start_epoch >= args.epochs and not args.max_minutes:
            raise SystemExit(f"--resume: the run already finished {start_epoch} of {args.epochs} epochs")
        log({"event": "resume", "epoch": start_epoch, "step": step, "elapsed_s": round(elapsed, 1)})
    else:
        torch.manual_seed(args.seed * 1000 + rank)

    model = net
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(net, device_ids=[torch.device(device).index] if dev_type == "cuda" else None,
                    find_unused_parameters=True)

    # --- stop on SIGTERM / SIGINT: finish the step, checkpoint, export -------------------------
    stop_flag = {"stop": False}

    def _on_signal(signum, frame):
        stop_flag["stop"] = True

    with contextlib.suppress(ValueError):  # ValueError: not the main thread (tests)
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    budget_s = args.max_minutes * 60.0 if args.max_minutes else None

    def progress_now(step_: int, elapsed_: float) -> float:
        p = step_ / max(1, total_steps)
        if budget_s:
            p = max(p, elapsed_ / budget_s) if args.epochs else elapsed_ / budget_s
        return min(1.0, p)

    info = {
        "event": "start",
        "model_id": model_id,
        "out": str(out),
        "data": kind,
        "n_train": len(train_ds),
        "n_val": len(val_ds) if val_ds is not None else 0,
        "params": count_params(net),
        "device": device,
        "amp": amp,
        "threads": threads,
        "world": world,
        "epochs": args.epochs,
        "steps_per_epoch": steps_per_epoch,
        "size_schedule": schedule,
    }
    log(info)
    if parent_val:
        log({"event": "parent_val", **_round(parent_val)})

    ema_dt = None
    history: list[dict] = []
    last_val: dict = {}
    epoch = start_epoch
    epochs_this_run = 0
    stopped_by = None
    t_run0 = time.time()
    while epoch < args.epochs:
        prog = progress_now(step, elapsed)
        if budget_s and elapsed >= budget_s:
            stopped_by = "time budget"
            break
        size = size_at(schedule, prog)
        train_ds.size = size
        train_ds.set_epoch(epoch)
        sampler.set_epoch(epoch)
        loader = DataLoader(
            train_ds,
            batch_size=args.batch_size,
            sampler=sampler,
            num_workers=args.workers,
            drop_last=False,
            persistent_workers=False,
        )
        sums: dict[str, float] = {}
        n_batches = 0
        n_img = 0
        t_ep = time.time()
        bar = None
        if main_rank and not args.no_tqdm:
            from tqdm import tqdm

            bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{args.epochs} {size}px", file=sys.stderr,
                       dynamic_ncols=True, mininterval=2.0)
        t_prev = t_progress = time.time()
        for batch in loader:
            t0 = time.time()
            prog = progress_now(step, elapsed)
            lr = args.lr * lr_factor(prog, step, warmup_steps, args.warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            wli = batch["wli"].to(device, non_blocking=True)
            nbi = batch["nbi"].to(device, non_blocking=True)
            target = batch["mask"].to(device, non_blocking=True)
            present = batch["nbi_present"].to(device)
            wli_present = None
            if args.modality_dropout > 0 or wli_drop > 0:
                # one draw per sample: drop NBI, drop WLI (only where NBI is there), or keep both
                u = torch.rand(present.shape[0]).to(device)
                drop_w = (u >= args.modality_dropout) & (u < args.modality_dropout + wli_drop) & present
                present = present & (u >= args.modality_dropout)
                wli_present = ~drop_w if bool(drop_w.any()) else None
            if args.channels_last:
                wli = wli.contiguous(memory_format=torch.channels_last)
                nbi = nbi.contiguous(memory_format=torch.channels_last)
            clicks = None
            if interactive > 0:
                with amp_ctx():
                    clicks = simulated_clicks(net, wli, nbi, present, wli_present, target, interactive,
                                              np.random.default_rng([args.seed, step, 11]))
                if clicks is not None and freeze_norm:
                    set_train_mode(net, freeze_norm)
            with amp_ctx():
                out_ = model(wli, nbi, present, wli_present, clicks)
                loss, parts = adf_loss(out_, target, prog, aux=not args.no_aux, net=net)
            opt.zero_grad(set_to_none=True)
            if scaler.is_enabled():
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
            step += 1
            n_batches += 1
            n_img += wli.shape[0] * world
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            dt = time.time() - t0
            if _DEBUG:
                print(f"step {step} load {t0 - t_prev:.2f}s step {dt:.2f}s", file=sys.stderr, flush=True)
            # a paused process (SIGSTOP) or a long stall must not eat the time budget
            ema_dt = dt if ema_dt is None else 0.9 * ema_dt + 0.1 * min(dt, 5 * ema_dt)
            elapsed += min(dt, max(5 * ema_dt, 1.0))
            if bar is not None:
                bar.set_postfix(loss=f"{parts['total']:.3f}", lr=f"{lr:.2e}", refresh=False)
                bar.update(1)
            if main_rank and args.progress_every > 0 and time.time() - t_progress >= args.progress_every:
                t_progress = time.time()
                log({"event": "step", "epoch": epoch + 1, "epochs": args.epochs, "batch": n_batches,
                     "batches": len(loader), "step": step, "loss": round(float(parts["total"]), 5),
                     "lr": lr}, to_file=False)  # stdout only: the dialog's progress bar
            stop_now = stop_flag["stop"] or (budget_s is not None and elapsed >= budget_s)
            if ddp:
                t = torch.tensor([1.0 if stop_now else 0.0], device=device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                stop_now = bool(t.item() > 0)
            if stop_now:
                stopped_by = "signal" if stop_flag["stop"] else "time budget"
                break
            t_prev = time.time()
        if bar is not None:
            bar.close()
        ep_s = time.time() - t_ep
        images_seen += n_img
        rec = {
            "event": "epoch",
            "epoch": epoch + 1,
            "epochs": args.epochs,
            "size": size,
            "lr": opt.param_groups[0]["lr"],
            "progress": round(progress_now(step, elapsed), 4),
            "images": n_img,
            "images_per_s": round(n_img / max(ep_s, 1e-9), 2),
            "seconds": round(ep_s, 1),
            "complete": stopped_by is None,
        }
        rec.update({f"loss_{k}": v / max(1, n_batches) for k, v in sums.items()})
        # --- validation (rank 0) ---
        do_val = val_ds is not None and ((epoch + 1) % max(1, args.val_every) == 0 or stopped_by is not None
                                          or epoch + 1 == args.epochs)
        improved = False
        if main_rank and do_val:
            tv = time.time()
            last_val = validate(net, val_ds, device, amp_ctx, max(1, args.batch_size), args.channels_last,
                                freeze_norm)
            val_s = time.time() - tv
            last_val["val_seconds"] = round(val_s, 1)
            elapsed += val_s  # the time budget covers validation too
            rec.update(last_val)
            vd = last_val.get("val_dice")
            if vd is not None and vd > best:
                best, best_epoch, bad_vals, improved = vd, epoch + 1, 0, True
            else:
                bad_vals += 1
        # --- checkpoint (rank 0) ---
        rng_states = [torch.get_rng_state()]
        if ddp:
            gathered = [None] * world
            dist.all_gather_object(gathered, torch.get_rng_state())
            rng_states = gathered
        if main_rank:
            _save_weights(net, ckdir / "last.safetensors")
            if improved and args.select == "best":
                _save_weights(net, ckdir / "best.safetensors")
            state = {
                "optimizer": opt.state_dict(),
                "epoch": epoch,
                "step": step,
                "elapsed": elapsed,
                "best": best,
                "best_epoch": best_epoch,
                "bad_vals": bad_vals,
                "images_seen": images_seen,
                "model_id": model_id,
                "config": json.dumps(cfg.to_dict()),
                "args": json.dumps(vars(args)),
                "commands": json.dumps(commands),
            }
            for r, s in enumerate(rng_states):
                state[f"rng_rank{r}"] = s
            if scaler.is_enabled():
                state["scaler"] = scaler.state_dict()
            _save_state(ckdir / "last_state.pt", state)
            rec["best_val_dice"] = best if best >= 0 else None
            rec["best_epoch"] = best_epoch if best_epoch >= 0 else None
            log(_round(rec))
            history.append(rec)
        epoch += 1
        epochs_this_run += 1
        early = args.patience > 0 and bad_vals >= args.patience
        if ddp:
            t = torch.tensor([1.0 if early else 0.0], device=device)
            dist.broadcast(t, 0)
            early = bool(t.item() > 0)
        if early and stopped_by is None:
            stopped_by = "early stopping"
        if stopped_by is not None:
            break
        if args.stop_after is not None and epochs_this_run >= args.stop_after:
            stopped_by = "stop-after"
            break

    # --- export -------------------------------------------------------------------------------
    result = 0
    if main_rank:
        best_w = ckdir / "best.safetensors"
        source = "best" if args.select == "best" and best_w.exists() else "last"
        _load_weights(net, best_w if source == "best" else ckdir / "last.safetensors")
        metrics = {"selected": source, "best_epoch": best_epoch if best_epoch >= 0 else None,
                   "held_out_chose": ("the epoch (best validation Dice): the val figures are optimistic"
                                      if source == "best" else "nothing (the last epoch is released)")}
        blended = parent_state is not None and args.parent_blend < 1.0
        if blended:
            blend_with_parent(net, parent_state, args.parent_blend)
        if parent_val:
            metrics["parent_val_dice"] = parent_val.get("val_dice")
        if val_ds is not None:
            if blended or (source == "best" and (not last_val or last_val.get("val_dice") != best)):
                final_val = validate(net, val_ds, device, amp_ctx, max(1, args.batch_size), args.channels_last,
                                     freeze_norm)
            else:
                final_val = last_val or validate(net, val_ds, device, amp_ctx, max(1, args.batch_size),
                                                 args.channels_last, freeze_norm)
            metrics.update({k: v for k, v in final_val.items() if k.startswith("val_") and k != "val_seconds"})
            metrics["val_size_px"] = val_size
        wall = time.time() - t_run0
        card = {
            "id": model_id,
            "training_data": {
                "kind": kind,
                "train": train_ds.describe(),
                "val": val_ds.describe() if val_ds is not None else None,
            },
            "command": this_command,
            "commands": commands,  # every invocation of this run, the first one first (resumes)
            "parent": parent,
            "metrics": metrics,
            "training": {
                "epochs_done": epoch,
                "epochs_planned": args.epochs,
                "steps": step,
                "images_seen": images_seen,
                "train_seconds": round(elapsed, 1),
                "wall_seconds_this_invocation": round(wall, 1),
                "images_per_s": round(images_seen / max(elapsed, 1e-9), 2),
                "stopped_by": stopped_by,
                "size_schedule": schedule,
                "batch_size": args.batch_size,
                "world_size": world,
                "lr": args.lr,
                "aux_losses": not args.no_aux,
                "modality_dropout": args.modality_dropout,
                "wli_dropout": wli_drop,
                "augmentation": args.aug,
                "fold": args.fold if kind == "public" else None,
                "select": args.select,
                "norm_stats": "frozen" if freeze_norm else "updated",
                "frozen_encoders": bool(args.freeze_encoders),
                "parent_blend": args.parent_blend if parent_state is not None else None,
                "amp": amp,
                "seed": args.seed,
            },
            "test_time_flips": tta_flips,
            "interactive": interactive_card(interactive, parent_interactive),
            "machine": machine_info(threads, device),
            "notes": "Research demonstration trained on public data with synthetic (pseudo) NBI; "
            "not a diagnostic device.",
        }
        js = save_model(net, cfg, out / model_id, card)
        registered = None
        activated, activation = False, "not asked (--register not given)"
        if ws_path is not None:
            from training.store import Workspace

            if args.register:
                activated, activation = activation_verdict(metrics)
            with Workspace.open(ws_path) as w:
                registered = w.register_model(js, activate=activated)
        log(
            {
                "event": "done",
                "model": str(js),
                "model_id": model_id,
                "registered": registered,
                "activated": activated,
                "activation": activation,
                "stopped_by": stopped_by,
                "epochs_done": epoch,
                "parent_blend": args.parent_blend if parent_state is not None else None,
                "metrics": _round(metrics),
            }
        )
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    raise SystemExit(main())
