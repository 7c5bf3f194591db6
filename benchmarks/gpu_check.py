"""The CUDA path, checked on a machine with an NVIDIA GPU (issue 17, item 5).

Run by ``benchmarks/gpu_check.sh`` with a venv that has the pinned CUDA build of torch; it can
also be run directly with any Python whose torch has CUDA. Five checks, each reported on its own
so one failure does not hide the others:

- ``predictor``: the bundled model loads on ``cuda`` (device text as the status bar shows it),
  ms per 512x512 pair on the GPU vs the CPU in the same process, and the two masks agree.
- ``train_step``: one AdamW step of the tiny network at 256 px, batch 8, under fp16 autocast with
  a GradScaler (what the trainer's ``--amp auto`` picks on CUDA) and under bf16 autocast:
  finite losses and ms per step.
- ``trainer_cli``: ``python -m training train --device cuda --amp auto`` fine-tunes the bundled
  model for 3 steps on the demo cases (imported with their masks): the real trainer path.
- ``self_test``: ``main.py --self-test --device cuda`` (offscreen): ok and a ``CUDA: ...`` device.
- ``fallback``: the GPU fails in the middle of a run: every free byte of GPU memory is taken,
  then a prediction is asked; the predictor must catch the CUDA out-of-memory error, move to
  the CPU, say why, and still give the CPU's mask. If the memory could not be exhausted, a
  CUDA error is simulated in the forward pass instead (``mode`` says which).

Prints one JSON line {"ok", "gpu", "torch", "cuda", "checks": {...}, "s"}; exit 0 when all passed.

    python benchmarks/gpu_check.py [--gpu "name, driver, memory"]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from model.cpu_policy import apply_thread_policy  # noqa: E402

apply_thread_policy()  # the CPU comparison runs as the app does (passive wait), before torch loads
BUNDLED = ROOT / "resources" / "models" / "adf-tiny.json"


def _pair(size: int = 512):
    import numpy as np

    rng = np.random.default_rng(0)
    wli = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    nbi = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    hm = np.array([[1.0, 0.01, 3.0], [-0.01, 1.0, -2.0], [0.0, 0.0, 1.0]])
    return wli, nbi, hm


def _dice(a, b) -> float:
    inter = float((a & b).sum())
    total = float(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * inter / total


def _median_ms(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - s) * 1000.0)
    return round(statistics.median(ts), 2)


def check_predictor() -> dict:
    import torch

    from model.predictor import Predictor

    gpu = Predictor.load(BUNDLED, device="cuda")
    cpu = Predictor.load(BUNDLED, device="cpu")
    pair = _pair()
    ms_gpu = _median_ms(lambda: gpu.predict(*pair), 10, 50)   # .cpu() of the result synchronises
    ms_cpu = _median_ms(lambda: cpu.predict(*pair), 2, 10)
    dice = _dice(gpu.predict(*pair).mask, cpu.predict(*pair).mask)
    return {"ok": gpu.device == "cuda" and gpu.device_reason.startswith("CUDA:") and dice > 0.99,
            "device": gpu.device, "device_text": gpu.device_reason, "ms_per_pair_cuda": ms_gpu,
            "ms_per_pair_cpu": ms_cpu, "cpu_over_cuda": round(ms_cpu / ms_gpu, 2) if ms_gpu else None,
            "cpu_threads": torch.get_num_threads(), "mask_dice_cuda_vs_cpu": round(dice, 4),
            "views": len(gpu.flips), "input_size": gpu.input_size}


def _amp_step(dtype_name: str) -> dict:
    """Two AdamW steps of the tiny network under autocast (the second timed)."""
    import torch

    from model.adf import ADFNet
    from model.config import get_preset
    from model.losses import adf_loss

    torch.manual_seed(0)
    dtype = torch.float16 if dtype_name == "fp16" else torch.bfloat16
    net = ADFNet(get_preset("tiny")).cuda().train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=(dtype_name == "fp16"))  # as the trainer on CUDA
    wli = torch.randn(8, 3, 256, 256, device="cuda")
    nbi = torch.randn(8, 3, 256, 256, device="cuda")
    target = (torch.rand(8, 1, 256, 256, device="cuda") > 0.7).float()
    torch.cuda.reset_peak_memory_stats()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype):
            loss, _parts = adf_loss(net(wli, nbi), target, progress=0.5, net=net)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        torch.cuda.synchronize()
        return float(loss.detach())

    step()  # warm-up (cuDNN autotune, allocator)
    s = time.perf_counter()
    loss = step()
    ms = (time.perf_counter() - s) * 1000.0
    finite = loss == loss and abs(loss) != float("inf")
    return {"loss": round(loss, 4), "ms_per_step": round(ms, 1), "finite": finite,
            "peak_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}


def check_train_step() -> dict:
    import torch

    out: dict = {}
    for name in ("fp16", "bf16"):
        out[name] = _amp_step(name)
        torch.cuda.empty_cache()
    out["ok"] = all(out[n]["finite"] for n in ("fp16", "bf16"))
    return out


def _run(cmd: list[str], env: dict | None = None, timeout: float = 180.0) -> tuple[int, str, str]:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def _events(stdout: str) -> dict[str, dict]:
    events = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            events[ev.get("event", "last")] = ev
    return events


def check_trainer_cli() -> dict:
    with tempfile.TemporaryDirectory(prefix="adf-gpu-train-") as tmp:
        ws, run = Path(tmp) / "ws", Path(tmp) / "run"
        rc, out, err = _run([sys.executable, "-m", "training", "import", str(ROOT / "resources" / "demo"),
                             "--workspace", str(ws)])
        if rc != 0:
            return {"ok": False, "error": f"import rc={rc}: {err[-500:]}"}
        s = time.perf_counter()
        rc, out, err = _run([sys.executable, "-m", "training", "train", "--data", str(ws), "--init", str(BUNDLED),
                             "--device", "cuda", "--amp", "auto", "--epochs", "1", "--steps-per-epoch", "3",
                             "--batch-size", "4", "--out", str(run), "--model-id", "gpu-check", "--no-tqdm"],
                            timeout=240)
        ev = _events(out)
        start, done = ev.get("start", {}), ev.get("done", {})
        ok = rc == 0 and str(start.get("device", "")).startswith("cuda") and start.get("amp") == "fp16" and bool(done)
        res = {"ok": ok, "rc": rc, "device": start.get("device"), "amp": start.get("amp"), "s": round(time.perf_counter() - s, 1),
               "val_dice": (done.get("metrics") or {}).get("val_dice")}
        if not ok:
            res["error"] = (ev.get("error", {}).get("message") or err[-800:])
        return res


def check_self_test() -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    s = time.perf_counter()
    rc, out, err = _run([sys.executable, str(ROOT / "main.py"), "--self-test", "--device", "cuda"], env=env, timeout=240)
    last = next((json.loads(line) for line in reversed(out.splitlines()) if line.startswith("{")), {})
    ok = rc == 0 and bool(last.get("ok")) and str(last.get("device", "")).startswith("CUDA")
    res = {"ok": ok, "rc": rc, "device": last.get("device"), "ms_first_overlay": last.get("ms_first_overlay"),
           "s": round(time.perf_counter() - s, 1)}
    if not ok:
        res["error"] = last.get("error") or err[-800:]
    return res


def _exhaust_gpu_memory() -> list:
    """Take every byte the caching allocator can get (largest blocks first)."""
    import torch

    torch.cuda.empty_cache()
    hog = []
    chunk = 1 << 30
    while chunk >= 1 << 20:
        try:
            hog.append(torch.empty(chunk, dtype=torch.uint8, device="cuda"))
        except torch.cuda.OutOfMemoryError:
            chunk //= 4
    return hog


def check_fallback() -> dict:
    import torch

    from model.predictor import Predictor

    pred = Predictor.load(BUNDLED, device="cuda")
    cpu = Predictor.load(BUNDLED, device="cpu")
    pair = _pair()
    first = pred.predict(*pair)  # the GPU works...
    mode = "oom"
    hog = _exhaust_gpu_memory()  # ...then fails mid-run: no memory left for the next prediction
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            after = pred.predict_batch([pair] * 8, batch_size=8)[0]
        if pred.device == "cuda":  # the memory could not be exhausted: simulate a CUDA error instead
            mode = "simulated"
            real_forward = pred.net.forward

            def broken(*a, **k):  # noqa: ANN002, ANN003, ANN202
                if next(pred.net.parameters()).is_cuda:
                    raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
                return real_forward(*a, **k)

            pred.net.forward = broken
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                after = pred.predict(*pair)
    finally:
        del hog
        torch.cuda.empty_cache()
    again = pred.predict(*pair)  # stays on the CPU afterwards
    reference = cpu.predict(*pair)
    dice = _dice(after.mask, reference.mask)
    ok = (pred.device == "cpu" and pred.device_reason.startswith("CPU — CUDA failed at run time")
          and any("continuing on the CPU" in str(w.message) for w in caught) and dice > 0.99
          and _dice(again.mask, reference.mask) > 0.99 and first.mask.shape == after.mask.shape)
    return {"ok": ok, "mode": mode, "device_after": pred.device, "device_text_after": pred.device_reason,
            "mask_dice_vs_cpu": round(dice, 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", default=None, help="nvidia-smi's description of the GPU (from gpu_check.sh)")
    ap.add_argument("--install-s", type=float, default=None, help="seconds the venv install took (from gpu_check.sh)")
    ap.add_argument("--only", default="", help="comma list of checks to run (default: all)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    import torch

    res: dict = {"ok": False, "gpu": args.gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
                 "install_s": args.install_s}
    if not torch.cuda.is_available():
        res["error"] = (f"torch {torch.__version__} sees no CUDA device (built for CUDA {torch.version.cuda}); "
                        "is the NVIDIA driver loaded and the CUDA build of torch installed?")
        print(json.dumps(res), flush=True)
        return 2
    res["device_name"] = torch.cuda.get_device_name(0)
    checks = {"predictor": check_predictor, "train_step": check_train_step, "trainer_cli": check_trainer_cli,
              "self_test": check_self_test, "fallback": check_fallback}
    wanted = [c for c in args.only.split(",") if c] or list(checks)
    results: dict[str, dict] = {}
    for name in wanted:
        s = time.perf_counter()
        try:
            results[name] = checks[name]()
        except Exception as exc:  # noqa: BLE001 - one failed check must not hide the others
            traceback.print_exc(file=sys.stderr)
            results[name] = {"ok": False, "error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        results[name].setdefault("s", round(time.perf_counter() - s, 1))
    res["checks"] = results
    res["ok"] = all(r.get("ok") for r in results.values())
    res["s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
