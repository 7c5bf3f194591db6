"""Cases from video frames and where they came from: table ``case_video`` (schema 2; issue 20).

A frame has no original file, so the decoded frame is stored losslessly as PNG and
``source_wli``/``source_nbi`` read ``<video>#frame=<n>``; the provenance DESIGN.md asks for (file
hash, frame numbers, times; ``detail``: classifier scores, segment, text boxes, settings) is one
``case_video`` row written in the same transaction as the case (importing.py). The frames
themselves are found by ``training/video.py``; ``training/video_import.py`` drives the import.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.imageio import encode_png, sha256_bytes
from training.store.importing import _source_str


class VideoMixin:
    """Workspace's video cases (uses its find_case_by_hash, _commit_import, _read)."""

    def import_frames(self, wli: np.ndarray, nbi: np.ndarray | None, registration=None, *,
                      patient_id: str | None, case_name: str, video: dict) -> tuple[str | None, str | None]:
        """One case from two decoded video frames (RGB uint8), stored as PNG, with its provenance.

        ``video``: ``{"path", "sha256", "wli_frame", "nbi_frame", "wli_time_s", "nbi_time_s",
        "detail": {...}}`` (the ``case_video`` row). ``registration``: the NBI->WLI Registration
        already computed (the video import keeps only pairs whose registration holds). Same
        duplicate rule and all-or-nothing commit as ``import_pair``.
        """
        wli_bytes = encode_png(wli)
        wli_sha = sha256_bytes(wli_bytes)
        nbi_bytes = encode_png(nbi) if nbi is not None else None
        nbi_sha = sha256_bytes(nbi_bytes) if nbi_bytes is not None else ""
        if self.find_case_by_hash(wli_sha, nbi_sha) is not None:
            return None, "duplicate"
        src = _source_str(video["path"])
        hm = registration.homography if registration is not None else np.eye(3)
        return self._commit_import(
            Path(f"{src}#frame={int(video['wli_frame'])}"), wli_bytes, wli_sha,
            Path(f"{src}#frame={int(video['nbi_frame'])}") if nbi_bytes is not None else None, nbi_bytes, nbi_sha,
            (wli.shape[1], wli.shape[0]), hm, registration, None, patient_id, False, case_name, None, "import",
            video=video)

    def video_source(self, case_id: str) -> dict | None:
        """The provenance of a case imported from a video (``detail`` parsed), or None."""
        rows = self._read("SELECT * FROM case_video WHERE case_id = ?", (case_id,))
        if not rows:
            return None
        r = rows[0]
        r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
        return r

    def video_sources(self) -> dict[str, dict]:
        """{case id: {"video_path", "wli_frame", "nbi_frame", "wli_time_s", "nbi_time_s"}} of every
        case from a video: one query, for the worklist's time-in-video column."""
        rows = self._read("SELECT case_id, video_path, wli_frame, nbi_frame, wli_time_s, nbi_time_s FROM case_video")
        return {r.pop("case_id"): r for r in rows}

    def video_settings_used(self, video_sha256: str) -> list[dict]:
        """The import settings each earlier import of this video (by sha256) ran with."""
        rows = self._read("SELECT DISTINCT json_extract(detail, '$.settings') AS s FROM case_video "
                          "WHERE video_sha256 = ?", (video_sha256,))
        return [json.loads(r["s"]) for r in rows if r["s"]]
