"""ADF Viewer — paired WLI | NBI endoscopy viewer with a local tumour segmentation model.

    python main.py [--workspace DIR] [--device auto|cpu|cuda] [--self-test]

Research demonstration, not a medical device (see the About box and docs/MODEL.md).
"""
from __future__ import annotations

import time

T_START = time.perf_counter()
T_START_WALL = time.time()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from model.cpu_policy import (  # noqa: E402 - imports neither torch nor Qt
    apply_low_priority_request,
    apply_thread_policy,
)


def _early_cpu_policy(raw: list[str]) -> None:
    """Thread policy before anything loads torch (OpenMP reads it once; see model/cpu_policy.py).

    The app gets passive OpenMP waiting and its thread count; ``-m training`` (the Train
    dialog's trainer in the frozen app) gets the passive wait, keeps the count its parent gave
    it, and lowers its own priority when the dialog asked."""
    if raw[:2] == ["-m", "training"]:
        apply_thread_policy(count=False)
        apply_low_priority_request()
    else:
        apply_thread_policy()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ADF-Viewer", description="Paired WLI/NBI endoscopy viewer (research use only).")
    p.add_argument("--workspace", help="workspace folder to open (default: the last one, else the demo workspace)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the model runs (auto: CUDA when usable, else CPU)")
    p.add_argument("--lang", choices=("system", "en", "zh_CN"), default=None,
                   help="language of the window for this run (default: Edit ▸ Settings, else the system's)")
    p.add_argument("--self-test", action="store_true",
                   help="build a temporary demo workspace, open the window, predict one case, close; print JSON")
    p.add_argument("--self-test-timeout", type=float, default=180.0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    _early_cpu_policy(raw)
    if raw[:2] == ["-m", "training"]:
        # The frozen app has no separate Python: "ADF-Viewer -m training train ..." runs the CLI
        # (the Train dialog uses this form from source and when frozen alike).
        from training.__main__ import main as training_main

        return training_main(raw[2:])
    args = parse_args(raw)
    from viewer.timeline import STAMPS

    STAMPS.setdefault("python_ready", T_START_WALL)  # interpreter up, main.py running
    os.environ.setdefault("QT_DRIVER", "PySide6")
    from viewer import app

    if args.self_test:
        return app.self_test(args, T_START)
    return app.run(args, T_START)


if __name__ == "__main__":
    sys.exit(main())
