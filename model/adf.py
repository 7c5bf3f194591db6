"""The Align-Disentangle-Fusion network (after arXiv 2508.16882), sized for a laptop CPU.

Structure (DESIGN.md "The ADF network"):
- two unshared 4-stage hierarchical transformer encoders (MiT style: overlapping patch
  embedding, spatial-reduction attention, Mix-FFN), one for WLI and one for NBI;
- every stage's tokens are pooled (mean + learned attention pooling, one pooling module per
  stage shared by both modalities so both land in one space) for the multi-scale MMD loss;
- four token-wise MLP heads on the deepest stage give shared_w, spec_w, shared_n, spec_n;
- fusion = MLP(spec_w) + MLP([shared_w; shared_n]) + MLP(spec_n), the deepest level of a light
  top-down (FPN-like, all-linear lateral) decoder; with ``nbi_skips`` (release 3) every
  shallower skip is the sum of the WLI and the NBI stream's projection of that stage, so the
  registered NBI can shape the boundary at every scale. Release 1-2 networks (``nbi_skips``
  false) took the skips from WLI only, and learned to ignore NBI.

Missing streams (a case without NBI, modality dropout in training, the NBI-only ablation): for
samples whose ``nbi_present`` is False the NBI-side features are replaced by
    shared_n := shared_w            (the shared part is modality-invariant by construction, so
                                     the WLI estimate is the best stand-in),
    spec_n   := a learned token     (``nbi_spec_standin``), and each NBI skip by a learned vector;
and symmetrically for ``wli_present`` False (``wli_spec_standin``, WLI skip stand-ins).  Training
drops either stream, so each must segment alone and an ignored stream shows in the ablations.
When no sample of a batch has NBI the NBI encoder is not run at all (half the cost); the NBI
token lists in ADFOutput are then empty and the NBI-dependent losses are skipped.

Interactive mode (``click_chans`` 3, issue 16): maps of positive clicks, negative clicks and the
current mask enter both streams through one zero-initialised, bias-free patch embedding added
to the first stage; with no clicks (or all-zero maps) the network is exactly the automatic one.

Any input H, W works: inputs are replicate-padded to a multiple of the total stride (32) and
the logits cropped back.  Layout is channels_last-friendly: tokens (B, N, C) are views of NHWC
feature maps, so convs and linears hand data to each other without copies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import ADFConfig


@dataclass
class ADFOutput:
    """What ADFNet.forward returns: the logits and the features the losses need."""

    logits: Tensor  # (B,1,H,W)
    wli_stage_tokens: list[Tensor]  # per stage (B, N_s, C_s)
    nbi_stage_tokens: list[Tensor]  # per stage, [] when the NBI encoder did not run
    shared_w: Tensor  # (B,N,D)
    shared_n: Tensor  # (B,N,D) (stand-in rows where nbi_present is False)
    spec_w: Tensor  # (B,N,D)
    spec_n: Tensor  # (B,N,D) (stand-in rows where nbi_present is False)
    nbi_present: Tensor  # (B,) bool
    wli_pooled: list[Tensor] = field(default_factory=list)  # per align stage (B, 2*C_s)
    nbi_pooled: list[Tensor] = field(default_factory=list)  # per align stage, [] without NBI
    wli_present: Tensor | None = None  # (B,) bool; False = an NBI-only sample (stand-in rows)


def _tokens_to_map(x: Tensor, h: int, w: int) -> Tensor:
    """(B,N,C) -> (B,C,H,W) as a channels_last view (no copy when x is contiguous)."""
    b, _, c = x.shape
    return x.reshape(b, h, w, c).permute(0, 3, 1, 2)


def _map_to_tokens(x: Tensor) -> Tensor:
    """(B,C,H,W) -> (B,N,C); a view when x is channels_last."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


class OverlapPatchEmbed(nn.Module):
    """Strided conv with kernel > stride (overlapping patches) + LayerNorm."""

    def __init__(self, in_ch: int, dim: int, patch: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, patch, stride, patch // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, extra: Tensor | None = None) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        if extra is not None:
            x = x + extra
        _, _, h, w = x.shape
        return self.norm(_map_to_tokens(x)), h, w


class SRAttention(nn.Module):
    """Multi-head attention whose keys/values come from a spatially reduced map (PVT/MiT)."""

    def __init__(self, dim: int, heads: int, sr: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, sr)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b, n, c = x.shape
        hd = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, hd).transpose(1, 2)
        if self.sr_ratio > 1:
            kv_in = self.norm(_map_to_tokens(self.sr(_tokens_to_map(x, h, w))))
        else:
            kv_in = x
        kv = self.kv(kv_in).reshape(b, -1, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class MixFFN(nn.Module):
    """Linear -> 3x3 depthwise conv (positional information) -> GELU -> Linear."""

    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        hid = dim * ratio
        self.fc1 = nn.Linear(dim, hid)
        self.dw = nn.Conv2d(hid, hid, 3, 1, 1, groups=hid)
        self.fc2 = nn.Linear(hid, dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = self.fc1(x)
        x = _map_to_tokens(self.dw(_tokens_to_map(x, h, w).contiguous(memory_format=torch.channels_last)))
        return self.fc2(F.gelu(x))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, sr: int, ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SRAttention(dim, heads, sr)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, ratio)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.ffn(self.norm2(x), h, w)


class Encoder(nn.Module):
    """One modality's 4-stage hierarchical transformer."""

    def __init__(self, cfg: ADFConfig) -> None:
        super().__init__()
        self.embeds = nn.ModuleList()
        self.stages = nn.ModuleList()
        self.norms = nn.ModuleList()
        in_ch = cfg.in_chans
        for i, dim in enumerate(cfg.embed_dims):
            self.embeds.append(OverlapPatchEmbed(in_ch, dim, cfg.patch_sizes[i], cfg.strides[i]))
            self.stages.append(
                nn.ModuleList(
                    Block(dim, cfg.num_heads[i], cfg.sr_ratios[i], cfg.mlp_ratios[i])
                    for _ in range(cfg.depths[i])
                )
            )
            self.norms.append(nn.LayerNorm(dim))
            in_ch = dim

    def forward(self, x: Tensor, extra0: Tensor | None = None) -> tuple[list[Tensor], list[tuple[int, int]]]:
        """Returns per-stage tokens (B,N_s,C_s) and their grid sizes.

        ``extra0`` (B,C_0,h,w) is added to the first patch embedding before its norm: the
        interactive mode's click maps enter here (all zeros = exactly the automatic network)."""
        tokens, sizes = [], []
        for i, (embed, blocks, norm) in enumerate(zip(self.embeds, self.stages, self.norms, strict=True)):
            t, h, w = embed(x, extra0 if i == 0 else None)
            for blk in blocks:
                t = blk(t, h, w)
            t = norm(t)
            tokens.append(t)
            sizes.append((h, w))
            x = _tokens_to_map(t, h, w)
        return tokens, sizes


class AttnPool(nn.Module):
    """Mean pooling concatenated with learned attention pooling over tokens -> (B, 2C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1, bias=False)  # softmax is shift-invariant: a bias would never learn

    def forward(self, x: Tensor) -> Tensor:
        a = torch.softmax(self.score(x).float(), dim=1).to(x.dtype)  # (B,N,1)
        return torch.cat([x.mean(dim=1), (a * x).sum(dim=1)], dim=-1)


def _mlp(i: int, o: int, hidden: int | None = None) -> nn.Sequential:
    hidden = hidden or o
    return nn.Sequential(nn.Linear(i, hidden), nn.GELU(), nn.Linear(hidden, o))


class ADFNet(nn.Module):
    """Two-stream ADF segmentation network; see the module docstring."""

    def __init__(self, cfg: ADFConfig, init_weights: bool = True) -> None:
        """``init_weights=False`` skips the random init (model files overwrite every weight anyway;
        the init is ~0.3 s of the app's model load on 2 cores)."""
        super().__init__()
        self.cfg = cfg
        c4 = cfg.embed_dims[-1]
        d = cfg.disent_dim
        self.enc_w = Encoder(cfg)
        self.enc_n = Encoder(cfg)
        self.pools = nn.ModuleList(AttnPool(cfg.embed_dims[s]) for s in cfg.align_stages)
        self.head_shared_w = _mlp(c4, d)
        self.head_spec_w = _mlp(c4, d)
        self.head_shared_n = _mlp(c4, d)
        self.head_spec_n = _mlp(c4, d)
        self.nbi_spec_standin = nn.Parameter(torch.zeros(1, 1, d))
        self.fuse_spec_w = _mlp(d, c4)
        self.fuse_shared = _mlp(2 * d, c4)
        self.fuse_spec_n = _mlp(d, c4)
        dd = cfg.decoder_dim
        self.dec_proj = nn.ModuleList(nn.Linear(c, dd) for c in cfg.embed_dims)
        if cfg.nbi_skips:
            # NBI's own projection of each skip level, and what stands in for a missing stream
            n_skip = len(cfg.embed_dims) - 1
            self.dec_proj_n = nn.ModuleList(nn.Linear(c, dd) for c in cfg.embed_dims[:-1])
            self.skip_standin_w = nn.Parameter(torch.zeros(n_skip, dd))
            self.skip_standin_n = nn.Parameter(torch.zeros(n_skip, dd))
            self.wli_spec_standin = nn.Parameter(torch.zeros(1, 1, d))
        if cfg.click_chans:
            # positive clicks, negative clicks, current mask -> added to both streams' first
            # patch embedding; no bias, zero init: no clicks = the automatic network, exactly
            self.click_embed = nn.Conv2d(cfg.click_chans, cfg.embed_dims[0], cfg.patch_sizes[0],
                                         cfg.strides[0], cfg.patch_sizes[0] // 2, bias=False)
        self.dec_fuse = nn.Sequential(nn.Conv2d(dd, dd, 1, bias=False), nn.BatchNorm2d(dd), nn.ReLU(inplace=True))
        self.dec_pred = nn.Conv2d(dd, 1, 1)
        if init_weights:
            self.apply(self._init)
            nn.init.trunc_normal_(self.nbi_spec_standin, std=0.02)
            self.zero_new_paths()
            if cfg.nbi_skips:
                nn.init.trunc_normal_(self.wli_spec_standin, std=0.02)

    @torch.no_grad()
    def zero_new_paths(self) -> None:
        """Zero the click embedding (so no clicks = automatic mode from the first step).

        Also called after loading an older network's weights into this one (``upgrade_state``):
        with the NBI skip projections and stand-ins at zero, the upgraded network computes what
        the old one did, and training grows the new paths from there."""
        if self.cfg.click_chans:
            nn.init.zeros_(self.click_embed.weight)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm | nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def _pad(self, x: Tensor) -> Tensor:
        s = self.cfg.total_stride
        h, w = x.shape[-2:]
        ph, pw = (-h) % s, (-w) % s
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x.contiguous(memory_format=torch.channels_last)

    def forward(self, wli: Tensor, nbi: Tensor | None = None, nbi_present: Tensor | None = None,
                wli_present: Tensor | None = None, clicks: Tensor | None = None) -> ADFOutput:
        """wli, nbi: normalised (B,3,H,W) (NBI registered to WLI, same size).

        ``nbi_present`` / ``wli_present``: (B,) bool, which streams a sample has (modality
        dropout in training; the NBI-only ablation). A sample must keep at least one.
        ``clicks``: (B,3,H,W) maps of positive clicks, negative clicks and the current mask in
        [0,1] (interactive mode); None or all zeros = automatic mode.
        """
        b, _, h, w = wli.shape
        dev = wli.device
        if nbi is None:
            present = torch.zeros(b, dtype=torch.bool, device=dev)
        elif nbi_present is None:
            present = torch.ones(b, dtype=torch.bool, device=dev)
        else:
            present = nbi_present.to(device=dev, dtype=torch.bool)
        if nbi is not None and nbi.shape != wli.shape:
            raise ValueError(f"nbi shape {tuple(nbi.shape)} != wli shape {tuple(wli.shape)}")
        wpres = torch.ones(b, dtype=torch.bool, device=dev) if wli_present is None else \
            wli_present.to(device=dev, dtype=torch.bool)
        if not bool(wpres.all()):
            if not self.cfg.nbi_skips:
                raise ValueError("this network has no NBI-only path (config nbi_skips is false)")
            if bool((~wpres & ~present).any()):
                raise ValueError("a sample has neither WLI nor NBI")
        all_w = bool(wpres.all())
        run_nbi = nbi is not None and bool(present.any())

        extra0 = None
        if clicks is not None and self.cfg.click_chans:
            if clicks.shape[0] != b or clicks.shape[1] != self.cfg.click_chans or clicks.shape[-2:] != (h, w):
                raise ValueError(f"clicks shape {tuple(clicks.shape)} != (B,{self.cfg.click_chans},H,W)")
            extra0 = self.click_embed(self._pad(clicks.to(wli.dtype)))

        tw, sizes = self.enc_w(self._pad(wli), extra0)
        shared_w = self.head_shared_w(tw[-1])
        spec_w = self.head_spec_w(tw[-1])
        wli_pooled = [self.pools[i](tw[s]) for i, s in enumerate(self.cfg.align_stages)]
        standin = self.nbi_spec_standin.to(spec_w.dtype).expand_as(spec_w)
        if run_nbi:
            tn, _ = self.enc_n(self._pad(nbi), extra0)
            nbi_pooled = [self.pools[i](tn[s]) for i, s in enumerate(self.cfg.align_stages)]
            sh_n = self.head_shared_n(tn[-1])
            sp_n = self.head_spec_n(tn[-1])
            if bool(present.all()):
                shared_n, spec_n = sh_n, sp_n
            else:
                m = present.view(b, 1, 1)
                shared_n = torch.where(m, sh_n, shared_w)
                spec_n = torch.where(m, sp_n, standin)
        else:
            tn, nbi_pooled = [], []
            shared_n, spec_n = shared_w, standin
        if not all_w:
            # NBI-only samples: the WLI side is stood in for as the NBI side is in WLI-only mode
            m = wpres.view(b, 1, 1)
            shared_w = torch.where(m, shared_w, shared_n)
            spec_w = torch.where(m, spec_w, self.wli_spec_standin.to(spec_w.dtype).expand_as(spec_w))

        fused = (
            self.fuse_spec_w(spec_w)
            + self.fuse_shared(torch.cat([shared_w, shared_n], dim=-1))
            + self.fuse_spec_n(spec_n)
        )
        # top-down decoder: project every level to decoder_dim, upsample 2x and add the next
        # shallower level (skips), then BN-ReLU-1x1 at 1/4 resolution.  Cheaper than
        # SegFormer's concat of four maps upsampled straight to 1/4 (measured ~20 % faster
        # training steps at 256 px, most of it in the bilinear backward).  With nbi_skips every
        # skip is the sum of both streams' projections (a missing stream: its learned stand-in),
        # so NBI can shape the boundary at every scale, not only through the deepest tokens.
        n_lv = len(sizes)
        y: Tensor | None = None
        for lv in reversed(range(n_lv)):
            hs, ws = sizes[lv]
            if lv == n_lv - 1:
                t = self.dec_proj[lv](fused)
            else:
                t = self._skip(lv, tw[lv], tn[lv] if run_nbi else None, wpres, present, all_w)
            m = _tokens_to_map(t, hs, ws)
            y = m if y is None else m + F.interpolate(y, size=(hs, ws), mode="bilinear", align_corners=False)
        x = self.dec_pred(self.dec_fuse(y))
        h1, w1 = sizes[0]
        hp, wp = h1 * self.cfg.strides[0], w1 * self.cfg.strides[0]
        logits = F.interpolate(x, size=(hp, wp), mode="bilinear", align_corners=False)[:, :, :h, :w]
        return ADFOutput(
            logits=logits,
            wli_stage_tokens=tw,
            nbi_stage_tokens=tn,
            shared_w=shared_w,
            shared_n=shared_n,
            spec_w=spec_w,
            spec_n=spec_n,
            nbi_present=present,
            wli_pooled=wli_pooled,
            nbi_pooled=nbi_pooled,
            wli_present=wpres,
        )

    def _skip(self, lv: int, t_w: Tensor, t_n: Tensor | None, wpres: Tensor, npres: Tensor,
              all_w: bool) -> Tensor:
        """One decoder skip level (B,N,dd): WLI's projection, plus NBI's where it is fused."""
        pw = self.dec_proj[lv](t_w)
        if not self.cfg.nbi_skips:
            return pw
        b = pw.shape[0]
        sw = self.skip_standin_w[lv].to(pw.dtype)
        sn = self.skip_standin_n[lv].to(pw.dtype)
        if not all_w:
            pw = torch.where(wpres.view(b, 1, 1), pw, sw.expand_as(pw))
        if t_n is None:
            return pw + sn
        pn = self.dec_proj_n[lv](t_n)
        if not bool(npres.all()):
            pn = torch.where(npres.view(b, 1, 1), pn, sn.expand_as(pn))
        return pw + pn


def upgrade_state(net: ADFNet, old_state: dict[str, Tensor]) -> list[str]:
    """Load an older network's weights (e.g. release 2, without NBI skips or clicks) into ``net``.

    Every tensor the old network has must fit; the new paths start at zero (see
    ``ADFNet.zero_new_paths``), so the upgraded network first computes what the old one did.
    Returns the names of the tensors that were new."""
    want = net.state_dict()
    unknown = sorted(set(old_state) - set(want))
    if unknown:
        raise ValueError(f"the old weights have tensors this network lacks: {unknown[:3]}")
    for k, v in old_state.items():
        if tuple(v.shape) != tuple(want[k].shape):
            raise ValueError(f"tensor {k}: old shape {list(v.shape)}, new {list(want[k].shape)}")
    new = sorted(set(want) - set(old_state))
    with torch.no_grad():
        for k in new:
            if not k.startswith(("dec_proj_n.", "skip_standin_", "wli_spec_standin", "click_embed.")):
                raise ValueError(f"no rule to initialise new tensor {k}")
            if k != "wli_spec_standin":
                want[k].zero_()
    net.load_state_dict({**{k: want[k] for k in new}, **old_state}, strict=True)
    return new


def count_params(net: nn.Module) -> int:
    """Number of parameters (for cards and benchmarks)."""
    return sum(p.numel() for p in net.parameters())
