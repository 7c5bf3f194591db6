"""When the trainer does what: the learning-rate schedule, progressive image sizes, the run's
progress (steps or time budget) and the order of the samples in each epoch.

With ``--max-minutes`` the schedules follow max(share of steps done, share of the time budget
used), so a time-boxed run still warms up and anneals. The order of an epoch depends only on
(seed, epoch), so a resumed run sees the same images in the same order as an uninterrupted one.
"""
from __future__ import annotations

import math

import numpy as np
from torch.utils.data import Sampler


def parse_size_schedule(text: str | None, default: int) -> list[tuple[int, float]]:
    """'128:0.6,256' -> [(128, 0.6), (256, 1.0)]."""
    if not text:
        return [(default, 1.0)]
    out = []
    for part in text.split(","):
        part = part.strip()
        if ":" in part:
            s, until = part.split(":")
            out.append((int(s), float(until)))
        else:
            out.append((int(part), 1.0))
    if out[-1][1] < 1.0:
        out.append((out[-1][0], 1.0))
    return out


def size_at(schedule: list[tuple[int, float]], progress: float) -> int:
    for s, until in schedule:
        if progress < until:
            return s
    return schedule[-1][0]


def lr_factor(progress: float, step: int, warmup_steps: int, warmup_share: float = 0.0) -> float:
    """Linear warm-up, then polynomial (power 0.9) decay to 1 % of the peak.

    ``progress`` is max(share of the planned steps, share of the time budget). The warm-up ends
    after ``warmup_steps`` steps or at ``warmup_share`` of that progress, whichever comes first:
    with a time budget far shorter than the planned epochs, counting planned steps alone would
    stretch the warm-up well past its share of the run."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    if warmup_share > 0:
        warm = max(warm, min(1.0, progress / warmup_share))
    poly = max(0.0, 1.0 - progress) ** 0.9
    return warm * max(poly, 0.01)


def run_progress(step: int, total_steps: int, elapsed: float, budget_s: float | None, epochs: int) -> float:
    """How far the run is, 0..1: the share of the planned steps, or of the time budget when that
    is further along (only the budget with --epochs 0)."""
    p = step / max(1, total_steps)
    if budget_s:
        p = max(p, elapsed / budget_s) if epochs else elapsed / budget_s
    return min(1.0, p)


class EpochSampler(Sampler):
    """A permutation that depends only on (seed, epoch), sharded over DDP ranks (padded to even)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True,
                 limit: int | None = None) -> None:
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.limit = limit  # per-rank cap on samples per epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if self.shuffle:
            idx = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.n).tolist()
        else:
            idx = list(range(self.n))
        per = math.ceil(self.n / self.world)
        idx = idx + idx[: per * self.world - self.n]
        idx = idx[self.rank :: self.world]
        return idx[: self.limit] if self.limit else idx

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        n = math.ceil(self.n / self.world)
        return min(n, self.limit) if self.limit else n
