"""``main.py --self-test`` says ok only when a prediction's overlay reached the screen (issue 14, item 5).

Why: ``ok`` used to be ``image.width() > 0``: a window that opened but painted no overlay (an
empty prediction, a broken overlay) still reported ok.
"""
from __future__ import annotations

import json
import types

import numpy as np

from tests.viewer_fixtures import FakePrediction


def run_self_test(capsys, timeout: float = 240.0) -> tuple[int, dict]:
    from viewer import app

    code = app.self_test(types.SimpleNamespace(device="cpu", self_test_timeout=timeout), 0.0)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_self_test_with_the_bundled_model_paints_the_overlay(capsys) -> None:
    code, out = run_self_test(capsys)
    assert code == 0 and out["ok"] is True, out
    assert out["predicted_pixels"] > 0 and out["overlay_pixels"] > 0 and out["shown_pixels"] > 0
    assert out["device"].startswith("CPU") and out["case"]


class EmptyPredictor:
    """A model that finds nothing anywhere: the window opens, no overlay can be painted."""

    model_id, device, device_reason = "empty-model", "cpu", "CPU — test"

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, wli, nbi=None, homography=None):
        self.calls += 1
        h, w = wli.shape[:2]
        return FakePrediction(np.zeros((h, w), np.uint8), np.zeros((h, w), bool), self.model_id, {"total": 1.0})


def test_self_test_is_not_ok_when_nothing_is_painted(capsys, monkeypatch) -> None:
    pred = EmptyPredictor()
    monkeypatch.setattr("viewer.inference.default_predictor_factory", lambda _path, _device: pred)
    code, out = run_self_test(capsys, timeout=60.0)
    assert code == 1 and out["ok"] is False
    assert out["predicted_pixels"] == 0 and out["overlay_pixels"] == 0
    assert "empty mask on every demo case" in out["error"]
    assert pred.calls >= 2  # it looked beyond the first case before giving up
