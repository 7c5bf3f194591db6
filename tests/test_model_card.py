"""Model files: bit-exact round trip, and every kind of bad file refused with a clear message."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model.adf import ADFNet
from model.card import ModelFileError, load_model, save_model
from model.config import get_preset


def _cfg():
    return dataclasses.replace(
        get_preset("tiny"), embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4), disent_dim=16, decoder_dim=8
    )


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[ADFNet, Path]:
    torch.manual_seed(0)
    cfg = _cfg()
    net = ADFNet(cfg)
    js = save_model(net, cfg, tmp_path / "m1", {"id": "m1", "training_data": "unit test", "command": "pytest"})
    return net, js


def _rewrite_sha(js: Path) -> None:
    card = json.loads(js.read_text())
    card["sha256"] = hashlib.sha256((js.parent / card["weights"]).read_bytes()).hexdigest()
    js.write_text(json.dumps(card))


def test_round_trip_bit_exact(saved: tuple[ADFNet, Path]) -> None:
    net, js = saved
    assert js.name == "m1.json" and js.with_suffix(".safetensors").is_file()
    card = json.loads(js.read_text())
    for key in ("id", "preset", "config", "input_size", "normalisation", "training_data", "command",
                "parent", "metrics", "sha256", "created", "format_version"):
        assert key in card
    assert card["created"].endswith("Z")
    for p in (js, js.with_suffix(".safetensors"), js.with_suffix("")):
        net2, card2 = load_model(p)
        assert card2["id"] == "m1"
        assert not net2.training
        s1, s2 = net.state_dict(), net2.state_dict()
        assert s1.keys() == s2.keys()
        assert all(torch.equal(s1[k], s2[k]) for k in s1)
    x = torch.randn(1, 3, 40, 40)
    net.eval()
    with torch.inference_mode():
        assert torch.equal(net(x, x).logits, net2(x, x).logits)


def test_pickle_payload_refused(saved: tuple[ADFNet, Path], tmp_path: Path) -> None:
    net, js = saved
    w = js.with_suffix(".safetensors")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (marker.write_text, ("x",))

    w.write_bytes(pickle.dumps({"state": Evil()}))
    _rewrite_sha(js)  # even with a matching hash the file must not be unpickled
    with pytest.raises(ModelFileError, match="not a valid safetensors file") as e:
        load_model(js)
    assert str(w) in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_wrong_sha_refused(saved: tuple[ADFNet, Path]) -> None:
    _, js = saved
    card = json.loads(js.read_text())
    card["sha256"] = "0" * 64
    js.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="sha256 mismatch") as e:
        load_model(js)
    assert "m1.safetensors" in str(e.value)


def test_wrong_shapes_refused(saved: tuple[ADFNet, Path]) -> None:
    net, js = saved
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["dec_pred.weight"] = torch.zeros(2, 8, 1, 1)
    save_file(state, str(js.with_suffix(".safetensors")))
    _rewrite_sha(js)
    with pytest.raises(ModelFileError, match=r"tensor dec_pred.weight has shape \[2, 8, 1, 1\]"):
        load_model(js)


def test_config_mismatch_refused(saved: tuple[ADFNet, Path]) -> None:
    _, js = saved
    card = json.loads(js.read_text())
    card["config"]["decoder_dim"] = 12
    js.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="config needs"):
        load_model(js)
    card["config"]["bogus"] = 1
    js.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="bad config: unknown config keys"):
        load_model(js)


def test_truncated_refused(saved: tuple[ADFNet, Path]) -> None:
    _, js = saved
    w = js.with_suffix(".safetensors")
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        load_model(js)
    _rewrite_sha(js)  # a truncated file whose card was "fixed" still fails to parse
    with pytest.raises(ModelFileError, match="not a valid safetensors file"):
        load_model(js)


def test_missing_or_broken_card(saved: tuple[ADFNet, Path], tmp_path: Path) -> None:
    _, js = saved
    with pytest.raises(ModelFileError, match="model card not found"):
        load_model(tmp_path / "nope.safetensors")
    js.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(js)
    js.write_text(json.dumps({"id": "x"}))
    with pytest.raises(ModelFileError, match="lacks"):
        load_model(js)


def test_a_failed_save_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """save_model writes through model.atomic: a failure at the card's rename leaves the weights
    written, no card (the model is not there), and no temp file."""
    import os

    from model import atomic

    torch.manual_seed(0)
    cfg = _cfg()
    real_replace = os.replace

    def fail_on_card(src, dst, *a, **k):
        if str(dst).endswith(".json"):
            raise OSError("disk full")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(atomic.os, "replace", fail_on_card)
    with pytest.raises(OSError, match="disk full"):
        save_model(ADFNet(cfg), cfg, tmp_path / "m2", {"id": "m2"})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m2.safetensors"]
    with pytest.raises(ModelFileError, match="model card not found"):
        load_model(tmp_path / "m2")
