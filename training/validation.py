"""Validation during training: per-image Dice at the validation size, averaged per group, and
the false-positive rate on tumour-free images; rank 0 only. The same figure decides the best
epoch, early stopping, and whether a new version beats its parent (training.release)."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from training.metrics import bootstrap_ci, dice_score

# validate()'s per-image Dice of the tumour images, in the data set's order: kept for the paired
# comparison with the parent (held_out_gain), never logged or written into a card.
CASE_DICE = "case_dice"


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
    tumour = ``val_dice``); tumour-free images give the false-positive rate; ``CASE_DICE`` holds
    each tumour image's Dice, in order, for ``held_out_gain``."""
    net.eval()
    groups = ds.groups()
    per_group: dict[str, list[float]] = {}
    neg_fp: list[bool] = []
    case_dice: list[float] = []
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
                case_dice.append(dice_score(pred[k], gt[k]))
                per_group.setdefault(g, []).append(case_dice[-1])
            else:
                neg_fp.append(bool(pred[k].any()))
    set_train_mode(net, freeze_norm_stats)
    res: dict = {}
    for g, v in sorted(per_group.items()):
        res[f"val_dice_{g}"] = float(np.mean(v))
    res["val_dice"] = float(np.mean([np.mean(v) for v in per_group.values()])) if per_group else None
    res["val_fpr"] = float(np.mean(neg_fp)) if neg_fp else None
    res["val_n"] = len(ds)
    res[CASE_DICE] = case_dice
    return res


def without_cases(val: dict) -> dict:
    """A validation result without its per-image list: what logs and epoch records carry."""
    return {k: v for k, v in val.items() if k != CASE_DICE}


def held_out_gain(new: dict, parent: dict) -> dict | None:
    """The new version's held-out Dice minus its parent's on the same tumour images, with a 95 %
    bootstrap interval of that paired difference (``training.metrics.bootstrap_ci``).

    Why: a clinic's fine-tune is judged on a handful of held-out cases, where "better than the
    base model" can be one case's luck; the interval says how far the cases can tell the two apart.
    Cases of one patient are alike, so if anything the interval is too narrow. None when the two
    were not measured on the same two or more tumour images, or when the images form more than one
    group (``val_dice`` is then a mean over groups, not over images)."""
    a, b = new.get(CASE_DICE), parent.get(CASE_DICE)
    groups = [k for k in new if k.startswith("val_dice_")]
    if not a or not b or len(a) != len(b) or len(a) < 2 or len(groups) > 1:
        return None
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    ci = bootstrap_ci(diff)
    return {"val_dice_gain": float(diff.mean()), "val_dice_gain_ci95": list(ci) if ci else None,
            "val_dice_gain_n": int(len(diff))}
