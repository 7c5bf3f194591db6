"""Validation during training: per-image Dice at the validation size, averaged per group, and
the false-positive rate on tumour-free images; rank 0 only. The same figure decides the best
epoch, early stopping, and whether a new version beats its parent (training.release)."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from training.metrics import dice_score


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
