"""``python -m training train``: train or fine-tune the ADF network; checkpoints, log, model card.

Why it looks like this:
- The Train dialog runs this as a subprocess and reads stdout: every stdout line is one JSON
  object: ``start``, ``parent_val`` (fine-tuning: the parent's Dice on the same held-out cases),
  ``resume``, ``step`` (progress inside an epoch, every --progress-every
  seconds), ``epoch`` (losses, val Dice, lr, images/s, seconds), ``error``, and last
  ``{"event": "done", "model": <card .json>, "metrics": {...}}``. tqdm progress goes to stderr.
  All but the ``step`` lines also go to ``<out>/log.jsonl``.
- With ``--max-minutes`` the learning-rate schedule and the progressive image size follow
  max(share of steps done, share of the time budget used), so a time-boxed run still anneals.
- A run may be stopped at any time (SIGTERM/SIGINT, ``--max-minutes``, the end of a session):
  the weights, optimizer and RNG state are checkpointed every epoch
  (``<out>/checkpoints/last.safetensors`` + ``last_state.pt``, the latter plain tensors and
  dicts, loaded with ``weights_only=True``) and ``--resume`` continues the same run. With
  ``--select best`` the best epoch by validation Dice is kept as ``best.safetensors`` and released.
- Fine-tuning (``--init``) keeps the parent's BatchNorm statistics and releases the average of
  the parent's and the fine-tuned weights (``--parent-blend``): on a few dozen cases both lose
  far less of what the parent knew (docs/MODEL.md, "Fine-tuning from the bundled model").
- Augmentation randomness is a function of (seed, epoch, index) and the per-epoch order of
  (seed, epoch), so resuming gives the same images in the same order as an uninterrupted run.
- Runs unchanged under ``torchrun`` (DistributedDataParallel; gloo on CPU, nccl on CUDA); only
  rank 0 validates and writes.

Where things are (this file is only the entry point):
  train_args.py   the options and the checks of their combinations
  loop.py         setup (network, data, optimizer, resume) and the epoch loop
  schedule.py     learning rate, image sizes, run progress, the per-epoch sample order
  train_data.py   the datasets named by --data
  validation.py   validation Dice / false positives during training
  click_sim.py    simulated clicks (the interactive mode)
  checkpoint.py   last/best weights and the resumable state
  run_log.py      the JSON lines on stdout and in log.jsonl
  hardware.py     device, DDP processes, threads, mixed precision, machine info
  release.py      the released weights (parent blend), the card, registration, activation
"""
from __future__ import annotations

import contextlib
import json
import signal
import sys

from training.click_sim import simulated_clicks
from training.loop import run
from training.release import activation_verdict, blend_with_parent
from training.schedule import lr_factor
from training.train_args import build_parser
from training.train_data import build_datasets

# what tests, benchmarks and docs import from here
__all__ = ["main", "build_parser", "lr_factor", "activation_verdict", "blend_with_parent", "build_datasets",
           "simulated_clicks"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m training train``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return run(args, argv)
    except SystemExit as e:
        if isinstance(e.code, str):
            print(json.dumps({"event": "error", "message": e.code}), flush=True)
            print(f"error: {e.code}", file=sys.stderr)
            return 2
        raise
    finally:
        for s, h in saved.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(s, h)


if __name__ == "__main__":
    raise SystemExit(main())
