"""Each ADF loss term against values worked out by hand on tiny tensors."""
from __future__ import annotations

import math

import pytest
import torch

from model.adf import ADFOutput
from model.losses import (
    adf_loss,
    align_loss,
    aux_weight,
    dacl_loss,
    diff_loss,
    mmd_loss,
    orth_loss,
    seg_loss,
)

E1, E2, E3 = torch.eye(3)


def test_seg_loss_hand_values() -> None:
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)  # p = 0.5, 0.75
    target = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    bce, dice = seg_loss(logits, target)
    assert bce.item() == pytest.approx((math.log(2) + math.log(4)) / 2, rel=1e-6)
    # inter 0.5, sum p 1.25, sum t 1, smooth 1: 1 - 2/3.25
    assert dice.item() == pytest.approx(1 - 2 / 3.25, rel=1e-6)


def test_tversky_at_half_is_the_dice_loss_and_weights_misses_above_it() -> None:
    """fn_weight 0.5 is the soft Dice loss releases 1-4 trained with, on any input; above it a
    prediction that misses lesion pixels costs more than one that adds as many outside it."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 1, 9, 9, generator=g) * 3
    target = (torch.rand(4, 1, 9, 9, generator=g) > 0.6).float()
    target[3] = 0  # a tumour-free image
    p, t = torch.sigmoid(logits).flatten(1), target.flatten(1)
    dice_by_hand = (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()
    assert seg_loss(logits, target)[1].item() == pytest.approx(dice_by_hand.item(), rel=1e-6)
    assert seg_loss(logits, target, fn_weight=0.5)[1].item() == pytest.approx(dice_by_hand.item(), rel=1e-6)
    # hand values at 0.7: p = 0.5, 0.75 on target 1, 0 -> TP 0.5, FP 0.75, FN 0.5, smooth 1
    hand_logits = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    hand_target = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    expected = 1 - (0.5 + 0.5) / (0.5 + 0.3 * 0.75 + 0.7 * 0.5 + 0.5)
    assert seg_loss(hand_logits, hand_target, fn_weight=0.7)[1].item() == pytest.approx(expected, rel=1e-6)
    # a lesion of 8 pixels: missing 4 of them vs adding 4 outside it
    lesion = torch.zeros(1, 1, 4, 4)
    lesion[..., :2, :] = 1
    under, over = lesion.clone(), lesion.clone()
    under[..., 0, :] = 0
    over[..., 2, :] = 1
    big = 20.0  # saturated logits: probabilities 0/1

    def loss(pred: torch.Tensor, w: float) -> float:
        return seg_loss((pred * 2 - 1) * big, lesion, fn_weight=w)[1].item()

    # Dice already prefers over- to under-segmentation by the same count (TP differs); the miss
    # weight makes that preference much stronger
    at_half = loss(under, 0.5) / loss(over, 0.5)
    assert loss(under, 0.7) / loss(over, 0.7) > 1.5 * at_half > 1.5


def test_align_diff_orth_hand_values() -> None:
    a = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # (1,2,2): two tokens
    b = torch.tensor([[[0.0, 1.0], [1.0, 1.0]]])
    c = torch.tensor([[[-1.0, 0.0], [0.0, 2.0]]])
    assert align_loss(a, b).item() == pytest.approx((1 + (1 - 1 / math.sqrt(2))) / 2, rel=1e-6)
    assert diff_loss(a, c).item() == pytest.approx((0.0 + 0.5) / 2, abs=1e-7)
    assert orth_loss(a, b).item() == pytest.approx((0.0 + 0.5) / 2, rel=1e-6)
    assert align_loss(a, 3 * a).item() == pytest.approx(0.0, abs=1e-6)


def test_dacl_single_pair() -> None:
    # s(a,p)=1; negatives are the two specific features with s=0 -> -1/tau + log 2
    sw, sn = E1.view(1, 1, 3), (2 * E1).view(1, 1, 3)
    loss = dacl_loss(sw, sn, E2.view(1, 1, 3), (-E2).view(1, 1, 3))
    assert loss.item() == pytest.approx(-10 + math.log(2), rel=1e-6)


def test_dacl_two_pairs_decoupled() -> None:
    # pair0 shared = e1, pair1 shared = e2, all specific = e3.  For every anchor: positive 1,
    # negatives: the other pair's two shared (s=0) and four specific (s=0) -> -10 + log 6.
    # A coupled InfoNCE (positive in the denominator) would give log(e^10 + 6) - 10 ~ 2.7e-4.
    shared_w = torch.stack([E1, E2]).view(2, 1, 3)
    shared_n = shared_w.clone()
    spec = E3.expand(2, 1, 3)
    loss = dacl_loss(shared_w, shared_n, spec, spec)
    assert loss.item() == pytest.approx(-10 + math.log(6), rel=1e-6)
    # features are flattened per image: two identical tokens give the same normalised vector
    loss2 = dacl_loss(shared_w.expand(2, 2, 3), shared_n.expand(2, 2, 3), spec.expand(2, 2, 3), spec.expand(2, 2, 3))
    assert loss2.item() == pytest.approx(loss.item(), rel=1e-6)


def test_dacl_negative_similarity_raises_loss() -> None:
    shared_w = torch.stack([E1, E2]).view(2, 1, 3)
    spec_far = E3.expand(2, 1, 3)
    spec_close = (E1 + E2).expand(2, 1, 3)  # specific features resembling the shared ones
    assert dacl_loss(shared_w, shared_w, spec_close, spec_close) > dacl_loss(shared_w, shared_w, spec_far, spec_far)


def test_mmd_hand_values() -> None:
    x, y = torch.tensor([[0.0]]), torch.tensor([[1.0]])
    assert mmd_loss(x, y, bandwidths=[1.0]).item() == pytest.approx(2 - 2 * math.exp(-1), rel=1e-6)
    assert mmd_loss(x, y, bandwidths=[1.0, 2.0]).item() == pytest.approx(
        4 - 2 * (math.exp(-1) + math.exp(-0.5)), rel=1e-6
    )
    # median heuristic: the only distance^2 is 4 -> bandwidths 1, 2, 4, 8, 16
    kxy = sum(math.exp(-4 / bw) for bw in (1, 2, 4, 8, 16))
    assert mmd_loss(x, torch.tensor([[2.0]])).item() == pytest.approx(10 - 2 * kxy, rel=1e-5)


def test_mmd_zero_for_identical_and_grows_with_shift() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, generator=g)
    assert abs(mmd_loss(x, x.clone()).item()) < 1e-5
    y = torch.randn(16, 8, generator=g)
    vals = [mmd_loss(x, y + s).item() for s in (0.0, 0.5, 1.0, 2.0)]
    assert vals[0] < vals[1] < vals[2] < vals[3]
    assert vals[3] > 10 * max(vals[0], 1e-3)


def test_aux_weight_ramp() -> None:
    assert [aux_weight(p) for p in (0.0, 0.25, 0.5, 0.9, 1.0)] == pytest.approx([0, 0.025, 0.05, 0.05, 0.05])


def _fake_out(present: list[bool]) -> ADFOutput:
    g = torch.Generator().manual_seed(3)
    b = len(present)

    def r(*s: int) -> torch.Tensor:
        return torch.randn(*s, generator=g)

    return ADFOutput(
        logits=r(b, 1, 4, 4),
        wli_stage_tokens=[r(b, 4, 5)],
        nbi_stage_tokens=[r(b, 4, 5)],
        shared_w=r(b, 4, 6),
        shared_n=r(b, 4, 6),
        spec_w=r(b, 4, 6),
        spec_n=r(b, 4, 6),
        nbi_present=torch.tensor(present),
        wli_pooled=[r(b, 10), r(b, 12)],
        nbi_pooled=[r(b, 10), r(b, 12)],
    )


def test_adf_loss_passes_the_miss_weight_to_the_overlap_term() -> None:
    out = _fake_out([True, True, True])
    target = (torch.arange(48).view(3, 1, 4, 4) % 3 == 0).float()
    _, at_half = adf_loss(out, target, progress=0.25)
    _, recall = adf_loss(out, target, progress=0.25, fn_weight=0.8)
    assert recall["dice"] == pytest.approx(seg_loss(out.logits, target, fn_weight=0.8)[1].item(), rel=1e-6)
    assert recall["dice"] != pytest.approx(at_half["dice"], rel=1e-3)


def test_adf_loss_combination() -> None:
    out = _fake_out([True, True, True])
    target = (torch.arange(48).view(3, 1, 4, 4) % 3 == 0).float()
    total, parts = adf_loss(out, target, progress=0.25)
    bce, dice = seg_loss(out.logits, target)
    align = align_loss(out.shared_w, out.shared_n)
    diff = diff_loss(out.spec_w, out.spec_n)
    orth = (orth_loss(out.spec_w, out.shared_w) + orth_loss(out.spec_n, out.shared_n)) / 2
    dacl = dacl_loss(out.shared_w, out.shared_n, out.spec_w, out.spec_n)
    mmd = (mmd_loss(out.wli_pooled[0], out.nbi_pooled[0]) + mmd_loss(out.wli_pooled[1], out.nbi_pooled[1])) / 2
    w = 0.025
    want = 0.5 * bce + 0.5 * dice + w * (align + diff + orth) / 3 + 0.01 * w * dacl + 1e-4 * mmd
    assert total.item() == pytest.approx(want.item(), rel=1e-6)
    assert parts["w"] == pytest.approx(w)
    assert parts["mmd"] == pytest.approx(mmd.item(), rel=1e-6)
    plain, pparts = adf_loss(out, target, progress=0.25, aux=False)
    assert plain.item() == pytest.approx((0.5 * bce + 0.5 * dice).item(), rel=1e-6)
    assert "dacl" not in pparts
    # progress 0: w = 0, only seg + MMD remain
    t0, _ = adf_loss(out, target, progress=0.0)
    assert t0.item() == pytest.approx((0.5 * bce + 0.5 * dice + 1e-4 * mmd).item(), rel=1e-6)


def test_adf_loss_uses_only_samples_with_nbi() -> None:
    out = _fake_out([True, False, True])
    target = torch.zeros(3, 1, 4, 4)
    _, parts = adf_loss(out, target, progress=1.0)
    keep = torch.tensor([True, False, True])
    assert parts["align"] == pytest.approx(align_loss(out.shared_w[keep], out.shared_n[keep]).item(), rel=1e-6)
    assert parts["dacl"] == pytest.approx(
        dacl_loss(out.shared_w[keep], out.shared_n[keep], out.spec_w[keep], out.spec_n[keep]).item(), rel=1e-6
    )
    none = _fake_out([False, False, False])
    _, parts = adf_loss(none, target, progress=1.0)
    assert parts["align"] == parts["diff"] == parts["dacl"] == parts["mmd"] == 0.0
    assert parts["orth"] == pytest.approx(orth_loss(none.spec_w, none.shared_w).item(), rel=1e-6)
