"""Import endoscopy recordings into a workspace: the glue between ``training.video`` and the store.

``python -m training import VIDEO... --workspace WS`` and File ▸ Import video… both end here.
Per video: hash it, skip it when it was already imported with the same settings, find its cases
(``training.video.process_video``: nothing is written until the whole video has been decoded and
checked, so a truncated or undecodable file leaves nothing behind), then store each case with
its provenance. Patient id: ``patient_id`` when given, else the folder rule of the image import
(the first folder below the source folder: ``SRC/<patient>/.../video.mp4``), else the video's
file name (one recording = one patient, so its frames never land on both sides of a split).
No torch, no Qt.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

from training.store import Workspace, safe_id
from training.video import (
    VideoCancelled,
    VideoError,
    VideoSettings,
    file_sha256,
    is_video,
    process_video,
)

__all__ = ["find_videos", "video_patient_id", "import_videos", "COUNT_KEYS"]

COUNT_KEYS = ("frames", "wli", "nbi", "unusable", "pairs", "wli_only")


def video_patient_id(video: Path, root: Path | None) -> str:
    """The patient a recording belongs to (see module doc)."""
    if root is not None:
        try:
            rel = video.relative_to(root)
        except ValueError:
            rel = None
        if rel is not None and len(rel.parts) > 1:
            return rel.parts[0]
    return video.stem


def find_videos(sources: Iterable[os.PathLike | str]) -> list[tuple[Path, str]]:
    """(video, patient id by the folder rule) for every video file given or found under a folder."""
    out: list[tuple[Path, str]] = []
    for src in sources:
        p = Path(src)
        if p.is_file() and is_video(p):
            out.append((p, video_patient_id(p, None)))
        elif p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
                dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
                for f in sorted(filenames):
                    v = Path(dirpath) / f
                    if not f.startswith(".") and is_video(v):
                        out.append((v, video_patient_id(v, p)))
    return out


def import_videos(ws: Workspace, videos: list[tuple[Path, str]], settings: VideoSettings = VideoSettings(),
                  patient_id: str | None = None, progress: Callable[[str, int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None) -> dict:
    """Import the cases of each video; returns ``{"imported", "case_ids", "skipped", "video"}``.

    ``video`` = the run's totals ``frames, wli, nbi, unusable, pairs, wli_only`` plus ``videos``,
    one entry per file (its counts, timing, or why it was skipped). A bad video is skipped with its
    reason; WorkspaceError is fatal. Cancelling stops before the next video's cases are written
    (a video's cases are written together after it was analysed) and sets ``cancelled``.
    """
    totals = dict.fromkeys(COUNT_KEYS, 0)
    per_video: list[dict] = []
    skipped: list[dict] = []
    case_ids: list[str] = []
    cancelled = False
    for k, (path, folder_patient) in enumerate(videos, start=1):
        if cancel is not None and cancel():
            cancelled = True
            break
        label = f"video {k}/{len(videos)}"

        def stage(name: str, done: int, total: int, label: str = label) -> None:
            if progress is not None:
                progress(f"{label} {name}", done, total)

        entry: dict = {"path": str(path)}
        per_video.append(entry)
        try:
            sha = file_sha256(path)
        except OSError as exc:
            skipped.append({"path": str(path), "reason": f"unreadable ({exc.strerror or exc})"})
            entry["skipped"] = skipped[-1]["reason"]
            continue
        entry["sha256"] = sha
        if asdict(settings) in ws.video_settings_used(sha):
            skipped.append({"path": str(path), "reason": "already imported with these settings (same file sha256)"})
            entry["skipped"] = skipped[-1]["reason"]
            continue
        try:
            result = process_video(path, settings, stage, cancel, sha256=sha)
        except VideoCancelled:
            cancelled = True
            entry["skipped"] = "cancelled"
            break
        except VideoError as exc:
            skipped.append({"path": str(path), "reason": exc.reason})
            entry["skipped"] = exc.reason
            continue
        pid = patient_id or folder_patient
        stem = safe_id(path.stem, 32, "video")
        imported = 0
        stage("save", 0, len(result.cases))
        for i, case in enumerate(result.cases, start=1):
            frame = case.nbi_frame if case.nbi_frame is not None else case.wli_frame
            prov = case.provenance
            cid, reason = ws.import_frames(
                case.wli, case.nbi, case.registration, patient_id=pid, case_name=f"{stem}_f{frame:06d}",
                video={"path": str(path.resolve()), "sha256": sha, "wli_frame": case.wli_frame,
                       "nbi_frame": case.nbi_frame, "wli_time_s": prov["wli"]["time_s"],
                       "nbi_time_s": prov["nbi"]["time_s"] if prov["nbi"] else None, "detail": prov})
            if cid is not None:
                case_ids.append(cid)
                imported += 1
            else:
                skipped.append({"path": f"{path}#frame={frame}", "reason": reason or "skipped"})
            stage("save", i, len(result.cases))
        for key in COUNT_KEYS:
            totals[key] += result.counts[key]
        entry.update(result.counts)
        entry.update({"imported": imported, "patient_id": pid, "text_boxes": [list(b) for b in result.text_boxes],
                      "nbi_segments": sum(1 for s in result.segments if s.kind == "nbi"),
                      "nbi_segments_without_pair": result.nbi_segments_without_pair,
                      "timing_s": {k: round(v, 3) for k, v in result.timing.items()}})
    return {"imported": len(case_ids), "case_ids": case_ids, "skipped": skipped, "cancelled": cancelled,
            "video": {**totals, "videos": per_video}}
