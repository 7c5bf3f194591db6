"""Dataclass presets for the ADF network.

The config is saved next to the weights (model card) and is the only thing needed to rebuild
the network before loading them, so it must round-trip exactly through JSON (`to_dict` /
`from_dict`, strict about keys so a card from another version is refused, not half-loaded).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ADFConfig:
    """Hyper-parameters of one ADF network (see DESIGN.md "The ADF network").

    Each stream is a 4-stage hierarchical transformer (MiT/SegFormer style): overlapping patch
    embedding, spatial-reduction attention, Mix-FFN.  The disentangle heads work on the deepest
    stage's tokens; `align_stages` are the stages whose pooled tokens enter the MMD loss.
    """

    preset: str = "tiny"
    input_size: int = 256
    in_chans: int = 3
    embed_dims: tuple[int, ...] = (32, 64, 160, 256)
    depths: tuple[int, ...] = (1, 1, 2, 1)
    num_heads: tuple[int, ...] = (1, 2, 5, 8)
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)
    mlp_ratios: tuple[int, ...] = (4, 4, 4, 4)
    patch_sizes: tuple[int, ...] = (7, 3, 3, 3)
    strides: tuple[int, ...] = (4, 2, 2, 2)
    disent_dim: int = 128
    decoder_dim: int = 64
    align_stages: tuple[int, ...] = (0, 1, 2, 3)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    # Release 3 (issue 15, 16). Cards written before these fields existed get LEGACY_DEFAULTS.
    nbi_skips: bool = True  # decoder skips fused from both streams at every scale (else WLI only)
    click_chans: int = 3  # interactive-mode input maps (positive clicks, negative clicks, mask); 0 = none

    def __post_init__(self) -> None:
        n = len(self.embed_dims)
        for name in ("depths", "num_heads", "sr_ratios", "mlp_ratios", "patch_sizes", "strides"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ADFConfig.{name} must have {n} entries")
        for d, h in zip(self.embed_dims, self.num_heads, strict=True):
            if d % h:
                raise ValueError(f"embed dim {d} not divisible by {h} heads")
        if any(not 0 <= s < n for s in self.align_stages):
            raise ValueError("align_stages out of range")
        if self.click_chans not in (0, 3):
            raise ValueError("click_chans must be 0 (automatic only) or 3 (positive, negative, mask)")

    @property
    def total_stride(self) -> int:
        """Product of stage strides: inputs are padded to a multiple of this internally."""
        out = 1
        for s in self.strides:
            out *= s
        return out

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> ADFConfig:
        """Strict inverse of `to_dict`: unknown or missing keys raise ValueError.

        Keys added after the first release are the exception: a card without them is an older
        network, rebuilt with ``LEGACY_DEFAULTS`` (what those networks were), not refused."""
        names = {f.name for f in fields(cls)}
        d = {**{k: v for k, v in LEGACY_DEFAULTS.items() if k not in d}, **d}
        unknown = set(d) - names
        missing = names - set(d)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        if missing:
            raise ValueError(f"missing config keys: {sorted(missing)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)


# What a card written before a field existed means by its absence: the network it describes.
LEGACY_DEFAULTS: dict[str, object] = {"nbi_skips": False, "click_chans": 0}

_PRESETS: dict[str, ADFConfig] = {
    # The bundled CPU model: MiT-B0 widths with fewer blocks, 256 px.
    "tiny": ADFConfig(),
    # Closer to the paper's capacity (MiT-B2-like streams) for GPU users.
    "base": ADFConfig(
        preset="base",
        input_size=352,
        embed_dims=(64, 128, 320, 512),
        depths=(3, 4, 6, 3),
        num_heads=(1, 2, 5, 8),
        disent_dim=256,
        decoder_dim=256,
    ),
}


def get_preset(name: str) -> ADFConfig:
    """Return the named preset ("tiny" or "base")."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(_PRESETS)}") from None
