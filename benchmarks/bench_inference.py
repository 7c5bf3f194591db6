"""Per-pair inference time of the tiny ADF model vs a reference U-Net, on 2 CPU threads.

Both go through the same Predictor pre/post-processing on a 512x512 WLI/NBI pair (the U-Net
sees only WLI: it is single-stream) at the ADF config's input size.  Uses the bundled
resources/models/adf-tiny.json when present, else a random-init tiny model (timing does not
depend on the weights).  The ADF time includes every test-time flip view its card asks for
(``adf_views`` network passes, as the app runs it); the U-Net runs one.  Last stdout line: one JSON object
{"adf_ms", "unet_ms", "ratio", "adf_params_m", "unet_params_m", ...}.

    .venv/bin/python benchmarks/bench_inference.py [--repeats 30]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_unet import UNet  # noqa: E402

from model.adf import ADFNet, count_params  # noqa: E402
from model.card import save_model  # noqa: E402
from model.config import get_preset  # noqa: E402
from model.predictor import Predictor  # noqa: E402


class UNetPredictor(Predictor):
    """Same pre/post as the ADF Predictor, but a single-stream U-Net on the WLI image."""

    def __init__(self, base: Predictor) -> None:
        self.__dict__.update(base.__dict__)
        self.unet = UNet(32).eval().to(memory_format=torch.channels_last)

    def _forward(self, wli_t, nbi_t, present, *_rest):
        return torch.sigmoid(self.unet(wli_t)[:, 0].float()).cpu()


def _time(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - s) * 1000.0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bundled = ROOT / "resources" / "models" / "adf-tiny.json"
    with tempfile.TemporaryDirectory() as tmp:
        if bundled.is_file():
            path, source = bundled, "bundled"
        else:
            cfg = get_preset("tiny")
            path, source = save_model(ADFNet(cfg), cfg, Path(tmp) / "adf-tiny", {"id": "adf-tiny-random"}), "random-init"
        adf = Predictor.load(path, device="cpu")
    unet = UNetPredictor(adf)
    rng = np.random.default_rng(0)
    wli = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    nbi = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    hm = np.array([[1.0, 0.01, 3.0], [-0.01, 1.0, -2.0], [0.0, 0.0, 1.0]])
    # interleave the two so background load affects both alike
    adf_ts, unet_ts, stages = [], [], []
    for _ in range(args.warmup):
        adf.predict(wli, nbi, hm)
        unet.predict(wli, nbi, hm)
    for _ in range(args.repeats):
        s = time.perf_counter()
        p = adf.predict(wli, nbi, hm)
        adf_ts.append((time.perf_counter() - s) * 1000.0)
        stages.append(p.ms)
        s = time.perf_counter()
        unet.predict(wli, nbi, hm)
        unet_ts.append((time.perf_counter() - s) * 1000.0)
    adf_ms, unet_ms = statistics.median(adf_ts), statistics.median(unet_ts)
    res = {
        "adf_ms": round(adf_ms, 2),
        "unet_ms": round(unet_ms, 2),
        "ratio": round(adf_ms / unet_ms, 4),
        "adf_params_m": round(count_params(adf.net) / 1e6, 3),
        "unet_params_m": round(count_params(unet.unet) / 1e6, 3),
        "adf_stage_ms": {k: round(statistics.median(s[k] for s in stages), 2) for k in ("pre", "infer", "post")},
        "adf_min_ms": round(min(adf_ts), 2),
        "unet_min_ms": round(min(unet_ts), 2),
        "input_size": adf.input_size,
        "adf_views": len(adf.flips),  # test-time flip views the card asks for (each is one network pass)
        "threads": torch.get_num_threads(),
        "weights": source,
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
