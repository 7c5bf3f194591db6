"""Video import (issue 20): frame classes, pairs, scene cuts, text, provenance, bad files.

Every video here is rendered by tests/video_fixtures.py from the images in tests/data, so the
true class and scene of every frame is known.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.video_fixtures import Shot, short_shots, standard_shots, write_recording
from training import video as V
from training.store import Workspace
from training.video_import import find_videos, import_videos

ROOT = Path(__file__).resolve().parents[1]
FPS = 25.0


@pytest.fixture(scope="module")
def standard(tmp_path_factory):
    """The standard recording and what process_video makes of it (rendered and analysed once)."""
    d = tmp_path_factory.mktemp("video")
    rec = write_recording(d / "proc.mp4", standard_shots(FPS), fps=FPS)
    result = V.process_video(rec.path)
    return rec, result


def _classes(path: Path) -> V.FrameTable:
    ft = V.analyse_video(path)
    ft.text_boxes = V.detect_text_boxes([s for _, s in ft.text_samples], ft.width, ft.height)
    return V.classify_frames(ft)


def test_every_frame_is_classified_from_its_content(standard, tmp_path) -> None:
    rec, _ = standard
    ft = _classes(rec.path)
    truth = np.array([V.CLASSES.index(c) for c in rec.labels])
    assert ft.n == len(truth)
    accuracy = float((ft.label == truth).mean())
    assert accuracy >= 0.99, [(i, rec.kinds[i], V.CLASSES[ft.label[i]]) for i in np.flatnonzero(ft.label != truth)]
    # the reasons name what is wrong with the unusable frames
    kinds = np.array(rec.kinds)
    reasons = np.array([V.REASONS[r] for r in ft.reason])
    for kind, reason in (("black", "black"), ("menu", "menu"), ("over", "overexposed"), ("outside", "out_of_body"),
                         ("blur_wli", "blurred"), ("blur_nbi", "blurred")):
        assert (reasons[kinds == kind] == reason).mean() >= 0.9, (kind, list(reasons[kinds == kind]))


def test_every_nbi_segment_yields_a_pair_and_no_pair_crosses_a_scene_cut(standard) -> None:
    rec, result = standard
    truth_nbi_scenes = {rec.scenes[i] for i, k in enumerate(rec.kinds) if k == "nbi"}
    pairs = [c for c in result.cases if c.nbi is not None]
    assert {rec.scenes[c.nbi_frame] for c in pairs} == truth_nbi_scenes
    assert result.nbi_segments_without_pair == 0
    for c in pairs:
        # same scene (the NBI of scene 3 follows the WLI of scene 2 directly: that one is not it)
        assert rec.scenes[c.wli_frame] == rec.scenes[c.nbi_frame]
        assert rec.labels[c.wli_frame] == "wli" and rec.labels[c.nbi_frame] == "nbi"
        assert abs(c.wli_frame - c.nbi_frame) / FPS <= V.VideoSettings().max_gap_s + 1e-6
        assert c.registration.quality == "good" and c.registration.inliers >= V.MIN_INLIERS
        assert c.wli.shape == c.nbi.shape == (240, 320, 3)
    # scene 3's partner is the WLI after the black gap
    s3 = [c for c in pairs if rec.scenes[c.nbi_frame] == 3]
    assert s3 and all(c.wli_frame > c.nbi_frame for c in s3)
    # the sharpest frames: no blurred frame is ever picked
    assert all(rec.kinds[c.wli_frame] == "wli" and rec.kinds[c.nbi_frame] == "nbi" for c in pairs)


def test_burned_in_text_is_found_and_blacked_out_unless_kept(standard, tmp_path) -> None:
    rec, result = standard
    x, y, w, h = rec.text_box
    overlay = np.zeros((240, 320, 3), np.uint8)
    from tests.video_fixtures import draw_text

    draw_text(overlay, rec.fov[0] - 8)
    text_px = overlay.max(axis=2) > 0
    covered = np.zeros_like(text_px)
    for bx, by, bw, bh in result.text_boxes:
        covered[by:by + bh, bx:bx + bw] = True
    assert covered[text_px].mean() >= 0.98
    assert covered[rec.fov[1]:, rec.fov[0] + 40:].mean() == 0   # the picture itself is not a text box
    for c in result.cases:
        assert c.wli[text_px].max() == 0 and c.nbi[text_px].max() == 0
        assert c.provenance["text_blacked_out"] is True
    kept = V.process_video(rec.path, V.VideoSettings(keep_text=True, per_segment=1))
    assert kept.cases and all(c.wli[text_px].max() > 200 for c in kept.cases)
    assert all(c.provenance["text_blacked_out"] is False for c in kept.cases)


def test_cli_imports_a_video_with_provenance_and_reports_counts(standard, tmp_path) -> None:
    rec, result = standard
    ws_dir = tmp_path / "ws"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "training", "import", str(rec.path), "--workspace", str(ws_dir), "--quiet"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    v = out["video"]
    assert {k: v[k] for k in ("frames", "wli", "nbi", "unusable", "pairs")} == \
        {k: result.counts[k] for k in ("frames", "wli", "nbi", "unusable", "pairs")}
    assert v["frames"] == len(rec.labels) and v["pairs"] == out["imported"] >= 3
    with Workspace.open(ws_dir) as ws:
        cases = ws.cases()
        assert len(cases) == v["pairs"]
        sources = ws.video_sources()
        for c in cases:
            assert c.patient_id == "proc"              # the file name when not in a patient folder
            assert c.nbi_path is not None and c.reg_quality == "good"
            prov = ws.video_source(c.id)
            assert prov["video_sha256"] == V.file_sha256(rec.path)
            assert rec.labels[prov["wli_frame"]] == "wli" and rec.labels[prov["nbi_frame"]] == "nbi"
            assert prov["wli_time_s"] == pytest.approx(prov["wli_frame"] / FPS, abs=0.02)
            assert prov["detail"]["nbi"]["class"] == "nbi" and 0.5 < prov["detail"]["nbi"]["nbi_score"] <= 1
            assert prov["detail"]["wli"]["nbi_score"] < 0.5
            assert sources[c.id]["wli_frame"] == prov["wli_frame"]
            assert c.source_wli.endswith(f"proc.mp4#frame={prov['wli_frame']}")
    # the same video again: skipped as a whole, nothing added
    r2 = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    out2 = json.loads(r2.stdout.strip().splitlines()[-1])
    assert out2["imported"] == 0 and "already imported" in out2["skipped"][0]["reason"]
    assert out2["cases"] == out["cases"]


def _short(path: Path, fourcc: str = "mp4v", scene: int = 0, **kw) -> object:
    return write_recording(path, short_shots(FPS, scene), fps=FPS, fourcc=fourcc, **kw)


@pytest.mark.parametrize("ext,fourcc", [("avi", "MJPG"), ("mov", "mp4v"), ("mkv", "XVID"), ("mpg", "PIM1")])
def test_other_containers_import(tmp_path, ext: str, fourcc: str) -> None:
    rec = _short(tmp_path / f"clip.{ext}", fourcc)
    res = V.process_video(rec.path, V.VideoSettings(per_segment=1))
    assert res.counts["pairs"] == 1, res.counts
    c = res.cases[0]
    assert rec.scenes[c.wli_frame] == rec.scenes[c.nbi_frame] == 0


def test_wli_only_cases_are_a_setting(tmp_path) -> None:
    rec = _short(tmp_path / "clip.mp4")
    plain = V.process_video(rec.path, V.VideoSettings(per_segment=1))
    assert plain.counts["wli_only"] == 0
    more = V.process_video(rec.path, V.VideoSettings(per_segment=1, wli_only=True))
    only = [c for c in more.cases if c.nbi is None]
    # scene 1 was never seen in NBI: one WLI-only case from it; scene 0 has its pair instead
    assert len(only) == 1 and rec.scenes[only[0].wli_frame] == 1 and rec.labels[only[0].wli_frame] == "wli"
    with Workspace.open(tmp_path / "ws", create=True) as ws:
        s = import_videos(ws, [(rec.path, "P9")], V.VideoSettings(per_segment=1, wli_only=True))
        assert s["imported"] == 2
        kinds = sorted(c.nbi_path is None for c in ws.cases())
        assert kinds == [False, True]
        assert {c.patient_id for c in ws.cases()} == {"P9"}


def test_patient_id_comes_from_the_folder_rule(tmp_path) -> None:
    src = tmp_path / "recordings"
    (src / "P017" / "day1").mkdir(parents=True)
    (src / "P017" / "day1" / "a.mp4").write_bytes(b"x")
    (src / "loose.avi").write_bytes(b"x")
    (src / "notes.txt").write_text("x")
    found = dict((p.name, pid) for p, pid in find_videos([src]))
    assert found == {"a.mp4": "P017", "loose.avi": "loose"}
    assert find_videos([src / "P017" / "day1" / "a.mp4"])[0][1] == "a"


def _assert_empty(ws_dir: Path) -> None:
    with Workspace.open(ws_dir) as ws:
        assert ws.case_count() == 0
        assert ws.video_sources() == {}
    assert not [p for p in (ws_dir / "images").iterdir()]


def test_truncated_or_undecodable_videos_import_nothing(tmp_path) -> None:
    good = _short(tmp_path / "good.avi", "MJPG").path
    data = good.read_bytes()
    trunc_avi = tmp_path / "trunc.avi"
    trunc_avi.write_bytes(data[: int(len(data) * 0.6)])
    mp4 = _short(tmp_path / "good.mp4").path
    trunc_mp4 = tmp_path / "trunc.mp4"
    trunc_mp4.write_bytes(mp4.read_bytes()[: int(mp4.stat().st_size * 0.6)])
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(os.urandom(50_000))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(V.VideoError, match=r"truncated or damaged: only \d+ of its \d+ frames"):
        V.process_video(trunc_avi)
    for bad in (trunc_mp4, garbage, empty):
        with pytest.raises(V.VideoError, match="cannot be opened as a video"):
            V.process_video(bad)
    ws_dir = tmp_path / "ws"
    with Workspace.open(ws_dir, create=True) as ws:
        s = import_videos(ws, [(p, "x") for p in (trunc_avi, trunc_mp4, garbage, empty)])
        assert s["imported"] == 0 and len(s["skipped"]) == 4
        assert "truncated" in s["skipped"][0]["reason"]
    _assert_empty(ws_dir)


def test_cancel_leaves_nothing(tmp_path) -> None:
    rec = _short(tmp_path / "clip.mp4")
    with pytest.raises(V.VideoCancelled):
        V.process_video(rec.path, cancel=lambda: True)
    calls = {"n": 0}

    def cancel_during_decode() -> bool:   # not before the video starts, but before it ends
        calls["n"] += 1
        return calls["n"] > 1

    ws_dir = tmp_path / "ws"
    with Workspace.open(ws_dir, create=True) as ws:
        s = import_videos(ws, [(rec.path, "x")], cancel=cancel_during_decode)
        assert s["cancelled"] and s["imported"] == 0
    _assert_empty(ws_dir)


def test_fetch_reads_the_frames_pass_one_saw(tmp_path) -> None:
    """Pass 2 returns exactly the frames pass 1 measured, near (forward grabs) or far (seeks)."""
    shots = [Shot("wli", int(3 * FPS), 0), Shot("nbi", int(3 * FPS), 0), Shot("wli", int(3 * FPS), 1)]  # 225
    rec = write_recording(tmp_path / "long.mp4", shots, fps=FPS)
    ft = V.analyse_video(rec.path)
    want = [2, 3, 120, 224, 60]   # up to 120: forward grabs; 120 -> 224: a seek (over 4 s ahead)
    frames = V.fetch_frames(ft, want)
    cap = cv2.VideoCapture(str(rec.path))
    seq = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        seq.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    for i in want:
        assert np.array_equal(frames[i], seq[i]), i


def test_fetch_survives_a_container_that_seeks_to_the_wrong_frame(tmp_path, monkeypatch) -> None:
    shots = [Shot("wli", int(3 * FPS), 0), Shot("nbi", int(3 * FPS), 0), Shot("wli", int(3 * FPS), 1)]
    rec = write_recording(tmp_path / "long.mp4", shots, fps=FPS)
    ft = V.analyse_video(rec.path)
    truth = V.fetch_frames(ft, [120, 224])
    real_open = V._open
    seeks = []

    class Sloppy:       # a capture whose seek lands 7 frames early, like some MPEG-PS files
        def __init__(self, cap) -> None:
            self.cap = cap

        def set(self, prop, value):  # noqa: ANN001, ANN201
            seeks.append(value)
            return self.cap.set(prop, max(0, value - 7))

        def __getattr__(self, name):  # noqa: ANN001, ANN204
            return getattr(self.cap, name)

    monkeypatch.setattr(V, "_open", lambda p: Sloppy(real_open(p)))
    got = V.fetch_frames(ft, [120, 224])
    assert seeks == [120]                  # tried once, then read forward only
    for i in (120, 224):
        assert np.array_equal(got[i], truth[i])


def test_migration_adds_the_video_table_to_an_old_workspace(tmp_path, monkeypatch) -> None:
    from training import store
    from training.store import schema

    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)
    from tests.conftest import make_fixture_pairs

    make_fixture_pairs(tmp_path / "pairs", 1)
    with store.Workspace.open(tmp_path / "ws", create=True) as ws:
        cid, _ = ws.import_pair(next((tmp_path / "pairs").glob("*_wli.*")), next((tmp_path / "pairs").glob("*_nbi.*")))
        assert ws.schema_version() == 1
    monkeypatch.undo()
    with store.Workspace.open(tmp_path / "ws") as ws:
        assert ws.schema_version() == store.SCHEMA_VERSION >= 2
        assert ws.case(cid).nbi_path is not None and ws.video_sources() == {} and ws.video_source(cid) is None
        assert ws.integrity_check() == "ok"


def test_colour_rule_on_stills_of_other_scopes() -> None:
    """The WLI/NBI colour rule on its own, per still (no temporal help), on the public frames in
    tests/data, their pseudo-NBI, and both after the held-out other-device transform."""
    from model.pseudo_nbi import nbi_colour
    from tests.video_fixtures import SCENE_FILES, _outside, load_scenes
    from training.scope_aug import other_device

    for img in load_scenes(SCENE_FILES):
        other = other_device(img)
        assert V.classify_still(img)[0] == "wli"
        assert V.classify_still(other)[0] == "wli"
        label, score = V.classify_still(nbi_colour(img))
        assert label == "nbi" and score > 0.5
        assert V.classify_still(nbi_colour(other))[0] == "nbi"
    room = _outside(240, 240, 0.0, np.random.default_rng(0))
    assert V.classify_still(room)[0] == "neither"


def test_the_time_limit_decides_whether_a_far_wli_frame_may_be_the_partner(tmp_path) -> None:
    # 2.6 s of black between the last WLI frame and the first NBI frame of the same scene
    shots = [Shot("wli", 25, 0), Shot("black", 65), Shot("nbi", 25, 0)]
    rec = write_recording(tmp_path / "gap.mp4", shots, fps=FPS)
    strict = V.process_video(rec.path, V.VideoSettings(per_segment=1))
    assert strict.counts["pairs"] == 0 and strict.nbi_segments_without_pair == 1
    loose = V.process_video(rec.path, V.VideoSettings(per_segment=1, max_gap_s=5.0))
    assert loose.counts["pairs"] == 1 and loose.nbi_segments_without_pair == 0
    c = loose.cases[0]
    assert rec.labels[c.wli_frame] == "wli" and rec.labels[c.nbi_frame] == "nbi"
