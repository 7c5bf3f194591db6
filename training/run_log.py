"""The run's log: one JSON object per line on stdout (the Train dialog reads them) and in
``<out>/log.jsonl`` (all but the ``step`` progress lines); rank 0 only."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LOG_NAME = "log.jsonl"


class JsonLog:
    """One JSON object per line to stdout and <out>/log.jsonl (rank 0 only)."""

    def __init__(self, path: Path | None, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def __call__(self, obj: dict, to_file: bool = True) -> None:
        if not self.enabled:
            return
        line = json.dumps(obj, default=_json_default)
        print(line, flush=True)
        if to_file and self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def rounded(d: dict, nd: int = 5) -> dict:
    return {k: (round(v, nd) if isinstance(v, float) else v) for k, v in d.items()}
