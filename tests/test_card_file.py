"""model/card_file.py: the torch-free card reader and the one rule for a model's id, shared by
the store (registration), the predictor, the demo workspace and the viewer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.card_file import ModelFileError, card_id, card_stem, read_card, read_card_json
from model.names import safe_id
from tests.conftest import modules_loaded_by


def _card(**extra) -> dict:
    return {"format_version": 1, "id": "m1", "preset": "tiny", "config": {}, "weights": "m1.safetensors",
            "sha256": "0" * 64, **extra}


def test_reads_without_torch_numpy_or_qt() -> None:
    assert modules_loaded_by("model.card_file", ("torch", "numpy", "cv2", "PySide6")) == []


def test_card_id_rule() -> None:
    assert card_id({"id": "adf-tiny-r3"}) == "adf-tiny-r3"
    assert card_id({"id": "a", "model_id": "b"}) == "b"  # model_id wins
    assert card_id({}, "models/x-1.json") == card_id({}, "models/x-1.safetensors") == card_id({}, "models/x-1") == "x-1"
    assert card_id({"id": "my model/../v2"}) == safe_id("my model/../v2", 96, "model") == "my_model_._v2"
    assert card_id({}) == "model"
    assert card_stem("a/m.v2.json") == Path("a/m.v2") and card_stem("a/m.v2") == Path("a/m.v2")


def test_read_card_json_is_lenient_read_card_is_strict(tmp_path: Path) -> None:
    js = tmp_path / "m1.json"
    js.write_text(json.dumps({"model_id": "x"}))
    assert read_card_json(tmp_path / "m1.safetensors") == ({"model_id": "x"}, js)
    with pytest.raises(ModelFileError, match="lacks format_version, id"):
        read_card(js)
    js.write_text(json.dumps(_card()))
    assert read_card(tmp_path / "m1")[0]["id"] == "m1"
    js.write_text(json.dumps(_card(test_time_flips=["none", "x"])))
    with pytest.raises(ModelFileError, match="test_time_flips"):
        read_card(js)
    js.write_text("[1, 2]")
    with pytest.raises(ModelFileError, match="not a JSON object"):
        read_card_json(js)
    js.write_text("{nope")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_card_json(js)
    with pytest.raises(ModelFileError, match="model card not found"):
        read_card_json(tmp_path / "other.json")


def test_the_store_registers_under_the_id_the_predictor_reports(tmp_path: Path) -> None:
    """One id rule: the workspace's models table, the prediction cache and Predictor.model_id agree,
    also for a card whose id is not a safe file name."""
    import dataclasses

    import torch

    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset
    from model.predictor import Predictor
    from training.store import Workspace, WorkspaceError

    cfg = dataclasses.replace(get_preset("tiny"), embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4),
                              disent_dim=16, decoder_dim=8, input_size=32)
    torch.manual_seed(0)
    js = save_model(ADFNet(cfg), cfg, tmp_path / "files" / "m", {"id": "clinic model #2"})
    with Workspace.open(tmp_path / "ws", create=True) as ws:
        mid = ws.register_model(js, activate=True)
        assert mid == "clinic_model_2" == ws.active_model_id()
        pred = Predictor.load(ws.active_model_path(), device="cpu")
        assert pred.model_id == mid
        assert ws.prediction_path("c1", pred.model_id) == ws.root / "predictions" / "c1" / f"{mid}.png"
        (tmp_path / "bad.json").write_text("[]")
        (tmp_path / "bad.safetensors").write_bytes(b"")
        with pytest.raises(WorkspaceError, match="not a JSON object"):
            ws.register_model(tmp_path / "bad.json")
        with pytest.raises(WorkspaceError, match="model card not found"):
            ws.register_model(tmp_path / "missing.json")


def test_the_viewer_reads_the_click_mode_through_the_card_reader(tmp_path: Path) -> None:
    from viewer.clicks import model_file_is_interactive

    js = tmp_path / "m1.json"
    assert not model_file_is_interactive(None) and not model_file_is_interactive(js)  # no file
    js.write_text("[]")
    assert not model_file_is_interactive(tmp_path / "m1.safetensors")
    js.write_text(json.dumps(_card(config={"click_chans": 3}, interactive={"trained_share": 0.5})))
    assert model_file_is_interactive(tmp_path / "m1.safetensors") and model_file_is_interactive(js)
