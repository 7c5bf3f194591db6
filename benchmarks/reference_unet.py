"""Reference single-stream U-Net (Ronneberger layout) for the inference benchmark.

4 downsamplings, double 3x3 conv + BatchNorm + ReLU per level, 32 base channels (32..512),
2x2 transposed-conv upsampling, skip concatenation, 1x1 output conv.  Padding keeps sizes.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def _double(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
        nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Input (B,3,H,W) with H, W multiples of 16 -> logits (B,1,H,W)."""

    def __init__(self, base: int = 32, in_ch: int = 3) -> None:
        super().__init__()
        ch = [base * 2**i for i in range(5)]
        self.downs = nn.ModuleList([_double(in_ch, ch[0])] + [_double(ch[i], ch[i + 1]) for i in range(4)])
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(ch[i + 1], ch[i], 2, 2) for i in reversed(range(4)))
        self.dec = nn.ModuleList(_double(2 * ch[i], ch[i]) for i in reversed(range(4)))
        self.out = nn.Conv2d(ch[0], 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, d in enumerate(self.downs):
            x = d(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.ups, self.dec, strict=True):
            x = dec(torch.cat([skips.pop(), up(x)], 1))
        return self.out(x)
