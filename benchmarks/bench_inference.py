"""Per-pair inference time of the tiny ADF model vs a reference U-Net, quiet and under CPU load.

Both go through the same Predictor pre/post-processing on a 512x512 WLI/NBI pair (the U-Net
sees only WLI: it is single-stream) at the ADF config's input size.  Uses the bundled
resources/models/adf-tiny.json when present, else a random-init tiny model (timing does not
depend on the weights).  The ADF time includes every test-time flip view its card asks for
(``adf_views`` network passes, as the app runs it); the U-Net runs one.

Threads as the app runs them (model/cpu_policy.py, set before torch loads): passive OpenMP
waiting and half the physical cores (1 to 4) threads; ``--omp-wait default`` leaves OpenMP's own spinning
wait (the behaviour before issue 17) for comparison, ``--threads`` overrides the count.

``--load N`` measures twice in one run: quiet, then with N busy processes started by the
benchmark (benchmarks/busy_load.py), and reports the loaded/quiet ratio of the ADF prediction.
The quiet figure is only as quiet as the machine: ``loadavg_1min`` says what else ran.

    .venv/bin/python benchmarks/bench_inference.py [--repeats 30] [--load 2]

Last stdout line: one JSON object {"adf_ms", "unet_ms", "ratio", ..., "loaded": {...},
"adf_loaded_over_quiet"}.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--model", default=None, help="a model card (default: the bundled model)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the app's policy)")
    ap.add_argument("--omp-wait", choices=("passive", "default"), default="passive",
                    help="passive: as the app runs (default); default: OpenMP's spinning wait, for comparison")
    ap.add_argument("--load", type=int, default=0, help="also measure with N busy processes (0: quiet only)")
    ap.add_argument("--no-unet", action="store_true", help="ADF only (faster)")
    return ap.parse_args()


ARGS = parse_args()
# The policy must be in the environment before torch loads, exactly as main.py does it.
from model.cpu_policy import app_threads, apply_thread_policy  # noqa: E402

if ARGS.omp_wait == "default":  # OpenMP's own (spinning) wait: what the app did before issue 17
    for key in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME"):
        os.environ.pop(key, None)
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads or app_threads())
else:
    apply_thread_policy(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from busy_load import busy_processes, machine  # noqa: E402
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


def measure(adf: Predictor, unet: UNetPredictor | None, pair: tuple, warmup: int, repeats: int) -> dict:
    """Median / p90 / min ms of the ADF (and U-Net) prediction, interleaved so load hits both alike."""
    adf_ts, unet_ts, stages = [], [], []
    for _ in range(warmup):
        adf.predict(*pair)
        if unet is not None:
            unet.predict(*pair)
    for _ in range(repeats):
        s = time.perf_counter()
        p = adf.predict(*pair)
        adf_ts.append((time.perf_counter() - s) * 1000.0)
        stages.append(p.ms)
        if unet is not None:
            s = time.perf_counter()
            unet.predict(*pair)
            unet_ts.append((time.perf_counter() - s) * 1000.0)
    out = {
        "adf_ms": round(statistics.median(adf_ts), 2),
        "adf_p90_ms": round(float(np.percentile(adf_ts, 90)), 2),
        "adf_min_ms": round(min(adf_ts), 2),
        "adf_stage_ms": {k: round(statistics.median(s[k] for s in stages), 2) for k in ("pre", "infer", "post")},
    }
    if unet_ts:
        out.update({"unet_ms": round(statistics.median(unet_ts), 2), "unet_min_ms": round(min(unet_ts), 2),
                    "ratio": round(statistics.median(adf_ts) / statistics.median(unet_ts), 4)})
    return out


def main() -> None:
    torch.manual_seed(0)
    bundled = Path(ARGS.model) if ARGS.model else ROOT / "resources" / "models" / "adf-tiny.json"
    with tempfile.TemporaryDirectory() as tmp:
        if bundled.is_file():
            path, source = bundled, "bundled" if not ARGS.model else str(bundled)
        else:
            cfg = get_preset("tiny")
            path, source = save_model(ADFNet(cfg), cfg, Path(tmp) / "adf-tiny", {"id": "adf-tiny-random"}), "random-init"
        adf = Predictor.load(path, device="cpu")
    unet = None if ARGS.no_unet else UNetPredictor(adf)
    rng = np.random.default_rng(0)
    wli = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    nbi = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    hm = np.array([[1.0, 0.01, 3.0], [-0.01, 1.0, -2.0], [0.0, 0.0, 1.0]])
    res: dict = {"quiet_machine": machine()}
    res.update(measure(adf, unet, (wli, nbi, hm), ARGS.warmup, ARGS.repeats))
    res.update({
        "adf_params_m": round(count_params(adf.net) / 1e6, 3),
        "input_size": adf.input_size,
        "adf_views": len(adf.flips),  # test-time flip views the card asks for (each is one network pass)
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "weights": source,
    })
    if unet is not None:
        res["unet_params_m"] = round(count_params(unet.unet) / 1e6, 3)
    if ARGS.load > 0:
        with busy_processes(ARGS.load):
            loaded = measure(adf, unet, (wli, nbi, hm), ARGS.warmup, ARGS.repeats)
            loaded["machine"] = machine()
        loaded["busy_processes"] = ARGS.load
        res["loaded"] = loaded
        res["adf_loaded_over_quiet"] = round(loaded["adf_ms"] / res["adf_ms"], 3)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
