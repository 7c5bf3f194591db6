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
from training.hardware import machine_info
from training.run_log import rounded

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
    blended = r.parent_state is not None and args.parent_blend < 1.0
    if blended:
        blend_with_parent(r.net, r.parent_state, args.parent_blend)
    if r.parent_val:
        metrics["parent_val_dice"] = r.parent_val.get("val_dice")
    if r.val_ds is not None:
        if blended or (source == "best" and (not r.last_val or r.last_val.get("val_dice") != st.best)):
            final_val = r.validate()
        else:
            final_val = r.last_val or r.validate()
        metrics.update({k: v for k, v in final_val.items() if k.startswith("val_") and k != "val_seconds"})
        metrics["val_size_px"] = r.val_size
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
           "parent_blend": args.parent_blend if r.parent_state is not None else None, "metrics": rounded(metrics)})


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
            "fold": args.fold if r.kind == "public" else None,
            "select": args.select,
            "norm_stats": "frozen" if r.freeze_norm else "updated",
            "frozen_encoders": bool(args.freeze_encoders),
            "parent_blend": args.parent_blend if r.parent_state is not None else None,
            "amp": r.prec.amp,
            "seed": args.seed,
        },
        "test_time_flips": r.tta_flips,
        **r.operating_point,
        "interactive": interactive_card(r.interactive, r.parent_interactive, getattr(r.args, "click_rounds", 1)),
        "machine": machine_info(r.procs.threads, r.procs.device),
        "notes": "Research demonstration trained on public data with synthetic (pseudo) NBI; "
        "not a diagnostic device.",
    }
