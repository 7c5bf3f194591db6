"""Torch datasets for training the ADF network: a workspace, an exported folder, the public sets.

Every dataset yields the same dict per sample, already augmented and normalised:
``wli`` (3,S,S) float, ``nbi`` (3,S,S) float (NBI warped into the WLI frame; zeros if absent),
``mask`` (1,S,S) float 0/1, ``nbi_present`` bool, ``index`` int, ``group`` str.

Why it is built this way:
- Randomness is derived per sample from ``(seed, epoch, index)``, not from a process-wide
  generator, so the same epoch gives the same images whatever the number of workers or DDP
  ranks, and ``--resume`` continues a run exactly.
- One geometric transform (flip, rotation, scale, shift) is built as a single affine matrix and
  applied to WLI, NBI and mask together (resizing to S happens in the same warp); photometric
  jitter is drawn independently per modality, as two cameras/light sources differ.
- The public sets have no NBI. Pseudo-NBI (model.pseudo_nbi) is synthesised with a random
  homography, then brought back into the WLI frame the way inference does it: the known
  homography plus a small random residual error (what an imperfect registration leaves); the
  two warps are composed so the NBI is resampled once. Running the real feature registration
  on every sample would cost more than the network step.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from training.copy_paste import CopyPasteConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ----------------------------------------------------------------------------- the fixed split
# Decided before any training; the same in training, evaluation and docs/MODEL.md.
#
# The laryngeal tumour appears in two recordings of one patient (seq1, seq2). A figure on frames
# of a recording the model trained on says little about a new recording (release 2 scored 0.947
# on a block of seq1 and 0.36 on seq2), so the laryngeal split is by recording: a fold trains on
# one tumour sequence and is measured on the other. "legacy" is releases 1-2's split (the first
# 21 frames of seq1 train, its last 11 "validate"), kept only to reproduce their commands.
VOCAL_TUMOUR_SEQS = ("patient1/seq1", "patient1/seq2")
VOCAL_TUMOUR_SEQ = "patient1/seq1"  # the legacy split's only tumour sequence
VOCAL_TUMOUR_TRAIN_N = 21  # legacy: first 21 frames of seq1 by name -> train, the rest -> "val"
VOCAL_NEG_TRAIN = ("patient1/seq3", "patient1/seq4", "patient2/seq5")
VOCAL_NEG_VAL = ("patient2/seq6",)
VOCAL_TUMOUR_LABEL = 4
# fold -> (tumour sequences trained on, tumour sequences measured on)
FOLDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "a": (("patient1/seq1",), ("patient1/seq2",)),
    "b": (("patient1/seq2",), ("patient1/seq1",)),
    "all": (VOCAL_TUMOUR_SEQS, ()),
    "legacy": ((VOCAL_TUMOUR_SEQ,), (VOCAL_TUMOUR_SEQ,)),
}
# Kvasir's validation split (every 5th name) is halved: "val_choose" (even positions) is what
# training may choose on (checkpoints, views, defaults), "val_report" (odd positions) is reported
# and chooses nothing.
KVASIR_SPLITS = ("train", "val", "val_choose", "val_report")


@dataclass(frozen=True)
class PublicItem:
    """One public image: where it is and which group of the split it belongs to."""

    group: str  # "kvasir" | "vocal_tumour" | "vocal_neg"
    image: Path
    label: Path
    name: str


def kvasir_split(root: Path, split: str) -> list[PublicItem]:
    """kvasir-seg-256, names sorted: index % 5 == 0 -> val (176, halved into val_choose and
    val_report by position), else train (704)."""
    if split not in KVASIR_SPLITS:
        raise ValueError(f"kvasir split must be one of {KVASIR_SPLITS}")
    names = sorted(p.name for p in (root / "images").glob("*.jpg"))
    keep = [n for i, n in enumerate(names) if (i % 5 == 0) == (split != "train")]
    if split == "val_choose":
        keep = keep[0::2]
    elif split == "val_report":
        keep = keep[1::2]
    return [
        PublicItem("kvasir", root / "images" / n, root / "masks" / (Path(n).stem + ".png"), "kvasir/" + n)
        for n in keep
    ]


def vocalfolds_split(root: Path, split: str, fold: str = "legacy") -> tuple[list[PublicItem], list[PublicItem]]:
    """(tumour-sequence frames, tumour-free frames) of the vocalfolds split.

    ``fold`` "a" trains on every frame of seq1 and measures on seq2, "b" the reverse, "all"
    trains on both (no laryngeal tumour validation); "legacy" is releases 1-2's block split of
    seq1. Tumour-free: seq3, seq4 (patient1), seq5 (patient2) train; patient2/seq6 val (a
    sequence never trained on, for false_positive_rate). Tumour sequences keep their few
    tumour-free frames (they are part of the recording).
    """
    if fold not in FOLDS:
        raise ValueError(f"unknown fold {fold!r}; choose one of {sorted(FOLDS)}")
    if split not in ("train", "val"):
        raise ValueError("split must be 'train' or 'val'")

    def items(seq: str, group: str) -> list[PublicItem]:
        files = sorted((root / "images" / seq).glob("*.png"))
        return [PublicItem(group, f, root / "labels" / seq / f.name, f"vocalfolds/{seq}/{f.name}") for f in files]

    if fold == "legacy":
        tum = items(VOCAL_TUMOUR_SEQ, "vocal_tumour")
        tum = tum[:VOCAL_TUMOUR_TRAIN_N] if split == "train" else tum[VOCAL_TUMOUR_TRAIN_N:]
    else:
        seqs = FOLDS[fold][0 if split == "train" else 1]
        tum = [it for s in seqs for it in items(s, "vocal_tumour")]
    neg_seqs = VOCAL_NEG_TRAIN if split == "train" else VOCAL_NEG_VAL
    neg = [it for s in neg_seqs for it in items(s, "vocal_neg")]
    return tum, neg


def read_public_label(item: PublicItem) -> np.ndarray:
    """Binary tumour mask: kvasir mask > 127; vocalfolds class map == 4."""
    lab = cv2.imread(str(item.label), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise FileNotFoundError(item.label)
    if lab.ndim == 3:
        lab = lab[..., 0]
    if item.group == "kvasir":
        return lab > 127
    return lab == VOCAL_TUMOUR_LABEL


def _read_rgb_cv(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------- augmentation
@dataclass(frozen=True)
class AugmentConfig:
    """Strength of the paired geometric and per-modality photometric augmentation."""

    hflip: float = 0.5
    vflip: float = 0.2
    rotate_deg: float = 20.0
    scale: tuple[float, float] = (0.8, 1.25)
    shift: float = 0.08  # fraction of the output size
    brightness: float = 0.15  # additive, on [0,1]
    contrast: float = 0.2  # multiplicative around the mean
    saturation: float = 0.2
    gamma: float = 0.2
    channel_gain: float = 0.05
    blur_p: float = 0.1
    scope: bool = False  # also training.scope_aug (another endoscope's image formation)


# Releases 1-2 trained with AugmentConfig(); release 3 ("scope") zooms out further, so a lesion
# appears as small as seq2's 1 % of the frame, and renders each image as another scope might.
AUG_PRESETS: dict[str, AugmentConfig] = {
    "basic": AugmentConfig(),
    "scope": AugmentConfig(scale=(0.6, 1.3), scope=True),
    # Issue 15: the unseen recording seq2 is darker and more contrasted than seq1 (LAB L 102 vs
    # 130) and matching its colour to seq1's lifted sensitivity 0.62 -> 0.76; "scope-wide" shows
    # the network exposures and tone curves that far apart (gamma 0.61-1.65, contrast +-40 %).
    "scope-wide": AugmentConfig(scale=(0.6, 1.3), scope=True, brightness=0.2, contrast=0.4, saturation=0.4,
                                gamma=0.5),
}


def geometric_matrix(
    src_hw: tuple[int, int], size: int, rng: np.random.Generator | None, aug: AugmentConfig
) -> np.ndarray:
    """2x3 affine mapping source pixels to the (size x size) output; rng None = plain resize."""
    h, w = src_hw
    sx, sy = size / w, size / h  # aspect not kept, as the predictor resizes
    flip_x = flip_y = 1.0
    ang = 0.0
    s = 1.0
    tx = ty = 0.0
    if rng is not None:
        flip_x = -1.0 if rng.random() < aug.hflip else 1.0
        flip_y = -1.0 if rng.random() < aug.vflip else 1.0
        ang = math.radians(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
        s = math.exp(rng.uniform(math.log(aug.scale[0]), math.log(aug.scale[1])))
        tx, ty = rng.uniform(-aug.shift, aug.shift, size=2) * size
    # centre the source at the origin, scale to output, flip, rotate+zoom, move to output centre
    c = np.array([[1, 0, -w / 2.0], [0, 1, -h / 2.0], [0, 0, 1]])
    base = np.diag([sx * flip_x, sy * flip_y, 1.0])
    cos, sin = math.cos(ang) * s, math.sin(ang) * s
    rot = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    out = np.array([[1, 0, size / 2.0 + tx], [0, 1, size / 2.0 + ty], [0, 0, 1]])
    return (out @ rot @ base @ c)[:2]


def _prescale(img: np.ndarray, size: int, interp: int, slack: float = 1.4) -> tuple[np.ndarray, float]:
    """Area-downscale an image much bigger than the output first, so the warp does not alias."""
    h, w = img.shape[:2]
    f = slack * size / max(h, w)
    if f >= 1.0:
        return img, 1.0
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    return cv2.resize(img, (nw, nh), interpolation=interp), f


def paired_geometric(
    wli: np.ndarray,
    nbi: np.ndarray | None,
    nbi_h: np.ndarray | None,
    mask: np.ndarray,
    size: int,
    rng: np.random.Generator | None,
    aug: AugmentConfig,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Apply one geometric transform to WLI, NBI and mask; output (size x size) in the WLI frame.

    ``nbi`` is the raw NBI image and ``nbi_h`` its NBI->WLI homography (None = identity): the
    registration warp and the augmentation are composed into a single resampling of the NBI,
    as the predictor resamples a real NBI image once.
    """
    wli_s, f = _prescale(wli, size, cv2.INTER_AREA)
    m8 = mask.astype(np.uint8) * 255
    if f != 1.0:
        m8 = cv2.resize(m8, (wli_s.shape[1], wli_s.shape[0]), interpolation=cv2.INTER_AREA)
    a = geometric_matrix(wli_s.shape[:2], size, rng, aug)
    kw = {"dsize": (size, size), "borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    wli_o = cv2.warpAffine(wli_s, a, flags=cv2.INTER_LINEAR, **kw)
    nbi_o = None
    if nbi is not None:
        # output <- prescaled WLI (a) <- WLI (f) <- NBI (nbi_h) [<- prescaled NBI (1/g)]
        nbi_s, g = _prescale(nbi, size, cv2.INTER_AREA)
        a3 = np.vstack([a, [0.0, 0.0, 1.0]])
        hm = np.eye(3) if nbi_h is None else np.asarray(nbi_h, np.float64)
        full = a3 @ np.diag([f, f, 1.0]) @ hm @ np.diag([1.0 / g, 1.0 / g, 1.0])
        nbi_o = cv2.warpPerspective(nbi_s, full, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    m_o = cv2.warpAffine(m8, a, flags=cv2.INTER_LINEAR, **kw) > 127
    if not m_o.any() and mask.any():
        # a tiny lesion can vanish in area-resizing; keep it by nearest sampling instead
        m_o = cv2.warpAffine(mask.astype(np.uint8), _rescale_affine(a, f), flags=cv2.INTER_NEAREST, **kw) > 0
    return wli_o, nbi_o, m_o


def _rescale_affine(a: np.ndarray, f: float) -> np.ndarray:
    """Affine of the prescaled image expressed on the original image (source scaled by f)."""
    out = a.copy()
    out[:, :2] *= f
    return out


def photometric(img: np.ndarray, rng: np.random.Generator, aug: AugmentConfig) -> np.ndarray:
    """Brightness/contrast/saturation/gamma/channel-gain jitter (+ rare blur) of one image."""
    x = img.astype(np.float32) / 255.0
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * (1.0 + rng.uniform(-aug.saturation, aug.saturation))
    x = (x - x.mean()) * (1.0 + rng.uniform(-aug.contrast, aug.contrast)) + x.mean()
    x = x + rng.uniform(-aug.brightness, aug.brightness)
    x = x * (1.0 + rng.uniform(-aug.channel_gain, aug.channel_gain, size=3)).astype(np.float32)
    x = np.clip(x, 0.0, 1.0) ** math.exp(rng.uniform(-aug.gamma, aug.gamma))
    if rng.random() < aug.blur_p:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.2))
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_tensor(img: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 RGB (H,W,3) -> normalised float (3,H,W)."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s


def random_residual_homography(h: int, w: int, rng: np.random.Generator, max_shift: float) -> np.ndarray:
    """A homography moving each image corner by up to max_shift * size (a registration error)."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    d = rng.uniform(-max_shift, max_shift, size=(4, 2)) * np.float32([w, h])
    return cv2.getPerspectiveTransform(src, (src + d).astype(np.float32)).astype(np.float64)


# ----------------------------------------------------------------------------- base dataset
class PairDataset(Dataset):
    """Base: subclasses implement ``__len__`` and ``load(i, rng)`` ->
    (wli, raw nbi | None, homography NBI->WLI | None, mask, group).
 ``size`` and ``epoch`` may be
    changed between epochs (progressive resizing; per-epoch augmentation); DataLoader workers
    are re-created each epoch, so they see the new values.
    """

    def __init__(
        self,
        size: int = 256,
        train: bool = True,
        seed: int = 0,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        aug: AugmentConfig | None = None,
    ) -> None:
        self.size = int(size)
        self.train = train
        self.seed = int(seed)
        self.epoch = 0
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.aug = aug or AugmentConfig()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def load(self, i: int, rng: np.random.Generator) -> tuple:
        raise NotImplementedError

    def groups(self) -> list[str]:
        """Group of every index (for per-group validation numbers), without loading images."""
        return ["all"] * len(self)

    def __getitem__(self, i: int) -> dict:
        # training: new randomness each epoch; validation: fixed per case (repeatable numbers)
        seq = [self.seed, self.epoch, int(i)] if self.train else [self.seed, 10**6, int(i)]
        rng = np.random.default_rng(seq)
        wli, nbi, nbi_h, mask, group = self.load(int(i), rng)
        geo_rng = rng if self.train else None
        wli, nbi, mask = paired_geometric(wli, nbi, nbi_h, mask, self.size, geo_rng, self.aug)
        if self.train:
            wli = photometric(wli, rng, self.aug)
            if nbi is not None:
                nbi = photometric(nbi, rng, self.aug)
            if self.aug.scope:
                from training.scope_aug import scope_augment

                wli = scope_augment(wli, rng)
                if nbi is not None:
                    nbi = scope_augment(nbi, rng)
        present = nbi is not None
        wt = to_tensor(wli, self.mean, self.std)
        nt = to_tensor(nbi, self.mean, self.std) if present else torch.zeros_like(wt)
        return {
            "wli": wt,
            "nbi": nt,
            "mask": torch.from_numpy(mask.astype(np.float32))[None],
            "nbi_present": torch.tensor(present),
            "index": int(i),
            "group": group,
        }

    def describe(self) -> dict:
        """What the model card records about this data (source + sha256 of the case list)."""
        raise NotImplementedError


def _hash_lines(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8") + b"\n")
    return h.hexdigest()


# ----------------------------------------------------------------------------- public sets
class PublicDataset(PairDataset):
    """kvasir-seg-256 + vocalfolds (tumour = label 4) from ../shared/data with pseudo-NBI.

    ``split`` "train" | "val" follows the fixed split above (``fold`` picks the laryngeal
    recordings, ``kvasir_val`` which part of Kvasir's validation split "val" means). In train,
    the vocalfolds tumour frames (the target domain) are repeated ``tumour_repeat`` times per
    epoch, and tumour-free vocalfolds frames are included as negatives (``negatives``). Images
    are decoded once and kept in memory at most ``cache_px`` on the long side (workers share
    them by fork).
    """

    def __init__(
        self,
        shared_root: str | Path,
        split: str = "train",
        which: Sequence[str] = ("kvasir", "vocalfolds"),
        tumour_repeat: int = 1,
        negatives: bool = True,
        misregistration: float = 0.01,
        cache_px: int = 320,
        fold: str = "legacy",
        kvasir_val: str = "val",
        copy_paste: float = 0.0,
        copy_paste_onto: str = "laryngeal",
        copy_paste_decoys: float = 0.0,
        copy_paste_scale: tuple[float, float] = CopyPasteConfig().scale,
        copy_paste_edge: float = 0.0,
        **kw,
    ) -> None:
        kw.setdefault("train", split == "train")
        super().__init__(**kw)
        if split not in ("train", "val"):
            raise ValueError("split must be 'train' or 'val'")
        root = Path(shared_root)
        self.root = root
        self.split = split
        self.fold = fold
        self.kvasir_val = kvasir_val
        self.misregistration = misregistration
        self.copy_paste = float(copy_paste)
        if not 0.0 <= self.copy_paste <= 1.0:
            raise ValueError(f"copy_paste is a share of frames, 0..1 (got {copy_paste})")
        self.copy_paste_decoys = float(copy_paste_decoys)
        if not 0.0 <= self.copy_paste_decoys <= 1.0:
            raise ValueError(f"copy_paste_decoys is a share of frames, 0..1 (got {copy_paste_decoys})")
        lo, hi = (float(v) for v in copy_paste_scale)
        if not 0.0 < lo <= hi:
            raise ValueError(f"copy_paste_scale is a range of size factors, 0 < low <= high (got {copy_paste_scale})")
        if not 0.0 <= float(copy_paste_edge) <= 1.0:
            raise ValueError(f"copy_paste_edge is a share of pastes, 0..1 (got {copy_paste_edge})")
        # lesions and decoys are resized (and cut by the edge) alike: a size or an edge only lesions
        # came with would be a shortcut of its own
        self._paste_cfg = CopyPasteConfig(scale=(lo, hi), edge_cut=float(copy_paste_edge))
        if copy_paste_onto not in ("laryngeal", "tumour"):
            raise ValueError("copy_paste_onto must be 'laryngeal' or 'tumour'")
        # "tumour": only the tumour recording's frames take a paste, the tumour-free ones stay pure negatives
        self.copy_paste_onto = copy_paste_onto
        self._paste_groups = ("vocal_tumour",) if copy_paste_onto == "tumour" else ("vocal_tumour", "vocal_neg")
        base: list[PublicItem] = []
        unknown = set(which) - {"kvasir", "vocalfolds"}
        if unknown:
            raise ValueError(f"unknown public sets {sorted(unknown)}")
        if "kvasir" in which:
            base += kvasir_split(root / "kvasir-seg-256", split if split == "train" else kvasir_val)
        if "vocalfolds" in which:
            tum, neg = vocalfolds_split(root / "vocalfolds", split, fold)
            base += tum
            if negatives:
                base += neg
        if not base:
            raise FileNotFoundError(f"no public images found under {root}")
        self.items = base
        # index list: tumour frames repeated (train only)
        rep = max(1, int(tumour_repeat)) if split == "train" else 1
        self.index: list[int] = []
        for j, it in enumerate(base):
            self.index += [j] * (rep if it.group == "vocal_tumour" else 1)
        self._cache = [self._decode(it, cache_px) for it in base]
        # the training recording's lesions, pasted onto laryngeal frames (--copy-paste)
        self._lesion_sources = [j for j, it in enumerate(base)
                                if it.group == "vocal_tumour" and self._cache[j][0][2].any()]
        # decoys (--copy-paste-decoys): normal mucosa of any laryngeal training frame, cut in a lesion's shape
        self._decoy_sources = [j for j, it in enumerate(base) if it.group in ("vocal_tumour", "vocal_neg")]

    @staticmethod
    def _decode(item: PublicItem, cache_px: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """A 2-level pyramid of (wli, pseudo-NBI colour, mask); the long side at most cache_px."""
        from model.pseudo_nbi import nbi_colour

        img = _read_rgb_cv(item.image)
        m = read_public_label(item)
        levels = []
        for px in (cache_px, cache_px // 2):
            h, w = img.shape[:2]
            f = px / max(h, w)
            if f < 1.0:
                size = (round(w * f), round(h * f))
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                m8 = cv2.resize(m.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA)
                m = (m8 > 127) if (m8 > 127).any() or not m.any() else (m8 > 0)
            levels.append((img, nbi_colour(img), m))
        return levels

    def __len__(self) -> int:
        return len(self.index)

    def groups(self) -> list[str]:
        return [self.items[j].group for j in self.index]

    def load(self, i: int, rng: np.random.Generator) -> tuple:
        """Pseudo-NBI of the cached frame plus the registration the predictor would apply.

        pseudo_nbi = nbi_colour warped by a random homography H_w2n; inference registers it back
        with an estimate H_est = R @ inv(H_w2n), R a small residual error. Composed, the NBI seen
        in the WLI frame is nbi_colour warped by R alone, so only R is drawn and the image is
        resampled once (in paired_geometric), as the predictor does.
        """
        j = self.index[i]
        levels = self._cache[j]
        level = 1 if self.size <= max(levels[1][0].shape[:2]) else 0  # the half level is big enough
        wli, nbi, mask = levels[level]
        if self.train and self._lesion_sources and (self.copy_paste > 0 or self.copy_paste_decoys > 0):
            wli, nbi, mask = self._pastes(j, wli, nbi, mask, level, rng)
        hh, ww = wli.shape[:2]
        res = np.eye(3)
        if self.misregistration > 0:
            res = random_residual_homography(hh, ww, rng, self.misregistration)
        return wli, nbi, res, mask, self.items[j].group

    def _pastes(self, j: int, wli: np.ndarray, nbi: np.ndarray, mask: np.ndarray, level: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A random training lesion (--copy-paste) and a decoy of normal mucosa (--copy-paste-decoys)
        pasted into this laryngeal frame, each by its own draw; the pseudo-NBI re-made from the result."""
        from model.pseudo_nbi import nbi_colour
        from training.copy_paste import decoy_region, paste_lesion

        group = self.items[j].group
        changed = False
        if self.copy_paste > 0 and group in self._paste_groups and rng.random() < self.copy_paste:
            src_wli, _, src_mask = self._cache[self._lesion_sources[int(rng.integers(len(self._lesion_sources)))]][level]
            wli, mask, pasted = paste_lesion(wli, mask, src_wli, src_mask, rng, self._paste_cfg)
            changed |= pasted
        if (self.copy_paste_decoys > 0 and group in ("vocal_tumour", "vocal_neg")
                and rng.random() < self.copy_paste_decoys):
            shape = self._cache[self._lesion_sources[int(rng.integers(len(self._lesion_sources)))]][level][2]
            src_wli, _, src_mask = self._cache[self._decoy_sources[int(rng.integers(len(self._decoy_sources)))]][level]
            region = decoy_region(src_wli, src_mask, shape, rng, self._paste_cfg)
            if region is not None:
                wli, mask, pasted = paste_lesion(wli, mask, src_wli, region, rng, self._paste_cfg, label=False)
                changed |= pasted
        return (wli, nbi_colour(wli), mask) if changed else (wli, nbi, mask)

    def describe(self) -> dict:
        names = [self.items[j].name for j in self.index]
        return {
            "source": "public",
            "root": str(self.root),
            "split": self.split,
            "fold": self.fold,
            "laryngeal_tumour_sequences": list(FOLDS[self.fold][0 if self.split == "train" else 1]),
            "kvasir": "train" if self.split == "train" else self.kvasir_val,
            "copy_paste": self.copy_paste if self.train else 0.0,
            "copy_paste_onto": self.copy_paste_onto,
            "copy_paste_decoys": self.copy_paste_decoys if self.train else 0.0,
            "copy_paste_scale": list(self._paste_cfg.scale),
            "copy_paste_edge": self._paste_cfg.edge_cut,
            "n_items": len(self.index),
            "n_unique": len(self.items),
            "groups": {g: self.groups().count(g) for g in sorted(set(self.groups()))},
            "case_list_sha256": _hash_lines(names),
            "nbi": "pseudo-NBI (model.pseudo_nbi.nbi_colour) registered with the known inverse of a "
            f"random homography plus a residual error of up to {self.misregistration:.3f} of the image size",
        }


# ----------------------------------------------------------------------------- workspace
@dataclass(frozen=True)
class _Record:
    case_id: str
    patient_id: str | None
    wli_path: Path
    nbi_path: Path | None
    homography: np.ndarray
    mask_path: Path
    mask_sha256: str


class WorkspaceDataset(PairDataset):
    """Cases of a workspace with status in ``statuses`` and a mask a clinician stands behind.

    The case list is read once here and the database closed again, so DataLoader workers only
    read files (a SQLite connection must not cross a fork). The mask of an *approved* case is
    its latest revision whatever its source: a prediction the clinician approved unchanged is
    ground truth too, and leaving it out would teach the model only from the cases it got
    wrong. Other statuses use the latest human or imported revision (an unreviewed prediction
    is not ground truth). NBI is warped into the WLI frame with the case's homography; a case
    without NBI gets nbi_present False.
    """

    def __init__(
        self,
        ws,
        statuses: Sequence[str] = ("corrected", "approved"),
        case_ids: Sequence[str] | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        from training.store import Workspace

        own = not isinstance(ws, Workspace)
        w = Workspace.open(ws) if own else ws
        try:
            self.root = Path(w.root)
            records: list[_Record] = []
            wanted = set(case_ids) if case_ids is not None else None
            for case in w.cases(status=list(statuses)):
                if wanted is not None and case.id not in wanted:
                    continue
                if case.status == "approved":
                    rev = w.latest_revision(case.id)
                else:
                    rev = w.latest_revision(case.id, sources=("human", "import"))
                if rev is None:
                    continue
                records.append(
                    _Record(
                        case.id,
                        case.patient_id,
                        self._abs(case.wli_path),
                        self._abs(case.nbi_path) if case.nbi_path else None,
                        np.asarray(case.homography, dtype=np.float64).reshape(3, 3),
                        self._abs(rev.mask_path),
                        rev.sha256,
                    )
                )
        finally:
            if own:
                w.close()
        records.sort(key=lambda r: r.case_id)
        self.records = records
        self.statuses = tuple(statuses)

    def _abs(self, p) -> Path:
        p = Path(p)
        return p if p.is_absolute() else self.root / p

    def __len__(self) -> int:
        return len(self.records)

    @property
    def case_ids(self) -> list[str]:
        return [r.case_id for r in self.records]

    @property
    def case_patients(self) -> list[tuple[str, str | None]]:
        """(case id, patient id) of every case, for the split by patient."""
        return [(r.case_id, r.patient_id) for r in self.records]

    def subset(self, case_ids: Iterable[str]) -> WorkspaceDataset:
        """A copy restricted to the given case ids (for a train/val split)."""
        keep = set(case_ids)
        out = object.__new__(WorkspaceDataset)
        out.__dict__.update(self.__dict__)
        out.records = [r for r in self.records if r.case_id in keep]
        return out

    def load(self, i: int, rng: np.random.Generator) -> tuple:
        from training.imageio import read_mask, read_rgb

        r = self.records[i]
        wli = read_rgb(r.wli_path)
        mask = read_mask(r.mask_path)
        if mask.shape != wli.shape[:2]:
            mask = cv2.resize(mask.astype(np.uint8), (wli.shape[1], wli.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
        nbi = None
        if r.nbi_path is not None and Path(r.nbi_path).exists():
            nbi = read_rgb(r.nbi_path)
        return wli, nbi, r.homography, mask, "workspace"

    def describe(self) -> dict:
        return {
            "source": "workspace",
            "root": str(self.root),
            "statuses": list(self.statuses),
            "n_items": len(self.records),
            "case_list_sha256": _hash_lines(f"{r.case_id} {r.mask_sha256}" for r in self.records),
        }


# ----------------------------------------------------------------------------- export folder
def _parse_homography(text: str | None) -> np.ndarray:
    if not text or not text.strip():
        return np.eye(3)
    s = text.strip()
    try:
        vals = json.loads(s) if s.startswith("[") else [float(v) for v in s.replace(",", " ").split()]
    except ValueError as e:
        raise ValueError(f"bad homography {text!r}") from e
    arr = np.asarray(vals, dtype=np.float64).reshape(3, 3)
    return arr


class ExportFolderDataset(PairDataset):
    """An exported folder: images/<id>_wli.png, images/<id>_nbi.png, masks/<id>.png, manifest.csv.

    manifest.csv needs an ``id`` column (``case_id`` also accepted) and may have ``split``
    (train/val/test) and ``homography`` (9 numbers NBI->WLI; absent = NBI already in the WLI
    frame). ``split=None`` takes all rows.
    """

    def __init__(self, root: str | Path, split: str | None = None, **kw) -> None:
        super().__init__(**kw)
        self.root = Path(root)
        manifest = self.root / "manifest.csv"
        if not manifest.exists():
            raise FileNotFoundError(f"{manifest} not found (is this an exported dataset folder?)")
        rows = []
        self._patients: dict[str, str | None] = {}
        with open(manifest, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                cid = (row.get("id") or row.get("case_id") or "").strip()
                if not cid:
                    continue
                sp = (row.get("split") or "").strip().lower()
                if sp == "validation":
                    sp = "val"
                if split is not None and sp != split:
                    continue
                rows.append((cid, sp, _parse_homography(row.get("homography"))))
                self._patients[cid] = (row.get("patient") or row.get("patient_id") or "").strip() or None
        self.rows = rows
        self.split = split

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def case_ids(self) -> list[str]:
        return [r[0] for r in self.rows]

    @property
    def case_patients(self) -> list[tuple[str, str | None]]:
        """(case id, patient id) of every row, for the split by patient."""
        return [(r[0], self._patients.get(r[0])) for r in self.rows]

    def load(self, i: int, rng: np.random.Generator) -> tuple:
        from training.imageio import read_mask, read_rgb

        cid, _, hom = self.rows[i]
        wli = read_rgb(self.root / "images" / f"{cid}_wli.png")
        mask = read_mask(self.root / "masks" / f"{cid}.png")
        nbi_p = self.root / "images" / f"{cid}_nbi.png"
        nbi = read_rgb(nbi_p) if nbi_p.exists() else None
        return wli, nbi, hom, mask, "export"

    def describe(self) -> dict:
        man = self.root / "manifest.csv"
        return {
            "source": "export",
            "root": str(self.root),
            "split": self.split,
            "n_items": len(self.rows),
            "case_list_sha256": _hash_lines(r[0] for r in self.rows),
            "manifest_sha256": hashlib.sha256(man.read_bytes()).hexdigest(),
        }


# ----------------------------------------------------------------------------- eval CSVs
def write_public_eval_csvs(shared_root: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write the evaluation CSVs of the fixed split (for ``python -m training evaluate``).

    ``kvasir_val_choose`` / ``kvasir_val_report`` (the two halves of Kvasir's validation split;
    ``kvasir_val`` is both), ``vocal_seq1`` / ``vocal_seq2`` (every frame of each laryngeal tumour
    recording: a fold is measured on the one it did not train on), ``vocal_neg_val`` (the
    tumour-free seq6) and ``vocal_tumour_val`` (the legacy block of seq1, releases 1-2 only).
    Kvasir CSVs point at the images/masks in place; vocalfolds labels are class maps, so binary
    masks (label == 4; all-zero for tumour-free frames) are written under ``out_dir/masks``.
    Paths in the CSVs are relative to the CSV.
    """
    import os

    root = Path(shared_root)
    out = Path(out_dir)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    result: dict[str, Path] = {}

    def rel(p: Path) -> str:
        return os.path.relpath(Path(p).resolve(), out.resolve())

    voc = root / "vocalfolds"
    sets: dict[str, list[PublicItem]] = {
        name: kvasir_split(root / "kvasir-seg-256", split)
        for name, split in (("kvasir_val", "val"), ("kvasir_val_choose", "val_choose"),
                            ("kvasir_val_report", "val_report"))
    }
    sets["vocal_seq1"] = vocalfolds_split(voc, "val", "b")[0]
    sets["vocal_seq2"] = vocalfolds_split(voc, "val", "a")[0]
    sets["vocal_neg_val"] = vocalfolds_split(voc, "val", "a")[1]
    sets["vocal_tumour_val"] = vocalfolds_split(voc, "val", "legacy")[0]
    for name, items in sets.items():
        path = out / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["wli_path", "nbi_path", "label_path"])
            for it in items:
                if it.group == "kvasir":
                    lab = it.label
                else:
                    lab = out / "masks" / (it.name.replace("/", "_"))
                    cv2.imwrite(str(lab), read_public_label(it).astype(np.uint8) * 255)
                w.writerow([rel(it.image), "", rel(lab)])
        result[name] = path
    return result


if __name__ == "__main__":  # python -m training.data SHARED_ROOT OUT_DIR
    import sys

    if len(sys.argv) != 3:
        print("usage: python -m training.data SHARED_ROOT OUT_DIR  (writes the evaluation CSVs)")
        raise SystemExit(2)
    for k, v in write_public_eval_csvs(sys.argv[1], sys.argv[2]).items():
        print(k, v)
