"""Losses of the ADF network (DESIGN.md "The ADF network", after arXiv 2508.16882).

total = 0.5 BCE + 0.5 soft-Dice
        + w * mean(L_align, L_diff, L_orth) + 0.01 w * DACL + 1e-4 MMD
with w ramped linearly from 0 at progress 0 to 0.05 at progress 0.5, then held.

Choices the paper leaves open, fixed here:
- L_align, L_diff, L_orth are token-wise cosines along the feature axis, averaged over tokens
  and samples; L_orth = mean over both modalities of cos^2(spec, shared).
- DACL is symmetric (each shared feature of a pair serves once as anchor) and decoupled:
  the positive is not in the denominator.
- MMD is the biased V-statistic (exactly 0 for identical batches) with Gaussian kernels at
  bandwidths = median pairwise squared distance x (1/4, 1/2, 1, 2, 4), averaged over the
  `align_stages`' pooled features (mean + attention pooling, computed by ADFNet).
- Terms that need NBI use only the samples with both streams present (modality dropout removes
  either); with none they are 0.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_AUX_WEIGHT = 0.05
DACL_FACTOR = 0.01
MMD_WEIGHT = 1e-4
TAU = 0.1
MMD_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)


def seg_loss(
    logits: Tensor, target: Tensor, smooth: float = 1.0, fn_weight: float = 0.5
) -> tuple[Tensor, Tensor]:
    """(BCE-with-logits mean, soft Tversky loss averaged per image).

    ``fn_weight`` is the Tversky weight of missed tumour (false negatives; false positives get
    1 - fn_weight): 0.5 is exactly the soft Dice loss releases 1-4 trained with; above it the loss
    trades specificity for sensitivity, the answer to a model that ranks a lesion right but
    outlines too little of it (issue 15).
    """
    logits = logits.float()
    target = target.float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    tp = (p * t).sum(1)
    fp = p.sum(1) - tp
    fn = t.sum(1) - tp
    # (TP + s/2) / (TP + 0.5 FP + 0.5 FN + s/2) == (2 TP + s) / (|P| + |T| + s): Dice at 0.5
    half = 0.5 * smooth
    tversky = 1.0 - (tp + half) / (tp + (1.0 - fn_weight) * fp + fn_weight * fn + half)
    return bce, tversky.mean()


def _cos(a: Tensor, b: Tensor) -> Tensor:
    return F.cosine_similarity(a.float(), b.float(), dim=-1, eps=1e-6)


def align_loss(shared_w: Tensor, shared_n: Tensor) -> Tensor:
    """L_align = 1 - cos(shared_w, shared_n), token-wise, averaged."""
    return (1.0 - _cos(shared_w, shared_n)).mean()


def diff_loss(spec_w: Tensor, spec_n: Tensor) -> Tensor:
    """L_diff = (1 + cos(spec_w, spec_n)) / 2: pushes the specific parts apart."""
    return ((1.0 + _cos(spec_w, spec_n)) / 2.0).mean()


def orth_loss(spec: Tensor, shared: Tensor) -> Tensor:
    """L_orth = cos^2(spec, shared) for one modality."""
    return _cos(spec, shared).pow(2).mean()


def dacl_loss(shared_w: Tensor, shared_n: Tensor, spec_w: Tensor, spec_n: Tensor, tau: float = TAU) -> Tensor:
    """Disentangle-aware contrastive loss (decoupled InfoNCE), features (B,N,D) of paired samples.

    Per image the (N,D) features are flattened and L2-normalised.  For pair i and anchor
    shared_w[i] the positive is shared_n[i]; negatives are the other pairs' shared features
    (shared_w[j], shared_n[j], j != i) and all specific features (spec_w[k], spec_n[k], all k).
    loss_i = -s(a,p)/tau + log sum_neg exp(s(a,neg)/tau); symmetric over the two anchors.
    """
    b = shared_w.shape[0]
    zw = F.normalize(shared_w.flatten(1).float(), dim=1)
    zn = F.normalize(shared_n.flatten(1).float(), dim=1)
    sw = F.normalize(spec_w.flatten(1).float(), dim=1)
    sn = F.normalize(spec_n.flatten(1).float(), dim=1)
    shared_all = torch.cat([zw, zn], 0)  # (2B, F)
    spec_all = torch.cat([sw, sn], 0)  # (2B, F)
    other = ~torch.eye(b, dtype=torch.bool, device=zw.device)
    other2 = torch.cat([other, other], 1)  # (B, 2B): shared of pairs j != i
    losses = []
    for anchor, positive in ((zw, zn), (zn, zw)):
        pos = (anchor * positive).sum(1) / tau
        neg_shared = (anchor @ shared_all.T) / tau  # (B, 2B)
        neg_shared = neg_shared.masked_fill(~other2, float("-inf"))
        neg_spec = (anchor @ spec_all.T) / tau  # (B, 2B)
        denom = torch.logsumexp(torch.cat([neg_shared, neg_spec], 1), dim=1)
        losses.append(denom - pos)
    return torch.stack(losses).mean()


def _pairwise_sq(z: Tensor) -> Tensor:
    sq = (z * z).sum(1)
    return (sq[:, None] + sq[None, :] - 2.0 * z @ z.T).clamp_min(0.0)


def mmd_loss(
    x: Tensor,
    y: Tensor,
    bandwidths: Sequence[float] | None = None,
    multipliers: Sequence[float] = MMD_MULTIPLIERS,
) -> Tensor:
    """Multi-kernel Gaussian MMD^2 (biased) between batches x (m,d) and y (n,d).

    k(a,b) = sum_j exp(-|a-b|^2 / bw_j); bw_j = median pairwise squared distance (detached)
    times `multipliers`, unless `bandwidths` is given.
    """
    x = x.float().flatten(1)
    y = y.float().flatten(1)
    m = x.shape[0]
    d2 = _pairwise_sq(torch.cat([x, y], 0))
    if bandwidths is None:
        off = d2.detach()[~torch.eye(d2.shape[0], dtype=torch.bool, device=d2.device)]
        pos = off[off > 0]
        med = pos.median() if pos.numel() else torch.tensor(1.0, device=d2.device)
        bws = [med * k for k in multipliers]
    else:
        bws = list(bandwidths)
    k = sum(torch.exp(-d2 / bw) for bw in bws)
    return k[:m, :m].mean() + k[m:, m:].mean() - 2.0 * k[:m, m:].mean()


def aux_weight(progress: float) -> float:
    """w: 0 -> 0.05 linearly over the first half of training, then held."""
    return MAX_AUX_WEIGHT * min(max(progress, 0.0) / 0.5, 1.0)


def adf_loss(
    out, target: Tensor, progress: float, aux: bool = True, net=None, fn_weight: float = 0.5
) -> tuple[Tensor, dict[str, float]]:
    """Combined ADF loss for an ADFOutput `out` and target (B,1,H,W) in {0,1}.

    aux=False gives the plain segmentation loss (ablation).  `net` is accepted for the
    contract and unused: the pooling modules' outputs already travel in `out`.  ``fn_weight``:
    see ``seg_loss`` (0.5: Dice).
    Returns (total, parts) with parts as python floats for logging.
    """
    bce, dice = seg_loss(out.logits, target, fn_weight=fn_weight)
    total = 0.5 * bce + 0.5 * dice
    parts = {"bce": float(bce.detach()), "dice": float(dice.detach())}
    if aux:
        w = aux_weight(progress)
        zero = total.new_zeros(())
        wpres = out.wli_present if out.wli_present is not None else torch.ones_like(out.nbi_present)
        present = out.nbi_present & wpres  # the pair terms need both streams' own features
        orth_w = orth_loss(out.spec_w[wpres], out.shared_w[wpres]) if bool(wpres.any()) else zero
        if bool(present.any()) and out.nbi_stage_tokens:
            sh_w, sh_n = out.shared_w[present], out.shared_n[present]
            sp_w, sp_n = out.spec_w[present], out.spec_n[present]
            align = align_loss(sh_w, sh_n)
            diff = diff_loss(sp_w, sp_n)
            orth = 0.5 * (orth_w + orth_loss(sp_n, sh_n))
            dacl = dacl_loss(sh_w, sh_n, sp_w, sp_n)
            if int(present.sum()) >= 2:
                mmd = torch.stack(
                    [mmd_loss(pw[present], pn[present]) for pw, pn in zip(out.wli_pooled, out.nbi_pooled, strict=True)]
                ).mean()
            else:
                mmd = zero
            dis = (align + diff + orth) / 3.0
        else:
            align = diff = dacl = mmd = zero
            orth = orth_w
            dis = orth_w  # the only disentangle term defined without NBI
        total = total + w * dis + DACL_FACTOR * w * dacl + MMD_WEIGHT * mmd
        parts.update(
            w=w,
            align=float(align.detach()),
            diff=float(diff.detach()),
            orth=float(orth.detach()),
            dacl=float(dacl.detach()),
            mmd=float(mmd.detach()),
        )
    parts["total"] = float(total.detach())
    return total, parts


def distill_loss(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Soft-target BCE of the student's logits to the frozen parent's probability: holds the
    automatic output where the parent was right and wrong alike (fine-tuning for clicks must not
    move it; a hard target would teach the parent's threshold, not its confidence)."""
    return F.binary_cross_entropy_with_logits(student_logits.float(), torch.sigmoid(teacher_logits.float()))

