"""The end of a run (rank 0): the released weights, the model card, registration and whether
the new version becomes the active one.

- ``--select last`` (default) releases the last epoch, so the held-out cases chose nothing and can
  decide whether the new version beats its parent; ``--select best`` the best validation epoch.
- Fine-tuning (``--init``) releases the average of the parent's and the fine-tuned weights
  (``--parent-blend``, WiSE-FT): on a few dozen cases it keeps most of the gain and loses far less
  of what the parent knew (docs/MODEL.md, "Fine-tuning from the bundled model").
- A workspace run registers the model in its workspace; with ``--register`` it is also made
  active, only when it beats its parent on the same held-out cases (activation_verdict).
- The model is written (and registered) as the very last step, so a killed run leaves no model.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from training.checkpoint import BEST_WEIGHTS, LAST_WEIGHTS, load_weights
from training.click_sim import interactive_card
from training.copy_paste import CopyPasteConfig
from training.hardware import machine_info
from training.run_log import rounded
from training.validation import held_out_gain

if TYPE_CHECKING:
    from training.loop import Run


@torch.no_grad()
def blend_with_parent(net: torch.nn.Module, parent_state: dict[str, torch.Tensor], share: float) -> None:
    """Set every float weight to parent + share * (weight - parent), in place (WiSE-FT).

    Why: 80 optimizer steps on 30 cases end in weights that fit those cases and lose some of
    what the parent knew; halfway between the two keeps most of the gain on the new cases and
    little of the loss elsewhere (measured in docs/MODEL.md; Wortsman et al., CVPR 2022)."""
    for name, w in net.state_dict().items():
        if w.is_floating_point():
            w.copy_(parent_state[name].to(w.device, w.dtype).lerp(w, share))


BLEND_CANDIDATES = (0.25, 0.5, 0.75, 1.0)
FALLBACK_BLEND = 0.5  # --parent-blend auto with no held-out cases: the fixed default


def held_out_score(val_dice: float | None, val_fpr: float | None) -> float | None:
    """The held-out figure a version is judged by: the mean of the tumour Dice and the tumour-free
    specificity (1 - share of tumour-free images with any predicted tumour), of those present.

    Why both: a clinic that corrects only tumour frames teaches the model that every frame has a
    tumour (docs/MODEL.md, seq6 false positives 0.07 -> 0.39 after a fine-tune); Dice alone on
    held-out tumour cases cannot see that, tumour-free held-out cases can."""
    parts = [v for v in (val_dice, None if val_fpr is None else 1.0 - val_fpr) if v is not None]
    return float(sum(parts) / len(parts)) if parts else None


def activation_verdict(metrics: dict) -> tuple[bool, str]:
    """(activate?, why) for a new workspace version, from its card metrics.

    A version is made active only when it beats its parent on the same held-out cases (or has
    no parent or no held-out cases to compare on): a clinic should not silently get a model
    that scores lower on its own cases. With tumour-free held-out cases the comparison is of
    ``held_out_score`` (Dice and specificity), so forgetting counts. The Train dialog offers
    "Activate anyway"."""
    if metrics.get("val_fpr") is not None and metrics.get("parent_val_fpr") is not None:
        new = held_out_score(metrics.get("val_dice"), metrics["val_fpr"])
        old = held_out_score(metrics.get("parent_val_dice"), metrics["parent_val_fpr"])
        what = "score (mean of Dice and tumour-free specificity)"
    else:
        new, old, what = metrics.get("val_dice"), metrics.get("parent_val_dice"), "Dice"
    if old is None:
        return True, "no parent to compare with"
    if new is None:
        return True, "no held-out cases to compare on"
    if new > old:
        return True, f"held-out {what} {new:.3f} beats the parent's {old:.3f}"
    return False, f"held-out {what} {new:.3f} does not beat the parent's {old:.3f}: registered, not activated"


def choose_blend(r: Run) -> tuple[float, list[dict] | None, dict | None]:
    """--parent-blend auto: (the blend to release, what each candidate scored, the released
    blend's validation so the release need not measure it again), leaving ``r.net`` blended. Each of ``BLEND_CANDIDATES`` is scored on the held-out cases by ``held_out_score``;
    the best wins; a tie goes to the candidate nearest ``FALLBACK_BLEND``, then the smaller.

    Why per run: under a real change (another hospital, a lesion only NBI shows) the fixed 0.5
    gives away most of the gain, while on a recording like the old ones blend 1 forgets the
    tumour-free frames (docs/MODEL.md, "Retraining that adapts to a clinic"). Why ties go to
    0.5: held-out cases that are all tumour-free (or all scored alike) say nothing about the
    gain, only that no blend forgets more; then the fixed default stands. No held-out cases:
    ``FALLBACK_BLEND``."""
    if r.val_ds is None or r.parent_state is None:
        if r.parent_state is not None:
            blend_with_parent(r.net, r.parent_state, FALLBACK_BLEND)
        return FALLBACK_BLEND, None, None
    fine = {k: v.detach().clone() for k, v in r.net.state_dict().items()}
    table: list[dict] = []
    vals: dict[float, dict] = {}
    for share in BLEND_CANDIDATES:
        r.net.load_state_dict(fine)
        if share < 1.0:
            blend_with_parent(r.net, r.parent_state, share)
        val = vals[share] = r.validate()
        score = held_out_score(val.get("val_dice"), val.get("val_fpr"))
        table.append({"blend": share, "val_dice": val.get("val_dice"), "val_fpr": val.get("val_fpr"), "score": score})
    scored = [t for t in table if t["score"] is not None]
    share = FALLBACK_BLEND
    if scored:
        top = max(t["score"] for t in scored)
        share = min((t["blend"] for t in scored if t["score"] >= top - 1e-9),
                    key=lambda b: (abs(b - FALLBACK_BLEND), b))
    r.net.load_state_dict(fine)
    if share < 1.0:
        blend_with_parent(r.net, r.parent_state, share)
    return share, table, vals[share]


def release(r: Run) -> None:
    """Load the weights to release, blend them with the parent, measure them on the held-out
    cases, write the model and its card into the run folder, register it, log ``done``."""
    args, st = r.args, r.state
    best_w = r.ckdir / BEST_WEIGHTS
    source = "best" if args.select == "best" and best_w.exists() else "last"
    load_weights(r.net, best_w if source == "best" else r.ckdir / LAST_WEIGHTS)
    metrics = {"selected": source, "best_epoch": st.best_epoch if st.best_epoch >= 0 else None,
               "held_out_chose": ("the epoch (best validation Dice): the val figures are optimistic"
                                  if source == "best" else "nothing (the last epoch is released)")}
    share, chosen_val = args.parent_blend, None
    if r.parent_state is not None and share == "auto":
        share, table, chosen_val = choose_blend(r)
        metrics["parent_blend_choice"] = table
        if table is not None:
            chose = "the parent blend (of " + ", ".join(str(b) for b in BLEND_CANDIDATES) + ")"
            metrics["held_out_chose"] = (f"the epoch and {chose}" if source == "best"
                                         else f"{chose}: the val figures are slightly optimistic")
    elif r.parent_state is not None and share < 1.0:
        blend_with_parent(r.net, r.parent_state, share)
    blended = r.parent_state is not None and share < 1.0
    r.released_blend = share if r.parent_state is not None else None
    if r.parent_val:
        metrics["parent_val_dice"] = r.parent_val.get("val_dice")
        if r.parent_val.get("val_fpr") is not None:
            metrics["parent_val_fpr"] = r.parent_val.get("val_fpr")
    if r.val_ds is not None:
        if chosen_val is not None:  # measured while choosing the blend
            final_val = chosen_val
        elif blended or (source == "best" and (not r.last_val or r.last_val.get("val_dice") != st.best)):
            final_val = r.validate()
        else:
            final_val = r.last_val or r.validate()
        metrics.update({k: v for k, v in final_val.items() if k.startswith("val_") and k != "val_seconds"})
        metrics["val_size_px"] = r.val_size
        metrics.update(held_out_gain(final_val, r.parent_val) or {})
    from model.card import save_model

    js = save_model(r.net, r.cfg, r.out / r.model_id, model_card(r, metrics))
    registered = None
    activated, activation = False, "not asked (--register not given)"
    if r.ws_path is not None:
        from training.store import Workspace

        if args.register:
            activated, activation = activation_verdict(metrics)
        with Workspace.open(r.ws_path) as w:
            registered = w.register_model(js, activate=activated)
    r.log({"event": "done", "model": str(js), "model_id": r.model_id, "registered": registered,
           "activated": activated, "activation": activation, "stopped_by": r.stopped_by, "epochs_done": st.epoch,
           "parent_blend": r.released_blend, "metrics": rounded(metrics)})


def model_card(r: Run, metrics: dict) -> dict:
    """The card's fields that come from the run (model.card.save_model adds the config, hashes, dates)."""
    args, st = r.args, r.state
    return {
        "id": r.model_id,
        "training_data": {
            "kind": r.kind,
            "train": r.train_ds.describe(),
            "val": r.val_ds.describe() if r.val_ds is not None else None,
        },
        "command": r.this_command,
        "commands": st.commands,  # every invocation of this run, the first one first (resumes)
        "parent": r.parent,
        "metrics": metrics,
        "training": {
            "epochs_done": st.epoch,
            "epochs_planned": args.epochs,
            "steps": st.step,
            "images_seen": st.images_seen,
            "train_seconds": round(st.elapsed, 1),
            "wall_seconds_this_invocation": round(time.time() - r.t_start, 1),
            "images_per_s": round(st.images_seen / max(st.elapsed, 1e-9), 2),
            "stopped_by": r.stopped_by,
            "size_schedule": r.schedule,
            "batch_size": args.batch_size,
            "world_size": r.procs.world,
            "lr": args.lr,
            "aux_losses": not args.no_aux,
            "modality_dropout": args.modality_dropout,
            "wli_dropout": r.wli_drop,
            "augmentation": args.aug,
            "copy_paste": getattr(args, "copy_paste", 0.0),
            "copy_paste_onto": getattr(args, "copy_paste_onto", "laryngeal"),
            "copy_paste_decoys": getattr(args, "copy_paste_decoys", 0.0),
            "copy_paste_scale": list(getattr(args, "copy_paste_scale", CopyPasteConfig().scale)),
            "copy_paste_edge": getattr(args, "copy_paste_edge", 0.0),
            "fold": args.fold if r.kind == "public" else None,
            "select": args.select,
            "norm_stats": "frozen" if r.freeze_norm else "updated",
            "frozen_encoders": bool(args.freeze_encoders),
            "overlap_loss": {"kind": "dice" if getattr(args, "fn_weight", 0.5) == 0.5 else "tversky",
                             "fn_weight": getattr(args, "fn_weight", 0.5)},
            "distill_weight": getattr(args, "distill", 0.0),  # --distill: the parent's automatic output held
            "parent_blend": r.released_blend,
            "parent_blend_rule": ("auto: the best held-out score of " + "/".join(str(b) for b in BLEND_CANDIDATES)
                                  if args.parent_blend == "auto" and r.parent_state is not None else None),
            "amp": r.prec.amp,
            "seed": args.seed,
        },
        "test_time_flips": r.tta_flips,
        **r.operating_point,
        "interactive": interactive_card(r.interactive, r.parent_interactive, getattr(r.args, "click_rounds", 1),
                                        r.first_masks_from, getattr(r.args, "wrong_masks", 0.0)),
        "machine": machine_info(r.procs.threads, r.procs.device),
        "notes": "Research demonstration trained on public data with synthetic (pseudo) NBI; "
        "not a diagnostic device.",
    }
