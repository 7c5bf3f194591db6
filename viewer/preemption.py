"""How background predictions make way for the clinician (issue 17): a prefetch stops between two
blocks of the network when something more urgent arrives, and runs on fewer torch threads.

Used by the inference worker (viewer/inference.py); torch is imported only when a CPU torch
model is actually running (the worker thread), never by the window.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Preempted(Exception):
    """Raised inside a prefetch prediction when something more urgent arrived (not an error)."""


def install_preemption(predictor: Any, should_stop: Callable[[], bool]) -> None:
    """Raise Preempted at the next block of the predictor's torch network once ``should_stop()``
    (forward pre-hooks on its composite modules: ~70 checks per prediction of the tiny model,
    ~1 ms apart). Installing again on the same network re-points its hooks to the new check."""
    net = getattr(predictor, "net", None)
    if net is None or not hasattr(net, "modules"):
        return
    holder = getattr(net, "_adf_preempt_owner", None)
    if holder is not None:  # the same network handed to a new worker (tests): re-point its hooks
        holder[0] = should_stop
        return
    holder = [should_stop]

    def check(_module: Any, _args: Any) -> None:
        if holder[0]():
            raise Preempted()

    for module in net.modules():
        if next(module.children(), None) is not None:  # composite modules: blocks, stages, heads
            module.register_forward_pre_hook(check)
    net._adf_preempt_owner = holder


class ThreadBudget:
    """Prefetch on at most cores - 1 torch threads, never more than the clinician's own requests
    (CPU torch models only; a GPU or a fake predictor is left alone)."""

    def __init__(self) -> None:
        self._threads: tuple[int, int] | None = None  # (interactive, prefetch), measured at first use

    def reset(self) -> None:
        """A new predictor was loaded: measure again at its first use."""
        self._threads = None

    def use(self, predictor: Any, prefetch: bool) -> None:
        if predictor is None or getattr(predictor, "device", "cpu") != "cpu" or not hasattr(predictor, "net"):
            return
        import torch

        from model.cpu_policy import background_threads

        if self._threads is None:
            self._threads = (torch.get_num_threads(), min(background_threads(), torch.get_num_threads()))
        want = self._threads[1] if prefetch else self._threads[0]
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)
