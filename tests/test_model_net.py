"""ADFNet: shapes for odd sizes, the WLI-only path, bf16 autocast, gradients everywhere."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from model.adf import ADFNet, ADFOutput
from model.config import ADFConfig, get_preset
from model.losses import adf_loss


def small_cfg() -> ADFConfig:
    """A narrow config with the tiny preset's structure, so tests stay fast."""
    return dataclasses.replace(
        get_preset("tiny"), embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4), disent_dim=16, decoder_dim=8
    )


@pytest.fixture(scope="module")
def tiny_net() -> ADFNet:
    torch.manual_seed(0)
    return ADFNet(dataclasses.replace(small_cfg(), embed_dims=(16, 32, 48, 64), disent_dim=32)).eval()


def test_tiny_preset_forward() -> None:
    torch.manual_seed(0)
    net = ADFNet(get_preset("tiny")).eval()
    assert 3e6 < sum(p.numel() for p in net.parameters()) < 8e6
    with torch.inference_mode():
        out = net(torch.randn(1, 3, 67, 45), torch.randn(1, 3, 67, 45))
    assert out.logits.shape == (1, 1, 67, 45)


@pytest.mark.parametrize("hw", [(37, 51), (65, 33), (97, 130)])
def test_odd_shapes_pair(tiny_net: ADFNet, hw: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *hw)
    with torch.inference_mode():
        out = tiny_net(x, torch.randn(2, 3, *hw))
    assert isinstance(out, ADFOutput)
    assert out.logits.shape == (2, 1, *hw)
    assert torch.isfinite(out.logits).all()
    d = tiny_net.cfg.disent_dim
    for t in (out.shared_w, out.shared_n, out.spec_w, out.spec_n):
        assert t.shape[0] == 2 and t.shape[2] == d
        assert t.shape[1] == out.wli_stage_tokens[-1].shape[1]
    assert len(out.wli_stage_tokens) == len(out.nbi_stage_tokens) == 4
    assert out.nbi_present.tolist() == [True, True]
    assert [p.shape[1] for p in out.wli_pooled] == [2 * c for c in tiny_net.cfg.embed_dims]


def test_wli_only_uses_standin(tiny_net: ADFNet) -> None:
    x = torch.randn(1, 3, 45, 70)
    with torch.inference_mode():
        out = tiny_net(x)
        mixed = tiny_net(torch.cat([x, x]), torch.randn(2, 3, 45, 70), torch.tensor([False, True]))
    assert out.logits.shape == (1, 1, 45, 70)
    assert out.nbi_stage_tokens == [] and out.nbi_pooled == []
    assert not out.nbi_present.any()
    assert torch.equal(out.shared_n, out.shared_w)
    standin = tiny_net.nbi_spec_standin.expand_as(out.spec_n)
    assert torch.equal(out.spec_n, standin)
    # in a mixed batch the absent sample gets exactly the WLI-only result, the other does not
    torch.testing.assert_close(mixed.logits[:1], out.logits, atol=1e-5, rtol=1e-4)
    assert torch.equal(mixed.spec_n[0], standin[0])
    assert not torch.equal(mixed.spec_n[1], standin[0])


def test_nbi_changes_prediction(tiny_net: ADFNet) -> None:
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        a = tiny_net(x, torch.randn(1, 3, 64, 64)).logits
        b = tiny_net(x, torch.randn(1, 3, 64, 64)).logits
    assert not torch.allclose(a, b)


def test_mismatched_nbi_shape_refused(tiny_net: ADFNet) -> None:
    with pytest.raises(ValueError, match="nbi shape"):
        tiny_net(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 65))


def test_bf16_autocast_channels_last(tiny_net: ADFNet) -> None:
    x = torch.randn(2, 3, 64, 96).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = tiny_net(x, x).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = tiny_net(x, x).logits
    assert out.shape == ref.shape
    assert torch.isfinite(out.float()).all()
    assert (out.float() - ref).abs().max() < 0.5


def _all_grads(net: ADFNet, present: list[bool], wli_present: list[bool] | None = None,
               clicks: bool = False) -> dict[str, float]:
    torch.manual_seed(1)
    x = torch.randn(len(present), 3, 64, 64)
    n = torch.randn(len(present), 3, 64, 64)
    target = (torch.rand(len(present), 1, 64, 64) > 0.5).float()
    net.zero_grad(set_to_none=True)
    wp = None if wli_present is None else torch.tensor(wli_present)
    ck = torch.rand(len(present), 3, 64, 64) if clicks else None
    out = net(x, n, torch.tensor(present), wp, ck)
    loss, parts = adf_loss(out, target, progress=0.6, aux=True)
    loss.backward()
    return {k: (0.0 if p.grad is None else float(p.grad.abs().sum())) for k, p in net.named_parameters()}


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = ADFNet(small_cfg()).train()
    grads = _all_grads(net, [True, True, True])
    # with both streams everywhere and no clicks the stand-ins and the click input are not used;
    # everything else must learn
    unused = {"nbi_spec_standin", "wli_spec_standin", "skip_standin_w", "skip_standin_n", "click_embed.weight"}
    dead = [k for k, g in grads.items() if g == 0.0 and k not in unused]
    assert dead == []
    assert all(grads[k] == 0.0 for k in unused)
    # with either stream dropped in the batch and clicks given, every parameter learns
    grads = _all_grads(net, [True, False, True, True], [True, True, False, True], clicks=True)
    assert [k for k, g in grads.items() if g == 0.0] == []


def test_presets_build() -> None:
    for name in ("tiny", "base"):
        cfg = get_preset(name)
        assert ADFConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        get_preset("huge")
    with pytest.raises(ValueError, match="unknown config keys"):
        ADFConfig.from_dict({**get_preset("tiny").to_dict(), "extra": 1})
