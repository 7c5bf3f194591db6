"""Running a trained ADF model on one WLI/NBI pair: device choice, pre/post-processing, timing.

`Predictor.load(path, device)` picks the device once and keeps a human-readable reason for the
UI ("CUDA: NVIDIA H100", "CPU — no CUDA device found", ...).  A CUDA failure during a
prediction (out of memory, driver) moves the model to the CPU once, with a warning, and the
reason says so.  Inference is plain eager PyTorch in channels_last layout: torch.compile would
cost 6-40 s at app start.

Pre-processing: NBI is warped into the WLI frame with the case's homography (NBI -> WLI), both
images are resized to the model's square input size (no letterbox: training does the same) and
normalised with the card's mean/std.  Test-time augmentation: when the card lists
``test_time_flips`` (e.g. ``["none", "h"]``) the views are run as one batch and their
probabilities, flipped back, are averaged; ``tta=False`` runs the plain view only (ablations,
speed).  Post-processing is `model.postprocess.postprocess_mask`
on the uint8 probability, the same rule the viewer applies to a cached prediction.

Decision threshold: a card may say ``decision_threshold`` (chosen on data the report does not
use, docs/MODEL.md). The automatic mode's probability is then recalibrated by a logit shift,
p' = p(1-t) / (p(1-t) + (1-p)t), so that p' > 0.5 exactly where p > t: the cached probability,
the viewer's overlay and every evaluation apply the one 0.5 rule and agree. The click mode is
left at the threshold it was trained with (0.5).
"""
from __future__ import annotations

import logging
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from model.adf import ADFNet
from model.card import card_id, load_models, test_time_flips
from model.config import ADFConfig
from model.cpu_policy import app_threads, keep_freed_memory
from model.postprocess import postprocess_mask

log = logging.getLogger(__name__)
_THREADS_SET = False


@dataclass
class Prediction:
    """One pair's result; prob and mask are in WLI pixel space."""

    prob: np.ndarray  # uint8 (H,W), prob x 255
    mask: np.ndarray  # bool (H,W), post-processed
    model_id: str
    ms: dict[str, float] = field(default_factory=dict)  # pre, infer, post, total


def default_threads() -> None:
    """torch threads: the app's count (model.cpu_policy) unless OMP_NUM_THREADS says otherwise (once).

    main.py sets OMP_NUM_THREADS and the passive wait before torch loads; this covers other
    callers (scripts, tests) that import the predictor directly."""
    global _THREADS_SET
    if _THREADS_SET or os.environ.get("OMP_NUM_THREADS"):
        return
    torch.set_num_threads(app_threads())
    _THREADS_SET = True


def _cuda_probe(device: str = "cuda") -> str | None:
    """None when a tiny op runs on this GPU, else why not."""
    try:
        x = torch.ones(8, device=device)
        if float((x * 2).sum().item()) != 16.0:
            return "CUDA probe returned a wrong result"
        torch.cuda.synchronize(device)
        return None
    except Exception as e:  # driver / runtime problems surface as many types
        return f"CUDA probe failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"


class DeviceUnavailable(RuntimeError):
    """The requested device cannot be used (choose_device with fallback=False); str() says why."""


def choose_device(requested: str = "auto", fallback: bool = True, index: int | None = None) -> tuple[str, str]:
    """(device, reason) for "auto", "cpu", "cuda" or "cuda:N": the one rule of device choice.

    "auto" takes the GPU when a tiny op runs there, else the CPU. A requested but unusable CUDA
    falls back to the CPU with the reason when ``fallback`` (the app: it must run anyway, and says
    where in the status bar), and raises DeviceUnavailable with it otherwise (the trainer: a run
    sized for a GPU must not quietly take days on the CPU). ``index`` is the GPU that "auto" and
    "cuda" mean (a DDP process's local rank; None: the current one); "cuda:N" names it itself.
    ValueError for any other name."""
    if requested not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", requested):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {requested!r}")
    if requested == "cpu":
        return "cpu", "CPU — requested"
    dev = requested if requested.startswith("cuda:") else ("cuda" if index is None else f"cuda:{index}")
    if torch.version.cuda is None:
        why = "torch was built without CUDA"
    elif not torch.cuda.is_available():
        why = "no CUDA device found"
    else:
        why = _cuda_probe(dev)
        if why is None:
            return dev, f"CUDA: {torch.cuda.get_device_name(torch.device(dev))}"
    if requested == "auto":
        return "cpu", f"CPU — {why}"
    if not fallback:
        raise DeviceUnavailable(f"CUDA requested but not available: {why}")
    return "cpu", f"CPU — CUDA requested but not available: {why}"


class Predictor:
    """A loaded model ready to segment pairs; see the module docstring."""

    def __init__(self, net: ADFNet, card: dict, device: str = "cpu", device_reason: str = "CPU — requested",
                 tta: bool = True, click_net: ADFNet | None = None) -> None:
        self.card = card
        self.flips: list[tuple[int, ...]] = test_time_flips(card) if tta else [()]
        self.cfg: ADFConfig = net.cfg
        self.model_id: str = card_id(card)  # the id the workspace registers it under
        # the card may ask for a larger input than training used (small lesions: docs/MODEL.md)
        self.input_size = int(card.get("inference_input_size") or self.cfg.input_size)
        # never upsample a small image beyond its own size (chosen on Kvasir val_choose, docs/MODEL.md)
        self.no_upsampling = bool(card.get("inference_no_upsampling"))
        self.decision_threshold = float(card.get("decision_threshold") or 0.5)
        if not 0.0 < self.decision_threshold < 1.0:
            raise ValueError(f"card decision_threshold must be in (0, 1), got {self.decision_threshold}")
        self._scale = (1.0 / (255.0 * np.asarray(self.cfg.std, np.float32))).astype(np.float32)
        self._shift = (-np.asarray(self.cfg.mean, np.float32) / np.asarray(self.cfg.std, np.float32)).astype(np.float32)
        self._scale_cv = (*(float(v) for v in self._scale), 0.0)  # cv2 Scalars
        self._shift_cv = (*(float(v) for v in self._shift), 0.0)
        self.device = device
        self.device_reason = device_reason
        self.net = net.eval().to(device=device, memory_format=torch.channels_last)
        # the click mode's own network where the model has one (DESIGN-NOTES 26), else the same
        self.click_net = self.net if click_net is None else \
            click_net.eval().to(device=device, memory_format=torch.channels_last)
        self._fell_back = False
        # "both": every stream a case has (the app); "nbi": the NBI-only ablation (networks with
        # NBI skips only). WLI-only is simply predict(wli, None).
        self.streams = "both"

    @property
    def interactive(self) -> bool:
        """Whether this network takes clicks (click_chans > 0 and trained for them, per its card)."""
        return bool(self.cfg.click_chans) and bool(self.card.get("interactive"))

    def set_streams(self, streams: str) -> None:
        """Choose "both" or "nbi" (see __init__); refuses "nbi" for a network without an NBI-only path."""
        if streams not in ("both", "nbi"):
            raise ValueError("streams must be 'both' or 'nbi'")
        if streams == "nbi" and not self.cfg.nbi_skips:
            raise ValueError(f"model {self.model_id} has no NBI-only path (trained before release 3)")
        self.streams = streams

    @classmethod
    def load(cls, path: os.PathLike | str, device: str = "auto", tta: bool = True) -> Predictor:
        """Load a model file (.json, .safetensors or stem) onto the chosen device.

        ``tta=False`` ignores the card's test-time flips (ablations, speed comparisons)."""
        default_threads()
        keep_freed_memory()  # before the weights are read: the speed must not depend on their size
        dev, reason = choose_device(device)
        net, click_net, card = load_models(Path(path), map_location="cpu")
        pred = cls(net, card, dev, reason, tta=tta, click_net=click_net)
        log.info("model %s on %s", pred.model_id, reason)
        return pred

    # -- pre / post ------------------------------------------------------------------------
    def size_for(self, h: int, w: int) -> int:
        """The network input size for a WLI image of h x w: the card's, or with
        ``inference_no_upsampling`` the image's short side (a multiple of 32, not below the training
        size) when that is smaller, since upsampling a small image invents no detail."""
        s = self.input_size
        if self.no_upsampling and min(h, w) < s:
            s = max(self.cfg.input_size, min(s, min(h, w) // 32 * 32))
        return s

    def _prep_image(self, img: np.ndarray, s: int) -> np.ndarray:
        h, w = img.shape[:2]
        interp = cv2.INTER_AREA if (h > s or w > s) else cv2.INTER_LINEAR
        if (h, w) != (s, s):
            img = cv2.resize(img, (s, s), interpolation=interp)
        # OpenCV's per-channel scalar ops: the same float32 result as numpy's broadcast
        # ``img * scale + shift``, which walks the 3-wide last axis slowly (4.5 vs 0.4 ms at 384 px)
        out = cv2.multiply(img.astype(np.float32), self._scale_cv)
        return cv2.add(out, self._shift_cv, dst=out)  # (s,s,3) float32

    def _preprocess(
        self, wli: np.ndarray, nbi: np.ndarray | None, homography: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        _check_rgb(wli, "wli")
        h, w = wli.shape[:2]
        s = self.size_for(h, w)
        wl = self._prep_image(wli, s)
        if nbi is None:
            return wl, None
        _check_rgb(nbi, "nbi")
        hm = np.eye(3) if homography is None else np.asarray(homography, np.float64)
        if hm.shape != (3, 3):
            raise ValueError(f"homography must be 3x3, got {hm.shape}")
        if homography is not None or nbi.shape[:2] != (h, w):
            nbi = cv2.warpPerspective(nbi, hm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return wl, self._prep_image(nbi, s)

    def _to_tensor(self, arrs: list[np.ndarray]) -> torch.Tensor:
        # (B,s,s,3) NHWC memory viewed as NCHW = channels_last without a copy
        t = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)
        return t.to(self.device, non_blocking=True)

    def _forward(self, wli_t: torch.Tensor, nbi_t: torch.Tensor | None, present: torch.Tensor | None,
                 wli_present: torch.Tensor | None = None, clicks: torch.Tensor | None = None) -> torch.Tensor:
        """Probabilities (B,s,s) float32 on the CPU, averaged over the card's flip views.

        Subclasses (benchmarks) may swap the net. Clicks go to the click network."""
        net = self.net if clicks is None else self.click_net
        views = self.flips
        if len(views) == 1 and not views[0]:
            out = net(wli_t, nbi_t, present, wli_present, clicks)
            return torch.sigmoid(out.logits[:, 0].float()).cpu()

        def flip(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
            return torch.flip(t, dims) if dims else t

        def cat(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else torch.cat([flip(t, d) for d in views])

        def rep(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.repeat(len(views))

        b = wli_t.shape[0]
        logits = net(cat(wli_t), cat(nbi_t), rep(present), rep(wli_present), cat(clicks)).logits[:, 0:1].float()
        probs = [flip(torch.sigmoid(logits[i * b:(i + 1) * b]), d) for i, d in enumerate(views)]
        return torch.stack(probs).mean(0)[:, 0].cpu()

    def _infer(self, wl: list[np.ndarray], nb: list[np.ndarray | None],
               clicks: list[np.ndarray] | None = None) -> np.ndarray:
        def run() -> np.ndarray:
            with torch.inference_mode():
                wli_t = self._to_tensor(wl)
                ck = None
                if clicks is not None:
                    ck = self._to_tensor(clicks)
                if all(n is None for n in nb):
                    return self._forward(wli_t, None, None, None, ck).numpy()
                zero = np.zeros_like(wl[0])
                nbi_t = self._to_tensor([zero if n is None else n for n in nb])
                present = torch.tensor([n is not None for n in nb], device=self.device)
                wpres = None
                if self.streams == "nbi":  # ablation: NBI alone where a case has it
                    wpres = ~present
                return self._forward(wli_t, nbi_t, present, wpres, ck).numpy()

        try:
            return run()
        except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
            if not self.device.startswith("cuda") or self._fell_back:
                raise
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            self._fell_back = True
            same = self.click_net is self.net
            self.net = self.net.to("cpu")
            self.click_net = self.net if same else self.click_net.to("cpu")
            self.device = "cpu"
            self.device_reason = f"CPU — CUDA failed at run time: {msg}"
            warnings.warn(f"CUDA inference failed ({msg}); continuing on the CPU", RuntimeWarning, stacklevel=3)
            log.warning("CUDA inference failed (%s); continuing on the CPU", msg)
            try:
                torch.cuda.empty_cache()
            except Exception:
                pass
            return run()

    def recalibrate(self, prob: np.ndarray) -> np.ndarray:
        """The automatic mode's probability with the card's decision threshold moved to 0.5."""
        t = self.decision_threshold
        if t == 0.5:
            return prob
        p = np.asarray(prob, np.float32)
        num = p * (1.0 - t)
        return num / np.maximum(num + (1.0 - p) * t, 1e-12)

    @staticmethod
    def _postprocess(prob_small: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        prob = cv2.resize(prob_small, (w, h), interpolation=cv2.INTER_LINEAR)
        prob_u8 = np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)
        return prob_u8, postprocess_mask(prob_u8)

    # -- public ----------------------------------------------------------------------------
    def predict(self, wli: np.ndarray, nbi: np.ndarray | None = None, homography: np.ndarray | None = None) -> Prediction:
        """Segment one pair (RGB uint8; NBI optional, any size; homography NBI -> WLI)."""
        return self.predict_batch([(wli, nbi, homography)], batch_size=1)[0]

    def predict_clicks(self, wli: np.ndarray, nbi: np.ndarray | None, homography: np.ndarray | None,
                       clicks: list, prev_mask: np.ndarray | None = None) -> Prediction:
        """Redraw the mask from the clinician's clicks (interactive mode; ``model.interactive.Click``
        in WLI pixel coordinates) and the current mask (bool, WLI size, or None).

        The clicks are drawn at the radius training used for this input size, and every click's
        disk keeps the click's label in the result (``stick_clicks``): a click is certain."""
        from model.interactive import click_maps, input_radius, stick_clicks

        if not self.interactive:
            raise ValueError(f"model {self.model_id} has no interactive mode (its card does not say it was "
                             "trained with clicks)")
        h, w = wli.shape[:2]
        t0 = time.perf_counter()
        wl, nb = self._preprocess(wli, nbi, homography)
        size = self.size_for(h, w)
        radius = input_radius(size)
        maps = click_maps(list(clicks), prev_mask, (h, w), size, radius)
        t1 = time.perf_counter()
        prob_small = self._infer([wl], [nb], clicks=[maps])[0]
        t2 = time.perf_counter()
        prob, mask = self._postprocess(prob_small, h, w)
        stuck = stick_clicks(mask, list(clicks), (radius * w / size, radius * h / size))
        if not np.array_equal(stuck, mask):  # keep the probability on the mask's side of 0.5
            prob = prob.copy()
            prob[stuck & ~mask] = 255
            prob[mask & ~stuck] = 0
            mask = stuck
        t3 = time.perf_counter()
        ms = {"pre": (t1 - t0) * 1000.0, "infer": (t2 - t1) * 1000.0, "post": (t3 - t2) * 1000.0}
        ms["total"] = ms["pre"] + ms["infer"] + ms["post"]
        return Prediction(prob, mask, self.model_id, ms)

    def predict_batch(self, pairs: list[tuple], batch_size: int | None = None) -> list[Prediction]:
        """Segment a worklist of (wli,), (wli, nbi) or (wli, nbi, homography) tuples."""
        if batch_size is None:
            batch_size = 8 if self.device.startswith("cuda") else 1
        results: list[Prediction] = []
        # one batch holds pairs of one network input size (``size_for`` may differ per image)
        chunks: list[tuple[object, list[tuple]]] = []
        for pair in pairs:
            item = tuple(pair) + (None,) * (3 - len(pair))
            shape = getattr(item[0], "shape", None)
            key = self.size_for(shape[0], shape[1]) if shape is not None and len(shape) >= 2 else id(item)
            if chunks and chunks[-1][0] == key and len(chunks[-1][1]) < batch_size:
                chunks[-1][1].append(item)
            else:
                chunks.append((key, [item]))
        for _, chunk in chunks:
            wl, nb, pre_ms = [], [], []
            for wli, nbi, hm in chunk:
                s = time.perf_counter()
                a, b = self._preprocess(wli, nbi, hm)
                wl.append(a)
                nb.append(b)
                pre_ms.append((time.perf_counter() - s) * 1000.0)
            s = time.perf_counter()
            probs = [self.recalibrate(p) for p in self._infer(wl, nb)]
            infer_ms = (time.perf_counter() - s) * 1000.0 / len(chunk)
            for i, (wli, _, _) in enumerate(chunk):
                s = time.perf_counter()
                prob, mask = self._postprocess(probs[i], wli.shape[0], wli.shape[1])
                post = (time.perf_counter() - s) * 1000.0
                ms = {"pre": pre_ms[i], "infer": infer_ms, "post": post}
                ms["total"] = ms["pre"] + ms["infer"] + ms["post"]
                results.append(Prediction(prob, mask, self.model_id, ms))
        return results


def _check_rgb(img: np.ndarray, name: str) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = getattr(img, "shape", type(img).__name__)
        raise ValueError(f"{name} must be an RGB uint8 (H, W, 3) array, got {got}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"{name} is empty")
