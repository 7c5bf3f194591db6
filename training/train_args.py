"""The trainer's command line: every option of ``python -m training train``, and the checks of
option combinations that need no data or network (a bad combination stops the run before it
builds or writes anything, with one error line the Train dialog shows).
"""
from __future__ import annotations

import argparse

from training.copy_paste import CopyPasteConfig

DESCRIPTION = "``python -m training train``: train or fine-tune the ADF network; checkpoints, log, model card."


def parent_blend_arg(text: str) -> float | str:
    """--parent-blend: a number in (0, 1] or "auto" (chosen per run on the held-out cases)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'auto': {text!r}") from None


def scale_range_arg(text: str) -> tuple[float, float]:
    """--copy-paste-scale: "LOW,HIGH" (the range is checked with the other options in check_args)."""
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not LOW,HIGH numbers: {text!r}") from None
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"not LOW,HIGH: {text!r}")
    return parts[0], parts[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training train", description=DESCRIPTION)
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
    p.add_argument("--aug", default="scope", choices=["basic", "scope", "scope-wide"],
                   help="augmentation: basic (releases 1-2), scope (+ another endoscope's colour, light, "
                        "blur, JPEG, resolution; wider zoom-out) or scope-wide (scope with exposure, gamma "
                        "and contrast drawn 1.3-2.5x wider; release 5)")
    p.add_argument("--copy-paste", type=float, default=0.0, metavar="P",
                   help="public: the share of laryngeal training frames that get one of the training recording's "
                        "lesions pasted elsewhere (resized, flipped, Poisson-blended; training/copy_paste.py)")
    p.add_argument("--copy-paste-onto", default="laryngeal", choices=["laryngeal", "tumour"],
                   help="public: which frames take a paste: every laryngeal frame, or only the tumour recording's "
                        "(the tumour-free recordings stay pure negatives)")
    p.add_argument("--copy-paste-decoys", type=float, default=0.0, metavar="D",
                   help="public: the share of laryngeal training frames that get a decoy: a lesion-shaped piece of "
                        "normal mucosa cut and blended the same way, label unchanged, so a patch that does not "
                        "match its surroundings is not tumour by itself")
    p.add_argument("--copy-paste-scale", type=scale_range_arg, default=CopyPasteConfig().scale, metavar="LOW,HIGH",
                   help="public: the range a pasted lesion's (and a decoy's) side is resized by, drawn log-uniform "
                        "(default 0.5,1.4); 0.3,2 shows the training recording's lesions from a tenth to four times "
                        "their area, sizes another recording has and this one lacks")
    p.add_argument("--copy-paste-edge", type=float, default=0.0, metavar="E",
                   help="public: the share of pastes and decoys placed across the frame's edge and cut by it, as a "
                        "tumour leaving the endoscope's view is (default 0: every paste lies inside the frame)")
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
    p.add_argument("--parent-blend", type=parent_blend_arg, default=None, metavar="BLEND|auto",
                   help="with --init: release parent + BLEND x (fine-tuned - parent), a weight-space "
                        "average (WiSE-FT); 1: the fine-tuned weights as they are; auto: the blend of "
                        "0.25/0.5/0.75/1 that scores best on the held-out cases (tumour Dice and "
                        "tumour-free specificity), 0.5 when nothing is held out or the scores tie (default: auto with --init)")
    p.add_argument("--interactive", type=float, default=None,
                   help="share of samples trained with simulated clicks (the interactive mode, issue 16); "
                        "default: 0.5 when fine-tuning a model that has the mode, else 0 (automatic only)")
    p.add_argument("--click-rounds", type=int, default=1,
                   help="with clicks: up to this many iterative simulated clicks after the first 1-3, each "
                        "at the largest error of the network's redraw (drawn per sample, 0..N; 1: one more "
                        "half the time). More teaches the late clicks of hard cases, at one extra no-grad "
                        "pass per round")
    p.add_argument("--first-masks-from", default=None, metavar="MODEL",
                   help="with clicks: the simulated clicks start from this model's automatic masks instead of "
                        "the trained network's own (train a click network for a fixed automatic one; "
                        "then `attach-clicks`)")
    p.add_argument("--wrong-masks", type=float, default=0.0, metavar="P",
                   help="with clicks: this share of the clicked samples starts from another sample's automatic "
                        "mask, a mostly wrong mask the clicks must overturn (default 0)")
    p.add_argument("--distill", type=float, default=0.0, metavar="W",
                   help="with --init: weight of a loss that holds the parent's automatic output on the "
                        "click-free samples (soft-target BCE to the frozen parent's probability; 0: off). "
                        "Lets a click fine-tune learn clicks without moving the automatic mode")
    p.add_argument("--fn-weight", type=float, default=0.5, metavar="B",
                   help="weight of missed tumour in the overlap loss (Tversky; false positives get 1 - B). "
                        "0.5: the soft Dice loss (default); 0.7 trains for sensitivity, for a model that "
                        "outlines too little of a lesion it found")
    p.add_argument("--tta-flips", default=None,
                   help="test-time flip views written to the card for the predictor to average "
                        "(none,h,v,hv; training always flips, so these are views the model has seen); "
                        "default: the parent's with --init (with its inference size and decision "
                        "threshold), else none,h")
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    """Check the option combinations and fill the defaults that depend on other options (in place:
    the checkpoint records the args as the run used them); returns the card's test-time flips as
    given (empty when --tta-flips was not: ``inherited_operating_point`` then decides).
    Raises SystemExit with the message for the user."""
    from model.card_file import check_test_time_flips

    if getattr(args, "distill", 0.0) < 0:
        raise SystemExit("--distill must be 0 or more")
    if getattr(args, "distill", 0.0) > 0 and not args.init:
        raise SystemExit("--distill needs --init (the parent whose automatic output it holds)")
    if not 0.0 < getattr(args, "fn_weight", 0.5) < 1.0:
        raise SystemExit("--fn-weight must be between 0 and 1 (0.5: Dice)")
    for option, what in (("copy_paste", "a paste"), ("copy_paste_decoys", "a decoy")):
        share, flag = getattr(args, option, 0.0), "--" + option.replace("_", "-")
        if not 0.0 <= share <= 1.0:
            raise SystemExit(f"{flag} is the share of laryngeal frames that take {what}: 0 to 1")
        if share > 0 and args.data != "public":
            raise SystemExit(f"{flag} cuts from the public set's laryngeal frames: it needs --data public")
    lo, hi = getattr(args, "copy_paste_scale", CopyPasteConfig().scale)
    if not 0.0 < lo <= hi <= 4.0:
        raise SystemExit("--copy-paste-scale is LOW,HIGH with 0 < LOW <= HIGH <= 4 (a factor on a lesion's side)")
    edge = getattr(args, "copy_paste_edge", 0.0)
    if not 0.0 <= edge <= 1.0:
        raise SystemExit("--copy-paste-edge is the share of pastes cut by the frame's edge: 0 to 1")
    if edge > 0 and getattr(args, "copy_paste", 0.0) == 0 and getattr(args, "copy_paste_decoys", 0.0) == 0:
        raise SystemExit("--copy-paste-edge places pastes: it needs --copy-paste or --copy-paste-decoys")
    if not 0.0 <= getattr(args, "wrong_masks", 0.0) <= 0.8:
        raise SystemExit("--wrong-masks must be in [0, 0.8]")
    if getattr(args, "first_masks_from", None) and args.interactive is not None and args.interactive <= 0:
        raise SystemExit("--first-masks-from trains the click mode: it needs --interactive above 0")
    if getattr(args, "click_rounds", 1) < 0:
        raise SystemExit("--click-rounds must be 0 or more")
    tta_flips: list[str] = []
    if args.tta_flips is not None:
        try:
            tta_flips = check_test_time_flips([f.strip() for f in args.tta_flips.split(",") if f.strip()])
        except ValueError as e:
            raise SystemExit(f"--tta-flips: {e}") from None

    if args.parent_blend is None:
        args.parent_blend = "auto" if args.init else 1.0
    auto = args.parent_blend == "auto"
    if not auto and not 0.0 < args.parent_blend <= 1.0:
        raise SystemExit("--parent-blend must be in (0, 1] or auto")
    if (auto or args.parent_blend < 1.0) and not args.init:
        raise SystemExit("--parent-blend needs --init (the parent to blend with)")
    if args.upgrade_arch and not args.init:
        raise SystemExit("--upgrade-arch needs --init (the network to upgrade)")
    if args.upgrade_arch and (auto or args.parent_blend < 1.0):
        raise SystemExit("--upgrade-arch: the parent has other tensors, so it cannot be blended (--parent-blend 1)")
    if not 0.0 <= args.modality_dropout + args.wli_dropout < 1.0:
        raise SystemExit("--modality-dropout + --wli-dropout must be below 1 (a sample keeps one stream)")
    return tta_flips


OPERATING_POINT_KEYS = ("inference_input_size", "inference_no_upsampling", "decision_threshold")


def inherited_operating_point(tta_flips: list[str], pcard: dict | None) -> tuple[list[str], dict]:
    """The card's test-time views and inference fields of a run: a fine-tune keeps its parent's
    (input size, decision threshold, views: chosen for the release on held-out data, docs/MODEL.md),
    since a clinic's few cases cannot choose them again; --tta-flips still overrides the views."""
    inherit = dict(pcard or {})
    fields = {k: inherit[k] for k in OPERATING_POINT_KEYS if inherit.get(k) is not None}
    if tta_flips:
        return tta_flips, fields
    return list(inherit.get("test_time_flips") or ["none", "h"]), fields


def interactive_share(args: argparse.Namespace, click_chans: int, parent_has_it: bool) -> float:
    """The share of samples trained with simulated clicks (--interactive; default 0.5 when the
    parent has the click mode, else 0); SystemExit when the network has no click inputs."""
    share = args.interactive if args.interactive is not None else (0.5 if parent_has_it else 0.0)
    if share > 0 and not click_chans:
        raise SystemExit("--interactive: this network has no click inputs (use --upgrade-arch, or train the "
                         "current network)")
    if not 0.0 <= share <= 1.0:
        raise SystemExit("--interactive must be in [0, 1]")
    return share
