"""Training throughput (images/s) of the ADF network on this machine: fp32 vs bf16 autocast,
channels_last, image size. One full optimizer step (forward, adf_loss, backward, AdamW) on
synthetic inputs; the data pipeline is not included (it costs a few ms per image).

Prints one JSON object. Options: --sizes 128,256 --batch 8 --steps 6 --threads N --quick
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from model.adf import ADFNet  # noqa: E402
from model.config import get_preset  # noqa: E402
from model.losses import adf_loss  # noqa: E402


def measure(size: int, bf16: bool, channels_last: bool, batch: int, steps: int, preset: str) -> float:
    torch.manual_seed(0)
    net = ADFNet(get_preset(preset))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    x = torch.randn(batch, 3, size, size)
    n = torch.randn(batch, 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        n = n.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch, 1, size, size)
    y[:, :, size // 4 : size // 2, size // 4 : size // 2] = 1
    present = torch.ones(batch, dtype=torch.bool)
    times = []
    for _ in range(steps + 2):  # two warm-up steps (oneDNN builds kernels per shape)
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x, n, present)
            loss, _ = adf_loss(out, y, 0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    times = sorted(times[2:])
    return batch / times[len(times) // 2]  # median step


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="128,256")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--quick", action="store_true", help="one small configuration only (CI smoke)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    res = {"benchmark": "train_throughput", "preset": a.preset, "batch": a.batch, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "images_per_s": {}}
    sizes = [96] if a.quick else [int(s) for s in a.sizes.split(",")]
    combos = [(False, False), (True, False), (True, True)] if not a.quick else [(True, False)]
    for size in sizes:
        for bf16, cl in combos:
            key = f"{size}px_{'bf16' if bf16 else 'fp32'}{'_cl' if cl else ''}"
            res["images_per_s"][key] = round(
                measure(size, bf16, cl, 2 if a.quick else a.batch, 1 if a.quick else a.steps, a.preset), 2
            )
            print(key, res["images_per_s"][key], file=sys.stderr, flush=True)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
