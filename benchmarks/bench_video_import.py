"""Video import speed (issue 20): a 10-minute 1080p 30 fps recording, by stage, on this machine.

The recording is synthetic (no public WLI/NBI video exists): tests/video_fixtures.py renders a
procedure from still laryngeal frames (../shared/data/vocalfolds when present, else tests/data)
with camera drift, NBI switched on and off every ~40 s, blur, black frames, glare, a menu, the
scope outside the patient and a burned-in patient box; MPEG-4 part 2 (mp4v, ~7 Mbit/s, the only
1080p encoder in OpenCV's wheel). It is written once to --video (default under /tmp) with its
ground truth beside it (.npz) and reused.

Then one full import into a fresh temporary workspace (``training.video_import``, what the CLI
and File ▸ Import video… run), timed by stage:
- decode: the reader thread's busy time (grab + retrieve + downscale, every frame);
- classify: per-frame measurements (main thread, overlapping decode) + text + classification +
  scenes; select: segments and picks; fetch: pass 2 (chosen frames at full resolution);
  register: NBI -> WLI registration of the candidates; save: PNG encoding + store writes.
Wall seconds per stage and the whole import, and the process CPU seconds (both cores summed;
the machine is shared, so wall time depends on what else runs). Also checks against the truth:
frame classification accuracy, NBI segments without a pair, pairs across a scene cut; and the
colour rule alone on public stills from other scopes (``colour_rule_on_stills``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video_import.py [--minutes 10] [--video PATH]

An H.264 copy (what recorders write; OpenCV's wheel cannot encode it) can be measured too: make
one with any H.264 encoder, copy ``<video>.truth.npz`` beside it under its name, pass --video.

Last stdout line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tests.video_fixtures import SCENE_FILES, Shot, load_scenes, write_recording  # noqa: E402


def procedure(seconds: float, fps: float) -> list[Shot]:
    """A laryngoscopy-like shot list: per scene ~40 s of WLI with NBI switched on for ~8 s."""
    s = int(fps)
    unit = [("wli", 14.0), ("blur_wli", 0.5), ("wli", 6.0), ("black", 0.4), ("nbi", 8.0), ("blur_nbi", 0.3),
            ("nbi", 2.0), ("black", 0.4), ("wli", 7.0), ("over", 0.5), ("wli", 2.0)]
    extras = [("menu", 1.5), ("outside", 3.0), ("black", 1.0)]
    shots: list[Shot] = []
    total, scene, k = 0, 0, 0
    while total < seconds * fps:
        for kind, dur in unit:
            shots.append(Shot(kind, max(1, int(dur * s)), scene))
        kind, dur = extras[k % len(extras)]
        shots.append(Shot(kind, int(dur * s), scene))
        total = sum(x.frames for x in shots)
        scene, k = scene + 1, k + 1
    # trim to the exact length
    out, n = [], int(seconds * fps)
    for sh in shots:
        if n <= 0:
            break
        out.append(Shot(sh.kind, min(sh.frames, n), sh.scene))
        n -= out[-1].frames
    return out


def scene_images() -> list[np.ndarray]:
    shared = ROOT.parent / "shared" / "data" / "vocalfolds" / "images"
    files = sorted(shared.glob("patient*/seq*/*.png"))[::12] if shared.is_dir() else []
    return load_scenes(files or SCENE_FILES)


def make_video(path: Path, minutes: float, size: tuple[int, int], fps: float) -> None:
    t = time.perf_counter()
    rec = write_recording(path, procedure(minutes * 60, fps), scene_images(), size=size, fps=fps, seed=1)
    np.savez_compressed(path.with_suffix(".truth.npz"), labels=np.array(rec.labels), scenes=np.array(rec.scenes),
                        kinds=np.array(rec.kinds))
    print(f"wrote {path} ({len(rec.labels)} frames) in {time.perf_counter() - t:.0f} s", file=sys.stderr)


def run(video: Path) -> dict:
    from training import video as V
    from training.store import Workspace
    from training.video_import import import_videos

    truth = np.load(video.with_suffix(".truth.npz"))
    stage_wall: dict[str, float] = {}
    marks = {"t": time.perf_counter(), "stage": "decode"}

    def progress(stage: str, done: int, total: int) -> None:
        name = stage.split()[-1]
        if name != marks["stage"]:
            now = time.perf_counter()
            stage_wall[marks["stage"]] = stage_wall.get(marks["stage"], 0.0) + now - marks["t"]
            marks.update(t=now, stage=name)

    cpu0 = time.process_time()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Workspace.open(Path(tmp) / "ws", create=True) as ws:
        summary = import_videos(ws, [(video, "bench")], V.VideoSettings(), progress=progress)
        wall = time.perf_counter() - t0
        now = time.perf_counter()
        stage_wall[marks["stage"]] = stage_wall.get(marks["stage"], 0.0) + now - marks["t"]
        cases = ws.cases()
        prov = [ws.video_source(c.id) for c in cases]
    cpu = time.process_time() - cpu0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    entry = summary["video"]["videos"][0]
    if "skipped" in entry:
        raise SystemExit(f"video not imported: {entry['skipped']}")
    tm = entry["timing_s"]
    # accuracy against the truth: classify again from the same measurements is not needed: the
    # per-frame answer is in the provenance only for picked frames, so re-run pass-1 analysis
    ft = V.analyse_video(video)
    ft.text_boxes = V.detect_text_boxes([s for _, s in ft.text_samples], ft.width, ft.height)
    V.classify_frames(ft)
    labels = np.array([V.CLASSES.index(x) for x in truth["labels"]])
    scenes = truth["scenes"]
    nbi_scenes = {int(s) for s, k in zip(scenes, truth["kinds"], strict=True) if k == "nbi"}
    paired = {int(scenes[p["nbi_frame"]]) for p in prov if p["nbi_frame"] is not None}
    across = sum(1 for p in prov if p["nbi_frame"] is not None and scenes[p["nbi_frame"]] != scenes[p["wli_frame"]])
    return {
        "video": str(video), "frames": entry["frames"], "size": f"{ft.width}x{ft.height}", "fps": round(ft.fps, 2),
        "minutes": round(entry["frames"] / ft.fps / 60, 2), "file_mb": round(video.stat().st_size / 1e6, 1),
        "import_wall_s": round(wall, 1), "target_s": 300, "within_target": wall <= 300,
        "process_cpu_s": round(cpu, 1),
        "stage_wall_s": {
            "decode_and_measure_pass1": round(tm["pass1_wall_s"], 1),
            "hash": round(tm["hash_s"], 1),
            "text_classify_scenes": round(tm["text_s"] + tm["classify_s"], 2),
            "select": round(tm["select_s"], 3),
            "fetch_pass2": round(tm["fetch_s"], 1),
            "register": round(tm["register_s"], 1),
            "save": round(stage_wall.get("save", 0.0), 1),
        },
        "cpu_s": {"pass1_all_threads": round(tm["pass1_cpu_s"], 1), "decode_thread": round(tm["decode_cpu_s"], 1),
                  "measure_thread": round(tm["measure_cpu_s"], 1), "fetch_pass2": round(tm["fetch_cpu_s"], 1),
                  "register": round(tm["register_cpu_s"], 1), "process_video_total": round(tm["total_cpu_s"], 1)},
        "thread_busy_wall_s": {"decode": round(tm["decode_s"], 1), "measure": round(tm["measure_s"], 1)},
        "per_frame_ms": {"decode": round(1000 * tm["decode_s"] / entry["frames"], 2),
                         "measure": round(1000 * tm["measure_s"] / entry["frames"], 2)},
        "counts": {k: entry[k] for k in ("wli", "nbi", "unusable", "pairs", "wli_only")},
        "nbi_segments": entry["nbi_segments"], "nbi_segments_without_pair": entry["nbi_segments_without_pair"],
        "truth_nbi_scenes": len(nbi_scenes), "truth_nbi_scenes_paired": len(nbi_scenes & paired),
        "pairs_across_scene_cut": across,
        "frame_accuracy": round(float((ft.label == labels).mean()), 5),
        "max_rss_mb": round(max(ru0.ru_maxrss, ru1.ru_maxrss) / 1024, 0),
        "cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def colour_rule_on_stills() -> dict:
    """``training.video.colour_decision`` per still on the public frames of ../shared/data (when
    present): WLI and pseudo-NBI, as is / scope-augmented / the held-out other-device transform,
    raw and JPEG q80. What the rule gets right with no help from neighbouring frames."""
    import cv2

    from model.pseudo_nbi import nbi_colour
    from training.scope_aug import other_device, scope_augment
    from training.video import classify_still

    shared = ROOT.parent / "shared" / "data"
    files = sorted((shared / "kvasir-seg-256" / "images").glob("*.jpg"))[::4] + \
        sorted((shared / "vocalfolds" / "images").glob("patient*/seq*/*.png"))[::2]
    if not files:
        return {"skipped": "../shared/data not present"}
    rng = np.random.default_rng(0)

    def jpeg(rgb: np.ndarray) -> np.ndarray:
        _, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    right: dict[str, list[bool]] = {}
    for f in files:
        img = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        aug = scope_augment(img, rng)
        aug = aug[0] if isinstance(aug, tuple) else aug
        other = other_device(img)
        for name, want, v in (("wli", "wli", img), ("nbi", "nbi", nbi_colour(img)), ("wli_aug", "wli", aug),
                              ("nbi_aug", "nbi", nbi_colour(aug)), ("wli_other", "wli", other),
                              ("nbi_other", "nbi", nbi_colour(other))):
            for suffix, x in (("", v), ("_jpg", jpeg(v))):
                right.setdefault(name + suffix, []).append(classify_still(x)[0] == want)
    every = [r for v in right.values() for r in v]
    return {"images": len(files), "stills": len(every), "right": round(float(np.mean(every)), 4),
            "by_kind": {k: round(float(np.mean(v)), 3) for k, v in right.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=Path(tempfile.gettempdir()) / "adf-bench-video-1080p.mp4")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--make-only", action="store_true", help="write the recording and stop")
    args = ap.parse_args(argv)
    if not args.video.exists() or not args.video.with_suffix(".truth.npz").exists():
        w, h = (int(v) for v in args.size.split("x"))
        make_video(args.video, args.minutes, (w, h), args.fps)
    if args.make_only:
        return 0
    out = run(args.video)
    out["colour_rule_on_stills"] = colour_rule_on_stills()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
