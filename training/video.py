"""Endoscopy recordings -> WLI/NBI pairs: decode, classify every frame, segment, pick, pair, register.

Clinicians have procedure videos in which NBI is switched on and off, not still pairs. This
module finds the pairs in such a video from its *content* (no metadata is trusted):

1. **Decode once, cheaply** (pass 1). Every frame has to be decoded anyway (inter-coded video
   has no independent frames between keyframes), so what can be saved is the work after it:
   each frame is analysed at 320 px wide (bilinear to 640 then area to 320: ~1 ms at 1080p,
   where one area resize costs 5 ms), on the main thread while a reader thread (and FFmpeg's
   own threads) decode. Per frame only small numbers are kept: means over 20 px tiles
   (exposure, colour ratios, sharpness) and a 32 x 18 thumbnail of the green and red bands
   (~7 KB a frame). No stride: on the 10-minute 1080p benchmark recording pass 1 costs 111
   CPU-s, of which the per-frame measuring is 39; measuring every k-th frame would save at most
   that third, and frame-exact segment edges would then need a refinement pass seeking back
   around every switch (a GOP of decoding each). The whole import took 230 s on the 2 shared
   cores (target 300 s), so every frame is classified.
2. **Burned-in text** (patient name, date) is what stays put while the picture moves: pixels
   whose value hardly changes across ~100 frames sampled over the video and that form thin
   bright strokes are grouped into boxes. The boxes are left out of every measurement (their
   crisp edges would make a blurred frame look sharp) and blacked out in the imported frames
   (``keep_text`` keeps them).
3. **Classify each frame** as ``wli``, ``nbi`` or ``unusable`` (black, overexposed, menu,
   out_of_body, blurred). Why colour works: an NBI display is built from two narrow bands, the
   540 nm band in red and the 415 nm band in *both* green and blue, so NBI pixels have blue ~
   green (a narrow spread of log(B/G)) and no red dominance, while white-light mucosa is red
   (log(R/G) and log(R/B) well above 0). A frame that is neither is not tissue seen through the
   scope (the room, a drape). A menu is a few flat colours. Blur is relative: a frame is
   blurred when its sharpness is under 35 % of what frames of the same segment and continuous
   view reach within +-3 s (absolute sharpness depends on the scene and the scope, its drop
   does not).
4. **Scenes and segments.** Consecutive usable frames belong to the same scene while their
   green-band thumbnails still correlate (WLI green and NBI red see the same 540 nm band, so
   this holds across a switch; the best of small shifts, since the camera drifts); a cut starts
   a new scene. A segment is a run of usable frames of one modality in one scene (unusable
   frames inside it do not split it).
5. **Pick and pair.** In each NBI segment the sharpest NBI frames that have a usable WLI frame
   of the same scene within ``max_gap_s`` are picked (not in the first/last ``edge_s``, where
   the processor is still switching); each is paired with the nearest sharp WLI frame (sharp =
   at least 70 % of the best candidate), registered NBI -> WLI (model.registration) and kept
   only if the registration holds (quality "good", >= MIN_INLIERS inliers). Why 2 s: switching
   NBI on or off takes the processor about half a second to a second; past ~2 s the larynx has
   moved (breathing, swallowing, phonation) so the chance of the same view falls while the
   search cost grows; the registration check is the real gate, the limit only bounds the search.
6. **Fetch** (pass 2) only the frames chosen, at full resolution, one segment at a time:
   forward grabs when the next one is near, a seek otherwise, each checked against its pass-1
   thumbnail.

A video that cannot be opened, decodes no frame, or ends before its container says it should
(truncated) raises VideoError before anything is returned, so the importer writes nothing of
it. No torch and no Qt here.
"""
from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "VIDEO_EXTENSIONS", "VideoError", "VideoCancelled", "VideoSettings", "FrameTable", "VideoCase",
    "VideoResult", "analyse_video", "detect_text_boxes", "classify_frames", "classify_still", "colour_decision",
    "find_scenes", "segments",
    "select_pairs", "process_video", "is_video", "blackout",
]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".webm", ".wmv")
CLASSES = ("unusable", "wli", "nbi")            # code 0, 1, 2 in FrameTable.label
REASONS = ("", "black", "overexposed", "menu", "out_of_body", "blurred")

ANALYSIS_W = 320        # analysis width (px)
TILE = 20               # tile side at analysis size
TEXT_W = 640            # width the text detector looks at
TEXT_SAMPLES = 100      # frames sampled over the video for the text detector
_F = 11                 # per-tile features, see _tile_stats
MIN_INLIERS = 20        # registration must agree on at least this many SIFT matches
CUT_NCC = 0.55          # consecutive usable frames correlating less than this: a scene cut
BLUR_RATIO = 0.35       # sharpness under this share of the local reference: blurred
# log(v + 16): the offset keeps codec noise in dark pixels (NBI is dark) from swamping the ratios
_LOG = np.log(np.arange(256, dtype=np.float32) + 16.0)


class VideoError(ValueError):
    """A video that cannot be imported (not a video, undecodable, truncated): one clear line."""

    def __init__(self, path: os.PathLike | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class VideoCancelled(Exception):
    """The user cancelled; nothing of the video was returned."""


@dataclass(frozen=True)
class VideoSettings:
    """What the import does with a video (defaults are what the app and CLI use)."""

    wli_only: bool = False        # also WLI-only cases from scenes never seen in NBI
    keep_text: bool = False       # keep burned-in text instead of blacking it out
    max_gap_s: float = 2.0        # NBI frame <-> WLI partner, at most this far apart
    per_segment: int = 2          # pairs wanted per NBI segment
    min_spacing_s: float = 1.0    # between two picks of one segment (no near-duplicates)
    edge_s: float = 0.2           # not this close to a segment's ends (switching transients)
    wli_every_s: float = 10.0     # WLI-only: one case per this much of a segment
    register_tries: int = 4       # NBI candidates tried per segment before giving up


# ------------------------------------------------------------------------------ pass 1: decode
@dataclass
class FrameTable:
    """Per-frame measurements of one video (pass 1) and, once classified, the per-frame answer."""

    path: Path
    fps: float
    width: int
    height: int
    times: np.ndarray                 # (N,) seconds
    tiles: np.ndarray                 # (N, _F, ty, tx) float32 sums per tile
    desc: np.ndarray                  # (N, 2, 18, 32) uint8: green and red band thumbnails
    mode_frac: np.ndarray             # (N,) share of the lit pixels in the commonest colour
    text_samples: list[tuple[int, np.ndarray]] = field(default_factory=list, repr=False)
    declared_frames: int = 0
    text_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)   # x, y, w, h (full res)
    label: np.ndarray | None = None   # (N,) int8 index into CLASSES
    reason: np.ndarray | None = None  # (N,) int8 index into REASONS
    nbi_score: np.ndarray | None = None
    sharpness: np.ndarray | None = None
    scene: np.ndarray | None = None   # (N,) int32, -1 for unusable frames
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.times)


def is_video(path: os.PathLike | str) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _analysis_size(w: int, h: int) -> tuple[int, int]:
    ah = max(TILE, int(round(ANALYSIS_W * h / max(w, 1) / TILE)) * TILE)
    return ANALYSIS_W, ah


def _small(frame_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The analysis image (RGB): bilinear to twice the size, then area (antialiased, ~1 ms at 1080p)."""
    h, w = frame_bgr.shape[:2]
    if w > 2 * size[0]:
        frame_bgr = cv2.resize(frame_bgr, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    interp = cv2.INTER_AREA if frame_bgr.shape[1] >= size[0] else cv2.INTER_LINEAR
    return cv2.cvtColor(cv2.resize(frame_bgr, size, interpolation=interp), cv2.COLOR_BGR2RGB)


def _tiles(a: np.ndarray, t: int) -> np.ndarray:
    """Mean of a 2-D array over t x t tiles (an area resize: ~0.07 ms where a numpy sum takes 0.3)."""
    h, w = a.shape
    return cv2.resize(a, (w // t, h // t), interpolation=cv2.INTER_AREA)


def _tile_stats(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-tile means of one analysis frame, its band thumbnails and its flat-colour share.

    Tile features: 0 one (weight), 1 dark (Y < 20), 2 saturated (any channel >= 250), 3 valid
    (the rest), 4/5 log(R/G) / log(B/G) over valid, 6/7 their squares, 8 Y, 9 coarse sharpness
    (squared Laplacian at half size), 10 fine sharpness (squared Laplacian). Tiles are equal in
    size, so sums of these means over tiles give the ratios of the whole region.
    """
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    dark = y < 20
    sat = cv2.max(cv2.max(r, g), b) >= 250
    valid = (~(dark | sat)).astype(np.float32)
    logs = cv2.LUT(rgb, _LOG.reshape(1, 256))
    lrg = (logs[:, :, 0] - logs[:, :, 1]) * valid
    lbg = (logs[:, :, 2] - logs[:, :, 1]) * valid
    yf = y.astype(np.float32)
    half = cv2.resize(yf, (y.shape[1] // 2, y.shape[0] // 2), interpolation=cv2.INTER_AREA)
    lap_c = cv2.Laplacian(half, cv2.CV_32F, ksize=3)
    lap_f = cv2.Laplacian(yf, cv2.CV_32F, ksize=3)
    t = TILE
    out = np.empty((_F, y.shape[0] // t, y.shape[1] // t), np.float32)
    out[0] = 1.0
    out[1] = _tiles(dark.astype(np.float32), t)
    out[2] = _tiles(sat.astype(np.float32), t)
    out[3] = _tiles(valid, t)
    out[4] = _tiles(lrg, t)
    out[5] = _tiles(lbg, t)
    out[6] = _tiles(lrg * lrg, t)
    out[7] = _tiles(lbg * lbg, t)
    out[8] = _tiles(yf, t)
    out[9] = _tiles(lap_c * lap_c, t // 2)
    out[10] = _tiles(lap_f * lap_f, t)
    desc = np.stack([cv2.resize(np.ascontiguousarray(c), (32, 18), interpolation=cv2.INTER_AREA) for c in (g, r)])
    sub = rgb[::2, ::2]
    lit = ~dark[::2, ::2]
    n_lit = int(lit.sum())
    if n_lit < 0.2 * lit.size:
        mode = 0.0
    else:
        px = sub[lit] >> 4
        q = px[:, 0].astype(np.int32) << 8 | px[:, 1].astype(np.int32) << 4 | px[:, 2]
        mode = float(np.bincount(q, minlength=4096).max()) / n_lit
    return out, desc, mode


class _Reader(threading.Thread):
    """Decodes a video in the background: (index, time in ms, full BGR frame). Decoding (grab +
    retrieve, which release the GIL) runs here while the consumer downscales and measures, so
    the two cores share the work about evenly (~8 ms vs ~3 ms a 1080p frame, see the benchmark)."""

    def __init__(self, cap: cv2.VideoCapture) -> None:
        super().__init__(daemon=True)
        self.cap = cap
        self.q: queue.Queue = queue.Queue(maxsize=6)   # 6 decoded 1080p frames: ~37 MB
        self.stop = threading.Event()
        self.busy_s = 0.0
        self.cpu_s = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        i = 0
        cpu0 = time.thread_time()
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                if not self.cap.grab():
                    break
                ok, frame = self.cap.retrieve()
                if not ok or frame is None:
                    break
                ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
                self.busy_s += time.perf_counter() - t0
                while not self.stop.is_set():
                    try:
                        self.q.put((i, ms, frame), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                i += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self.error = exc
        finally:
            self.cpu_s = time.thread_time() - cpu0
            self.q.put(None)


def _text_sample(frame_bgr: np.ndarray) -> np.ndarray:
    tw = min(TEXT_W, frame_bgr.shape[1])
    th = max(1, round(frame_bgr.shape[0] * tw / frame_bgr.shape[1]))
    return cv2.cvtColor(cv2.resize(frame_bgr, (tw, th), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise VideoError(path, "file not found")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise VideoError(path, "cannot be opened as a video (not a video, an unsupported codec, or a truncated "
                               "file whose index is missing)")
    return cap


def analyse_video(path: os.PathLike | str, progress: Callable[[str, int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None) -> FrameTable:
    """Pass 1: decode every frame once and keep its measurements (no classification yet)."""
    path = Path(path)
    cap = _open(path)
    t_start = time.perf_counter()
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = fps if 1.0 <= fps <= 1000.0 else 25.0
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w <= 0 or h <= 0:
            raise VideoError(path, "no video stream")
        size = _analysis_size(w, h)
        every = max(1, (declared or 3000) // TEXT_SAMPLES)
        reader = _Reader(cap)
        reader.start()
        times, tiles, descs, modes, samples = [], [], [], [], []
        stats_s = 0.0
        cpu0 = time.thread_time()
        try:
            while True:
                item = reader.q.get()
                if item is None:
                    break
                i, ms, frame = item
                t0 = time.perf_counter()
                st, d, mode = _tile_stats(_small(frame, size))
                if i % every == 0:
                    samples.append((i, _text_sample(frame)))
                    if len(samples) > 2 * TEXT_SAMPLES:      # frame count unknown: thin out
                        samples = samples[::2]
                        every *= 2
                del frame
                stats_s += time.perf_counter() - t0
                times.append(ms / 1000.0 if ms and ms > 0 else i / fps)
                tiles.append(st)
                descs.append(d)
                modes.append(mode)
                if i % 50 == 0:
                    if cancel is not None and cancel():
                        raise VideoCancelled()
                    if progress is not None:
                        progress("decode", i, max(declared, i + 1))
        finally:
            measure_cpu = time.thread_time() - cpu0
            reader.stop.set()
            while reader.is_alive():
                try:
                    reader.q.get(timeout=0.1)
                except queue.Empty:
                    pass
            reader.join()
        if reader.error is not None:
            raise VideoError(path, f"decoding failed ({type(reader.error).__name__}: {reader.error})")
    finally:
        cap.release()
    n = len(times)
    if n == 0:
        raise VideoError(path, "no frame could be decoded (damaged or unsupported video)")
    # 2 % slack: some containers only estimate their frame count (duration x frame rate)
    if declared > 0 and n < declared - max(2, int(0.02 * declared)):
        raise VideoError(path, f"truncated or damaged: only {n} of its {declared} frames could be decoded")
    if progress is not None:
        progress("decode", n, n)
    times_a = np.asarray(times, np.float64)
    # timestamps must increase; a broken clock falls back to the frame rate
    if not np.all(np.diff(times_a) > 0):
        times_a = np.arange(n) / fps
    ft = FrameTable(path, fps, w, h, times_a, np.stack(tiles), np.stack(descs), np.asarray(modes, np.float32),
                    samples, declared)
    ft.timing["decode_s"] = reader.busy_s
    ft.timing["measure_s"] = stats_s
    # CPU seconds of each thread: what the stages cost whatever else the machine runs
    ft.timing["decode_cpu_s"] = reader.cpu_s
    ft.timing["measure_cpu_s"] = measure_cpu
    ft.timing["pass1_wall_s"] = time.perf_counter() - t_start
    return ft


# ------------------------------------------------------------------------------ burned-in text
def detect_text_boxes(samples: list[np.ndarray], width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h in full-resolution pixels) of overlay text: static, thin, bright strokes.

    ``samples``: grey frames (same size) spread over the video. Needs >= 8 samples with the
    picture moving; a video that never moves gives no static/moving contrast and no boxes.
    """
    samples = [s for s in samples if s.shape == samples[0].shape] if samples else []
    if len(samples) < 8:
        return []
    stack = np.sort(np.stack(samples), axis=0)       # uint8: np.percentile would make float64 copies
    n = len(stack)
    lo, med, hi = (stack[int(round(q * (n - 1)))].astype(np.int16) for q in (0.1, 0.5, 0.9))
    del stack
    static = (hi - lo) <= 14
    if static.mean() > 0.97:          # nothing moves: text cannot be told from the picture
        return []
    med = med.astype(np.uint8)
    sh, sw = med.shape
    k = max(3, (sw // 90) | 1)
    tophat = cv2.morphologyEx(med, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    strokes = (static & (tophat >= 40) & (med >= 90)).astype(np.uint8)
    if not strokes.any():
        return []
    joined = cv2.dilate(strokes, cv2.getStructuringElement(cv2.MORPH_RECT, (max(5, sw // 60), max(3, sh // 80))))
    n, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    boxes = []
    sx, sy = width / sw, height / sh
    pad = max(2, sw // 160)
    for x, y, bw, bh, area in stats[1:n]:
        if bw * bh > 0.06 * sw * sh or bh > 0.2 * sh or area < 12:
            continue
        dens = strokes[y:y + bh, x:x + bw].mean()
        if not 0.04 <= dens <= 0.8:
            continue
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(sw, x + bw + pad), min(sh, y + bh + pad)
        boxes.append((int(x0 * sx), int(y0 * sy), int(np.ceil((x1 - x0) * sx)), int(np.ceil((y1 - y0) * sy))))
    return _merge_boxes(boxes)


def _merge_boxes(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Merge overlapping boxes (lines of one text block become one box)."""
    out = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if a[0] <= b[0] + b[2] and b[0] <= a[0] + a[2] and a[1] <= b[1] + b[3] and b[1] <= a[1] + a[3]:
                    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
                    out[i] = [x0, y0, x1 - x0, y1 - y0]
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return [tuple(b) for b in sorted(out)]  # type: ignore[misc]


def blackout(img: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """A copy of ``img`` with the boxes filled black."""
    out = img.copy()
    for x, y, w, h in boxes:
        out[max(0, y):y + h, max(0, x):x + w] = 0
    return out


# ------------------------------------------------------------------------------ classification
def _region_masks(ft: FrameTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tiles that measure the picture (lit in >= 1/4 of the frames, not under text), the interior
    ones among them (wholly lit: no field-stop edge, whose crisp border would make every frame look
    sharp), and the picture as 32 x 18 thumbnail cells."""
    ty, tx = ft.tiles.shape[2:]
    text = np.zeros((ty, tx), bool)
    ax, ay = ANALYSIS_W / ft.width, ty * TILE / ft.height
    for x, y, w, h in ft.text_boxes:
        x0, y0 = int(x * ax) // TILE, int(y * ay) // TILE
        x1, y1 = int(np.ceil((x + w) * ax / TILE)), int(np.ceil((y + h) * ay / TILE))
        text[y0:y1, x0:x1] = True
    lit = 1.0 - ft.tiles[:, 1] / ft.tiles[:, 0]
    p75 = np.percentile(lit, 75, axis=0)
    picture = (p75 >= 0.5) & ~text
    if not picture.any():
        picture = ~text
    interior = (p75 >= 0.98) & ~text
    interior = cv2.erode(interior.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) if interior.sum() > 24 \
        else interior
    if not interior.any():
        interior = picture
    cells = cv2.resize(picture.astype(np.uint8), (32, 18), interpolation=cv2.INTER_NEAREST).astype(bool)
    return picture, interior, cells


def _local_reference(values: np.ndarray, ok: np.ndarray, times: np.ndarray, half_s: float = 3.0) -> np.ndarray:
    """Per frame: the 75th percentile of ``values`` over ``ok`` frames within +-half_s (1 s blocks)."""
    if not ok.any():
        return np.zeros_like(values)
    block = np.floor(times - times[0]).astype(int)
    nb = int(block.max()) + 1
    p = np.full(nb, np.nan)
    for b in range(nb):
        sel = ok & (block == b)
        if sel.any():
            p[b] = np.percentile(values[sel], 75)
    k = int(np.ceil(half_s))
    ref_b = np.array([np.nanmax(p[max(0, b - k):b + k + 1]) if np.isfinite(p[max(0, b - k):b + k + 1]).any()
                      else np.nan for b in range(nb)])
    ref = ref_b[block]
    return np.nan_to_num(ref, nan=0.0)


def colour_decision(rg: np.ndarray, bg: np.ndarray, rg_sd: np.ndarray, bg_sd: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(WLI-like, NBI-like, NBI score in 0..1) from the mean and spread of log(R/G) and log(B/G).

    NBI: blue and green come from the same 415 nm band, so log(B/G) hardly varies (``bg_sd``),
    and red (540 nm) does not dominate blue (log(R/B) = rg - bg low); WLI: red mucosa. Weights
    chosen on 334 public frames (Kvasir, laryngeal) x {WLI, pseudo-NBI} x {as is, scope
    augmentation, the held-out other-device transform} x {raw, JPEG q80}: 99.1 % right per
    still, no temporal help (benchmarks/bench_video_import.py re-measures it). Neither: not
    tissue seen through the scope.
    """
    rb = rg - bg
    z = (0.4 - rb) / 0.15 + (0.06 - bg_sd) / 0.015
    score = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    is_wli = (rg >= 0.10) & (rb >= 0.30) & (z < 0)
    is_nbi = (bg_sd <= 0.10) & (rg_sd >= 0.03) & (z >= 0)
    return is_wli, is_nbi, score


def classify_still(rgb: np.ndarray) -> tuple[str, float]:
    """Colour class of one RGB image on its own ("wli" | "nbi" | "neither", NBI score): the rule
    ``classify_frames`` applies, without the video's exposure, blur and region context."""
    size = _analysis_size(rgb.shape[1], rgb.shape[0])
    st, _, _ = _tile_stats(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
    flat = st.reshape(_F, -1)
    s = flat[:, (1.0 - flat[1]) > 0.5].sum(axis=1) if ((1.0 - flat[1]) > 0.5).any() else flat.sum(axis=1)
    nval = max(float(s[3]), 1e-6)
    rg, bg = s[4] / nval, s[5] / nval
    rg_sd = np.sqrt(max(s[6] / nval - rg * rg, 0.0))
    bg_sd = np.sqrt(max(s[7] / nval - bg * bg, 0.0))
    w, n, score = colour_decision(*(np.atleast_1d(np.float32(v)) for v in (rg, bg, rg_sd, bg_sd)))
    return ("nbi" if n[0] else "wli" if w[0] else "neither"), float(score[0])


def classify_frames(ft: FrameTable) -> FrameTable:
    """Label every frame wli / nbi / unusable (with a reason) from its measurements, and number
    the scenes of the usable ones; in place."""
    t0 = time.perf_counter()
    picture, interior, _ = _region_masks(ft)
    s = ft.tiles[:, :, picture].sum(axis=2)          # (N, _F)
    si = ft.tiles[:, :, interior].sum(axis=2)
    npx = np.maximum(s[:, 0], 1e-6)
    nval = np.maximum(s[:, 3], 1e-6)
    dark = s[:, 1] / npx
    sat = s[:, 2] / npx
    mean_y = s[:, 8] / npx
    rg = s[:, 4] / nval
    bg = s[:, 5] / nval
    rg_sd = np.sqrt(np.maximum(s[:, 6] / nval - rg * rg, 0))
    bg_sd = np.sqrt(np.maximum(s[:, 7] / nval - bg * bg, 0))
    lum2 = np.maximum((s[:, 8] / npx) / np.maximum(1.0 - dark, 0.05), 8.0) ** 2
    nval_i = np.maximum(si[:, 3], 1e-6)
    coarse = si[:, 9] / nval_i / lum2
    fine = si[:, 10] / nval_i / lum2
    is_wli, is_nbi, nbi_score = colour_decision(rg, bg, rg_sd, bg_sd)
    n = ft.n
    label = np.where(is_nbi, 2, np.where(is_wli, 1, 0)).astype(np.int8)
    reason = np.where(label == 0, REASONS.index("out_of_body"), 0).astype(np.int8)
    for cond, why in ((ft.mode_frac >= 0.35, "menu"), (sat >= 0.30, "overexposed"),
                      ((dark >= 0.85) | (mean_y < 12), "black")):
        label[cond] = 0
        reason[cond] = REASONS.index(why)
    ft.label, ft.reason = label, reason
    # blur: relative to sharp frames of the same segment (modality and scene) nearby, since
    # sharpness depends on the scene as much as on the focus
    find_scenes(ft)
    for seg in segments(ft):
        cls = CLASSES.index(seg.kind)
        members = np.flatnonzero((label[seg.start:seg.end + 1] == cls)
                                 & (ft.scene[seg.start:seg.end + 1] == seg.scene)) + seg.start
        # the view compared with must be the same continuous one: split at gaps of > 0.5 s
        # (black, glare, a menu), after which the scope may look at something sharper or softer
        breaks = np.flatnonzero(np.diff(ft.times[members]) > 0.5) + 1
        for run in np.split(members, breaks):
            if len(run) == 0:
                continue
            sl = slice(int(run[0]), int(run[-1]) + 1)
            ok = np.zeros(sl.stop - sl.start, bool)
            ok[run - sl.start] = True
            ref = _local_reference(coarse[sl], ok, ft.times[sl])
            blurred = np.flatnonzero(ok & (coarse[sl] < BLUR_RATIO * ref)) + sl.start
            label[blurred] = 0
            reason[blurred] = REASONS.index("blurred")
    find_scenes(ft)
    ft.nbi_score = nbi_score.astype(np.float32)
    ft.sharpness = fine.astype(np.float32)
    ft.timing["classify_s"] = ft.timing.get("classify_s", 0.0) + time.perf_counter() - t0
    assert len(label) == n
    return ft


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-6 else 0.0


def _similar(a: np.ndarray, b: np.ndarray, cells: np.ndarray, shift: int = 3) -> float:
    """Correlation of two band thumbnails over the picture cells, the best over shifts of up to
    ``shift`` cells (~10 % of the frame): the camera drifts during a gap of unusable frames, a
    cut changes the content. Shifts are tried only when the plain correlation is low (rare)."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    best = _ncc(a[cells], b[cells])
    if best >= CUT_NCC:
        return best
    h, w = a.shape
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            ya, yb = slice(max(0, dy), h + min(0, dy)), slice(max(0, -dy), h + min(0, -dy))
            xa, xb = slice(max(0, dx), w + min(0, dx)), slice(max(0, -dx), w + min(0, -dx))
            m = cells[ya, xa] & cells[yb, xb]
            if m.sum() >= 0.5 * cells.sum():
                best = max(best, _ncc(a[ya, xa][m], b[yb, xb][m]))
    return best


def find_scenes(ft: FrameTable) -> np.ndarray:
    """Scene number of every usable frame (-1 for unusable): a new scene where consecutive usable
    frames' shared-band thumbnails (WLI green, NBI red) stop correlating, even when shifted."""
    assert ft.label is not None
    _, _, cells = _region_masks(ft)
    scene = np.full(ft.n, -1, np.int32)
    cur, prev = -1, None
    for i in np.flatnonzero(ft.label > 0):
        band = ft.desc[i, 0 if ft.label[i] == 1 else 1]
        if prev is None or _similar(prev, band, cells) < CUT_NCC:
            cur += 1
        scene[i] = cur
        prev = band
    ft.scene = scene
    return scene


@dataclass(frozen=True)
class Segment:
    """A run of usable frames of one modality in one scene: [start, end] frame indices."""

    kind: str
    scene: int
    start: int
    end: int
    frames: int


def segments(ft: FrameTable) -> list[Segment]:
    """The segments of a classified video (unusable frames inside a run do not split it)."""
    assert ft.label is not None and ft.scene is not None
    out: list[Segment] = []
    idx = np.flatnonzero(ft.label > 0)
    if len(idx) == 0:
        return out
    start = last = int(idx[0])
    count = 1
    for i in idx[1:]:
        i = int(i)
        if ft.label[i] == ft.label[last] and ft.scene[i] == ft.scene[last]:
            last, count = i, count + 1
            continue
        out.append(Segment(CLASSES[ft.label[start]], int(ft.scene[start]), start, last, count))
        start = last = i
        count = 1
    out.append(Segment(CLASSES[ft.label[start]], int(ft.scene[start]), start, last, count))
    return out


# ------------------------------------------------------------------------------ selection
@dataclass
class Pick:
    """One case to build: an NBI frame with its WLI candidates (best first), or a WLI-only frame."""

    segment: Segment
    nbi: int | None
    wli_candidates: list[int]


def _wli_partners(ft: FrameTable, i: int, max_gap_s: float) -> list[int]:
    assert ft.label is not None and ft.scene is not None and ft.sharpness is not None
    t = ft.times[i]
    lo, hi = np.searchsorted(ft.times, [t - max_gap_s, t + max_gap_s + 1e-9])
    c = np.arange(lo, hi)
    c = c[(ft.label[c] == 1) & (ft.scene[c] == ft.scene[i])]
    if len(c) == 0:
        return []
    sharp = ft.sharpness[c]
    good = sharp >= 0.7 * sharp.max()
    dt = np.abs(ft.times[c] - t)
    order = np.lexsort((dt, ~good))          # sharp ones first, nearest first among them
    return [int(v) for v in c[order]]


def select_pairs(ft: FrameTable, settings: VideoSettings) -> list[list[Pick]]:
    """Per NBI segment, its candidate picks in the order to try them (and WLI-only picks)."""
    assert ft.label is not None and ft.sharpness is not None and ft.scene is not None
    t0 = time.perf_counter()
    segs = segments(ft)
    out: list[list[Pick]] = []
    nbi_scenes = {s.scene for s in segs if s.kind == "nbi"}
    for seg in segs:
        if seg.kind == "nbi":
            idx = np.arange(seg.start, seg.end + 1)
            idx = idx[ft.label[idx] == 2]
            t_a, t_b = ft.times[seg.start], ft.times[seg.end]
            if t_b - t_a > 3 * settings.edge_s:
                inner = idx[(ft.times[idx] >= t_a + settings.edge_s) & (ft.times[idx] <= t_b - settings.edge_s)]
                idx = inner if len(inner) else idx
            order = idx[np.argsort(-ft.sharpness[idx], kind="stable")]
            picks: list[Pick] = []
            for i in order:
                if len(picks) >= settings.register_tries:
                    break
                if any(abs(ft.times[i] - ft.times[p.nbi]) < settings.min_spacing_s for p in picks if p.nbi is not None):
                    continue
                partners = _wli_partners(ft, int(i), settings.max_gap_s)
                if partners:
                    picks.append(Pick(seg, int(i), partners[:3]))
            out.append(picks)
        elif settings.wli_only and seg.scene not in nbi_scenes and seg.frames >= max(2, int(0.5 * ft.fps)):
            idx = np.arange(seg.start, seg.end + 1)
            idx = idx[ft.label[idx] == 1]
            block = np.floor((ft.times[idx] - ft.times[seg.start]) / settings.wli_every_s).astype(int)
            picks = []
            for b in np.unique(block):
                sel = idx[block == b]
                picks.append(Pick(seg, None, [int(sel[np.argmax(ft.sharpness[sel])])]))
            out.append(picks)
    ft.timing["select_s"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------ pass 2: fetch
class _Fetcher:
    """Reads chosen frames at full resolution (pass 2) from one open capture, moving forward.

    A frame near ahead is reached by grabs, a far one by a seek; each is checked against its
    pass-1 thumbnail. Where a seek lands elsewhere (some containers do not seek exactly) the
    fetcher stops seeking and reads forward; going back means reopening the file.
    """

    def __init__(self, ft: FrameTable) -> None:
        self.ft = ft
        self.size = _analysis_size(ft.width, ft.height)
        self.cap: cv2.VideoCapture | None = None
        self.pos = 0            # index of the frame the next grab() returns
        self.seek_ok = True

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    def _read(self, target: int) -> np.ndarray:
        ft = self.ft
        if self.cap is None or target < self.pos:
            if self.seek_ok and self.cap is not None:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, target)
                self.pos = target
            else:
                self.close()
                self.cap, self.pos = _open(ft.path), 0
        if self.seek_ok and target - self.pos > 4 * max(ft.fps, 1):
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            self.pos = target
        while self.pos < target:
            if not self.cap.grab():
                raise VideoError(ft.path, f"frame {target} could not be read again")
            self.pos += 1
        ok, frame = self.cap.read()
        self.pos += 1
        if not ok or frame is None:
            raise VideoError(ft.path, f"frame {target} could not be read again")
        return frame

    def get(self, target: int) -> np.ndarray:
        """Frame ``target`` as RGB; VideoError when it cannot be read as pass 1 saw it."""
        want = self.ft.desc[target].astype(np.int16)
        for _attempt in range(2):
            frame = self._read(target)
            check = _tile_stats(_small(frame, self.size))[1]
            if float(np.abs(check.astype(np.int16) - want).mean()) <= 1.0:
                return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if not self.seek_ok:
                break
            self.seek_ok = False                 # this container does not seek exactly: read
            self.close()                         # forward from the start from now on
        raise VideoError(self.ft.path, f"frame {target} decodes differently the second time")

    def get_many(self, indices: list[int], cancel: Callable[[], bool] | None = None) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for target in sorted(set(indices)):
            if cancel is not None and cancel():
                raise VideoCancelled()
            out[target] = self.get(target)
        return out


def fetch_frames(ft: FrameTable, indices: list[int], cancel: Callable[[], bool] | None = None) -> dict[int, np.ndarray]:
    """Full-resolution RGB frames by index (see _Fetcher)."""
    f = _Fetcher(ft)
    try:
        return f.get_many(indices, cancel)
    finally:
        f.close()


# ------------------------------------------------------------------------------ whole video
@dataclass
class VideoCase:
    """One case found in a video, ready for the store (frames already blacked out as set)."""

    wli: np.ndarray
    nbi: np.ndarray | None
    registration: object | None        # model.registration.Registration
    wli_frame: int
    nbi_frame: int | None
    provenance: dict


@dataclass
class VideoResult:
    path: Path
    sha256: str
    cases: list[VideoCase]
    counts: dict[str, int]
    segments: list[Segment]
    text_boxes: list[tuple[int, int, int, int]]
    timing: dict[str, float]
    nbi_segments_without_pair: int = 0


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _frame_info(ft: FrameTable, i: int) -> dict:
    assert ft.label is not None and ft.nbi_score is not None and ft.sharpness is not None
    return {"frame": int(i), "time_s": round(float(ft.times[i]), 3), "class": CLASSES[ft.label[i]],
            "nbi_score": round(float(ft.nbi_score[i]), 4), "sharpness": round(float(ft.sharpness[i]), 5)}


def process_video(path: os.PathLike | str, settings: VideoSettings = VideoSettings(),
                  progress: Callable[[str, int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None, sha256: str | None = None) -> VideoResult:
    """Everything up to the store: the cases of one video, with provenance. Raises VideoError
    (nothing found is returned) or VideoCancelled. ``sha256``: the file's, when already known."""
    from model.registration import register_pair  # SIFT code only when a video is imported

    path = Path(path)
    t0 = time.perf_counter()
    c0 = time.process_time()
    ft = analyse_video(path, progress, cancel)
    ft.timing["pass1_cpu_s"] = time.process_time() - c0
    t1 = time.perf_counter()
    sha = sha256 or file_sha256(path)
    ft.timing["hash_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    ft.text_boxes = detect_text_boxes([s for _, s in ft.text_samples], ft.width, ft.height)
    ft.text_samples = []
    ft.timing["text_s"] = time.perf_counter() - t1
    classify_frames(ft)
    groups = select_pairs(ft, settings)
    segs = segments(ft)
    boxes = ft.text_boxes
    cases: list[VideoCase] = []
    missing = 0
    total = len(groups)
    fetch_s = fetch_cpu = 0.0
    t1, c1 = time.perf_counter(), time.process_time()
    fetcher = _Fetcher(ft)
    try:
        # one group (segment) at a time: at most its candidates' full-resolution frames in memory
        for k, group in enumerate(groups):
            if progress is not None:
                progress("register", k, total)
            tf, cf = time.perf_counter(), time.process_time()
            frames = fetcher.get_many([i for p in group for i in ([p.nbi] if p.nbi is not None else [])
                                       + p.wli_candidates], cancel)
            fetch_s += time.perf_counter() - tf
            fetch_cpu += time.process_time() - cf
            clean = {i: blackout(f, boxes) if boxes else f for i, f in frames.items()}
            out = frames if settings.keep_text else clean
            if group and group[0].nbi is None:          # WLI-only picks
                for p in group:
                    w = p.wli_candidates[0]
                    cases.append(VideoCase(out[w], None, None, w, None,
                                           _provenance(ft, sha, p.segment, w, None, None, settings)))
                continue
            kept: list[int] = []
            for p in group:
                if len(kept) >= settings.per_segment:
                    break
                assert p.nbi is not None
                if any(abs(ft.times[p.nbi] - ft.times[n]) < settings.min_spacing_s for n in kept):
                    continue
                for w in p.wli_candidates:
                    # registered on the blacked-out frames: static text would pull towards the identity
                    reg = register_pair(clean[w], clean[p.nbi])
                    if reg.quality == "good" and reg.inliers >= MIN_INLIERS:
                        cases.append(VideoCase(out[w], out[p.nbi], reg, w, p.nbi,
                                               _provenance(ft, sha, p.segment, w, p.nbi, reg, settings)))
                        kept.append(p.nbi)
                        break
            if not kept:
                missing += 1
            del frames, clean, out
    finally:
        fetcher.close()
    ft.timing["fetch_s"] = fetch_s
    ft.timing["fetch_cpu_s"] = fetch_cpu
    ft.timing["register_s"] = time.perf_counter() - t1 - fetch_s
    ft.timing["register_cpu_s"] = time.process_time() - c1 - fetch_cpu
    ft.timing["total_s"] = time.perf_counter() - t0
    ft.timing["total_cpu_s"] = time.process_time() - c0
    assert ft.label is not None
    counts = {"frames": ft.n, "wli": int((ft.label == 1).sum()), "nbi": int((ft.label == 2).sum()),
              "unusable": int((ft.label == 0).sum()), "pairs": sum(1 for c in cases if c.nbi is not None),
              "wli_only": sum(1 for c in cases if c.nbi is None)}
    return VideoResult(path, sha, cases, counts, segs, boxes, ft.timing, missing)


def _provenance(ft: FrameTable, sha: str, seg: Segment, w: int, nbi: int | None, reg, settings: VideoSettings) -> dict:
    return {
        "video_sha256": sha, "video_name": ft.path.name, "fps": round(ft.fps, 4), "frames": ft.n,
        "size": [ft.width, ft.height],
        "wli": _frame_info(ft, w), "nbi": _frame_info(ft, nbi) if nbi is not None else None,
        "segment": {"kind": seg.kind, "scene": seg.scene, "start": seg.start, "end": seg.end,
                    "start_s": round(float(ft.times[seg.start]), 3), "end_s": round(float(ft.times[seg.end]), 3)},
        "text_boxes": [list(b) for b in ft.text_boxes], "text_blacked_out": bool(ft.text_boxes) and not settings.keep_text,
        "registration": reg.to_dict() if reg is not None else None,
        "settings": asdict(settings),
    }
