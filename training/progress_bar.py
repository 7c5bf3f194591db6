"""The command line's progress bar for ``progress(done, total)`` callbacks (import, export).

Drawn by tqdm on stderr, so stdout keeps only the JSON summary the callers parse; made on the
first report (tqdm is imported only then), nothing with ``--quiet``. The total may change between
reports: a video import counts frames, then cases. Closed on leaving the ``with`` block, also on
an error, so the error message starts on a line of its own.
"""
from __future__ import annotations

import sys


class ProgressBar:
    """``with ProgressBar("import", quiet=args.quiet) as progress: run(..., progress=progress)``."""

    def __init__(self, desc: str, quiet: bool = False, unit: str = "case") -> None:
        self.desc, self.quiet, self.unit = desc, quiet, unit
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=self.unit, desc=self.desc, file=sys.stderr, mininterval=0.5)
        self._bar.total = total
        self._bar.update(done - self._bar.n)  # redrawn at most every mininterval

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
