"""Synthetic endoscopy recordings with a known answer for every frame (tests and the benchmark).

Why synthetic: no public WLI/NBI *video* exists, and the tests must not read the developers' shared data folder. A
recording here is a list of shots (WLI, pseudo-NBI, black, overexposed, blurred, menu screen,
out of the body) rendered from still images the way a video processor shows them: the picture
in an octagonal field stop on a black screen, the camera drifting and zooming over the scene,
sensor noise, and a burned-in patient-name box in the left margin on every frame. Each frame's
true class ("wli" | "nbi" | "unusable") and scene number come back with the file.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from model.pseudo_nbi import nbi_colour

TEST_DATA = Path(__file__).resolve().parent / "data"
SCENE_FILES = ("vf_0041.png", "kv_cju0qkwl.jpg", "vf_0055.png", "kv_cju0s2a9.jpg", "vf_0070.png",
               "kv_cju17hw9.jpg")
TEXT_LINES = ("DOE^JANE", "ID 0012345", "1961-04-02")
KINDS = ("wli", "nbi", "black", "over", "blur_wli", "blur_nbi", "menu", "outside")


@dataclass(frozen=True)
class Shot:
    """``frames`` consecutive frames of one kind showing scene ``scene`` (an index into the images)."""

    kind: str
    frames: int
    scene: int = 0


def label_of(kind: str) -> str:
    """The class a frame of this kind must get: its modality when usable, else "unusable"."""
    return kind if kind in ("wli", "nbi") else "unusable"


@dataclass
class Recording:
    """What was written: the true per-frame classes and scenes, the text box and the geometry."""

    path: Path
    labels: list[str]
    scenes: list[int]
    kinds: list[str]
    fps: float
    size: tuple[int, int]
    text_box: tuple[int, int, int, int] | None   # x, y, w, h in frame pixels
    fov: tuple[int, int, int] = (0, 0, 0)          # x0, y0, side of the field stop
    shots: list[Shot] = field(default_factory=list)


def load_scenes(files: Sequence[str | Path] = SCENE_FILES) -> list[np.ndarray]:
    """The scene images (RGB); a bare file name is looked up in tests/data."""
    out = []
    for f in files:
        p = Path(f)
        p = p if p.is_absolute() or p.exists() else TEST_DATA / p
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(p)
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return out


def _octagon(side: int) -> np.ndarray:
    cut = side // 5
    pts = np.int32([[cut, 0], [side - 1 - cut, 0], [side - 1, cut], [side - 1, side - 1 - cut],
                    [side - 1 - cut, side - 1], [cut, side - 1], [0, side - 1 - cut], [0, cut]])
    m = np.zeros((side, side), np.uint8)
    cv2.fillConvexPoly(m, pts, 255)
    return m > 0


def _menu(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A processor set-up menu: flat blue screen, a highlight bar, lines of white text."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (20, 40, 120)
    bar = int(rng.integers(2, 6))
    step = max(12, h // 12)
    for i in range(10):
        y = 10 + i * step
        if i == bar:
            cv2.rectangle(img, (4, y - step + 4), (w - 5, y + 3), (200, 200, 60), -1)
        cv2.putText(img, f"{['WB', 'IRIS', 'ENH', 'NBI', 'ZOOM', 'REC'][i % 6]}  SET {i}", (8, y),
                    cv2.FONT_HERSHEY_PLAIN, max(0.6, h / 400), (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _outside(w: int, h: int, t: float, rng: np.random.Generator) -> np.ndarray:
    """The scope out of the patient: a room (wall, blue drape, steel, lamp), moving."""
    img = np.zeros((h, w, 3), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img[:] = (200, 205, 210)
    img *= (0.75 + 0.25 * (xx / w))[..., None]
    dx = int(20 * np.sin(t))
    cv2.rectangle(img, (w // 5 + dx, h // 2), (w // 2 + dx, h - 1), (40, 90, 160), -1)        # drape
    cv2.rectangle(img, (w // 2 + dx, h // 4), (w // 2 + dx + w // 6, h - 1), (150, 150, 150), -1)  # steel
    cv2.circle(img, (3 * w // 4 - dx, h // 5), h // 10, (250, 250, 235), -1)                    # lamp
    cv2.line(img, (0, h // 3), (w - 1, h // 3 + dx), (90, 120, 100), 3)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


_NOISE: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}


def _noise(side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sensor noise (sigma 2) as a saturating (+, -) pair from a small pool: drawing fresh Gaussian
    noise for every 1080p frame would cost more than the rest of the frame."""
    pool = _NOISE.get(side)
    if pool is None:
        rng = np.random.default_rng(12345)
        pool = []
        for _ in range(7):
            z = np.round(rng.normal(0, 2.0, (side, side, 3))).astype(np.int16)
            pool.append((np.clip(z, 0, 255).astype(np.uint8), np.clip(-z, 0, 255).astype(np.uint8)))
        _NOISE[side] = pool
    return pool[n % len(pool)]


def render_frame(kind: str, scene: np.ndarray | None, t: float, side: int, rng: np.random.Generator,
                 motion: float = 1.0, n: int = 0) -> np.ndarray:
    """The picture inside the field stop (side x side RGB) of one frame at time ``t`` (seconds)."""
    if kind == "black":
        return cv2.add(np.full((side, side, 3), 2, np.uint8), _noise(side, n)[0])
    if kind == "menu":
        return _menu(side, side, rng)
    if kind == "outside":
        return _outside(side, side, t, rng)
    assert scene is not None
    # camera drift: slow pan, zoom and roll, continuous in t (so a modality switch keeps the view)
    sh, sw = scene.shape[:2]
    zoom = side / min(sh, sw) * (1.15 + 0.08 * np.sin(0.7 * t) * motion)
    ang = 4.0 * np.sin(0.45 * t) * motion
    cx = sw / 2 + 0.08 * sw * np.sin(0.9 * t) * motion
    cy = sh / 2 + 0.08 * sh * np.cos(0.6 * t) * motion
    m = cv2.getRotationMatrix2D((cx, cy), ang, zoom)
    m[:, 2] += (side / 2 - cx, side / 2 - cy)
    img = cv2.warpAffine(scene, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if kind in ("nbi", "blur_nbi"):
        img = nbi_colour(img)
    if kind in ("blur_wli", "blur_nbi"):
        k = max(9, side // 14) | 1
        kern = np.zeros((k, k), np.float32)
        kern[k // 2, :] = 1.0 / k                      # horizontal motion blur
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kern = cv2.warpAffine(kern, rot, (k, k))
        kern /= max(kern.sum(), 1e-6)
        img = cv2.filter2D(img, -1, kern)
    if kind == "over":
        img = cv2.convertScaleAbs(img, alpha=3.5, beta=60)
    plus, minus = _noise(side, n)
    return cv2.subtract(cv2.add(img, plus), minus)


def draw_text(frame_bgr: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """Draw the patient box into the left margin of ``frame_bgr``; returns its x, y, w, h."""
    h = frame_bgr.shape[0]
    scale = max(0.55, h / 420)
    step = int(16 * scale) + 4
    x0, y0 = 4, 6
    for i, line in enumerate(TEXT_LINES):
        cv2.putText(frame_bgr, line[: max(4, int(margin / (9 * scale)))], (x0, y0 + step * (i + 1)),
                    cv2.FONT_HERSHEY_PLAIN, scale, (235, 235, 235), 1 if h < 700 else 2, cv2.LINE_AA)
    return x0, y0, margin - 4, step * len(TEXT_LINES) + 8


def write_recording(path: Path, shots: Sequence[Shot], scenes: Sequence[np.ndarray] | None = None,
                    size: tuple[int, int] = (320, 240), fps: float = 25.0, fourcc: str = "mp4v",
                    text: bool = True, seed: int = 0, motion: float = 1.0) -> Recording:
    """Render and encode ``shots`` to ``path``; returns the ground truth."""
    scenes = list(scenes) if scenes is not None else load_scenes()
    w, h = size
    side = h - 16
    fx, fy = w - side - 8, 8
    fov = _octagon(side).astype(np.uint8)
    margin = fx - 8
    overlay = np.zeros((h, w, 3), np.uint8)
    box = draw_text(overlay, margin) if text else None
    text_mask = (overlay.max(axis=2) > 0).astype(np.uint8)
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not wr.isOpened():
        raise RuntimeError(f"cannot write {path} with fourcc {fourcc}")
    rec = Recording(path, [], [], [], fps, (w, h), None, (fx, fy, side), list(shots))
    n = 0
    # every scene gets its own phase, so a cut also changes where the camera looks
    for shot in shots:
        img_scene = scenes[shot.scene % len(scenes)] if shot.kind not in ("black", "menu", "outside") else None
        for _ in range(shot.frames):
            t = n / fps + 7.3 * shot.scene
            pic = render_frame(shot.kind, img_scene, t, side, rng, motion, n)
            frame = np.zeros((h, w, 3), np.uint8)
            if shot.kind == "menu":
                frame[:] = cv2.resize(pic, (w, h), interpolation=cv2.INTER_NEAREST)
            else:
                frame[fy:fy + side, fx:fx + side] = cv2.bitwise_and(pic, pic, mask=fov)
                if box is not None:
                    cv2.copyTo(overlay, text_mask, frame)
                    rec.text_box = box
            wr.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            rec.labels.append(label_of(shot.kind))
            rec.kinds.append(shot.kind)
            rec.scenes.append(shot.scene if img_scene is not None else -1)
            n += 1
    wr.release()
    return rec


def standard_shots(fps: float = 25.0) -> list[Shot]:
    """A short procedure: three scenes, each looked at in WLI then NBI (or NBI then WLI), with
    blur, black frames, glare, a menu and the scope outside in between; scene cuts with and
    without a gap; one cut straight from the WLI of one scene into the NBI of another."""
    s = int(fps)
    return [
        Shot("black", s // 2),
        Shot("wli", 2 * s, 0), Shot("blur_wli", s // 3, 0), Shot("wli", s, 0),
        Shot("black", s // 5), Shot("nbi", 2 * s, 0), Shot("blur_nbi", s // 4, 0), Shot("nbi", s, 0),
        Shot("menu", s // 2),
        Shot("nbi", 2 * s, 1), Shot("wli", 2 * s, 1), Shot("over", s // 3, 1), Shot("wli", s // 2, 1),
        Shot("outside", s),
        Shot("wli", 2 * s, 2),
        Shot("nbi", 2 * s, 3),              # cut from scene 2 (WLI) straight into scene 3 (NBI)
        Shot("black", s // 5), Shot("wli", 2 * s, 3),
    ]


def short_shots(fps: float = 25.0, scene: int = 0) -> list[Shot]:
    """Two seconds and a half: WLI then NBI of one scene, a black gap, WLI of a scene never in NBI."""
    return [Shot("wli", int(1.2 * fps), scene), Shot("nbi", int(1.2 * fps), scene), Shot("black", 3),
            Shot("wli", int(0.8 * fps), scene + 1)]
