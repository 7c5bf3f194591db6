"""A separate click network beside a fixed automatic one (DESIGN-NOTES 26): the trainer's
--first-masks-from / --wrong-masks, ``python -m training attach-clicks``, the one-file model with
``clicks.`` tensors, and the predictor sending clicks (only clicks) to that network."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.adf import ADFNet
from model.card import ModelFileError, load_model, load_models, save_model
from model.config import get_preset
from model.interactive import Click
from model.predictor import Predictor
from training.click_sim import interactive_card, simulated_clicks

FAST = ["--input-size", "64", "--batch-size", "3", "--no-tqdm", "--threads", "1", "--workers", "0"]


def _tiny_model(stem: Path, seed: int, interactive: bool = True) -> Path:
    """An untrained tiny network (seeded) written as a model; with a click card when asked."""
    cfg = get_preset("tiny")
    torch.manual_seed(seed)
    card = {"id": stem.name, "metrics": {"val_dice": 0.5 + seed / 100}, "commands": [f"made by seed {seed}"]}
    if interactive:
        card["interactive"] = interactive_card(1.0, False, 2)
    return save_model(ADFNet(cfg), cfg, stem, card)


def _image(seed: int = 0, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size + 16, 3), dtype=np.uint8)


def test_attach_clicks_keeps_the_automatic_output_and_answers_clicks_with_the_other(tmp_path: Path, capsys) -> None:
    from training.__main__ import main

    auto = _tiny_model(tmp_path / "auto", 1)
    clicks = _tiny_model(tmp_path / "clicky", 2)
    rc = main(["attach-clicks", "--model", str(auto), "--clicks", str(clicks), "--out", str(tmp_path / "rel" / "both"),
               "--id", "both-1", "--note", "clicks from clicky", "--replaces", "auto"])
    assert rc == 0
    js = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"])
    card = json.loads(js.read_text())
    auto_card = json.loads(auto.read_text())
    assert card["id"] == "both-1" and card["parent"]["id"] == "auto" and card["parent"]["sha256"] == auto_card["sha256"]
    assert card["interactive"]["network"] == "separate"
    assert card["interactive"]["click_network"]["id"] == "clicky"
    assert card["metrics"]["val_dice"] == auto_card["metrics"]["val_dice"], "the automatic network's figure"
    assert card["metrics"]["parent_val_dice"] == auto_card["metrics"]["val_dice"], "the parent is the same network"
    assert card["commands"] == ["made by seed 1"], "the automatic network's training, as it was"
    assert card["interactive"]["click_network"]["commands"] == ["made by seed 2"]
    assert card["release_command"].startswith("python -m training attach-clicks ") and card["replaces"] == "auto"
    assert card["release_notes"] == ["clicks from clicky"]
    assert card["params"] == 2 * auto_card["params"]

    p_auto, p_click, p_both = (Predictor.load(x, device="cpu") for x in (auto, clicks, js))
    img = _image()
    a = p_auto.predict(img)
    b = p_both.predict(img)
    assert np.array_equal(a.prob, b.prob), "the automatic mode is the automatic network's, bit for bit"
    ck = [Click(40, 30, True), Click(80, 60, False)]
    want = p_click.predict_clicks(img, None, None, ck, a.mask)
    got = p_both.predict_clicks(img, None, None, ck, b.mask)
    # the click network is stored in float16: the same network with its weights rounded so
    with torch.no_grad():
        for v in p_click.click_net.state_dict().values():
            if v.is_floating_point():
                v.copy_(v.half().float())
    rounded = p_click.predict_clicks(img, None, None, ck, a.mask)
    assert np.array_equal(rounded.prob, got.prob), "clicks go to the click network, as stored"
    assert np.abs(want.prob.astype(int) - got.prob.astype(int)).max() <= 2, "float16 storage moves it little"
    assert card["interactive"]["click_network"]["stored_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in p_both.click_net.parameters()), "computes in float32"
    assert not np.array_equal(p_auto.predict_clicks(img, None, None, ck, a.mask).prob, got.prob)

    # the trainer's --init (a clinic fine-tune) reads the automatic network only
    net, c = load_model(js)
    ref, _ = load_model(auto)
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in net.state_dict().items())


def test_a_click_network_file_that_lies_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from training.attach_clicks import attach

    auto = _tiny_model(tmp_path / "auto", 1)
    js = attach(str(auto), str(_tiny_model(tmp_path / "c", 2)), str(tmp_path / "both"), "both", "cmd")
    net, click_net, _ = load_models(js)
    assert click_net is not None and click_net is not net
    stored = load_file(tmp_path / "both.safetensors")
    assert {k[len("clicks."):] for k in stored if k.startswith("clicks.")} == set(net.state_dict())
    assert {str(v.dtype) for k, v in stored.items() if k.startswith("clicks.") and v.is_floating_point()} == \
        {"torch.float16"} and all(v.dtype == torch.float32 for k, v in stored.items()
                                   if not k.startswith("clicks.") and v.is_floating_point())
    # the card without its "separate" claim no longer matches the tensors in the file
    card = json.loads(js.read_text())
    card["interactive"].pop("network")
    js.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="unexpected"):
        load_models(js)
    # and a file without the click tensors is refused when the card claims them
    card["interactive"]["network"] = "separate"
    card["weights"] = "auto.safetensors"
    card["sha256"] = json.loads(auto.read_text())["sha256"]
    lie = tmp_path / "lie.json"
    lie.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="missing"):
        load_models(lie)


def test_attach_clicks_refuses_a_model_without_a_click_mode(tmp_path: Path, capsys) -> None:
    from training.__main__ import main

    auto = _tiny_model(tmp_path / "auto", 1)
    plain = _tiny_model(tmp_path / "plain", 2, interactive=False)
    rc = main(["attach-clicks", "--model", str(auto), "--clicks", str(plain), "--out", str(tmp_path / "x"), "--id", "x"])
    assert rc == 2
    assert "not trained with clicks" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert not (tmp_path / "x.json").exists()


def test_save_model_refuses_a_click_network_the_card_does_not_declare(tmp_path: Path) -> None:
    cfg = get_preset("tiny")
    with pytest.raises(ValueError, match="separate"):
        save_model(ADFNet(cfg), cfg, tmp_path / "m", {"id": "m"}, click_net=ADFNet(cfg))


def test_first_masks_come_from_the_given_network_and_wrong_masks_from_other_samples() -> None:
    """--first-masks-from: the mask channel of a first-round click sample is the other network's
    automatic mask; --wrong-masks: a share of them is another sample's mask instead."""
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    net = ADFNet(cfg).eval()

    class Fixed(torch.nn.Module):
        """A stand-in automatic network: each sample's mask is a square at its own place."""

        def forward(self, wli, nbi, present, wli_present=None, clicks=None):
            b, _, s, _ = wli.shape
            out = torch.full((b, 1, s, s), -5.0)
            for i in range(b):
                out[i, :, 8 * i:8 * i + 20, 8 * i:8 * i + 20] = 5.0
            return type("Out", (), {"logits": out})()

    s, b = 64, 6
    wli, nbi = torch.rand(b, 3, s, s), torch.rand(b, 3, s, s)
    present = torch.ones(b, dtype=torch.bool)
    target = torch.zeros(b, 1, s, s)
    target[:, :, 30:50, 30:50] = 1
    fixed = Fixed()
    own = fixed(wli, nbi, present).logits[:, 0] > 0
    maps = simulated_clicks(net, wli, nbi, present, None, target, 1.0, np.random.default_rng(5), rounds=0,
                            first_net=fixed)
    masks = maps[:, 2] > 0.5
    from_own = [bool(torch.equal(masks[i], own[i])) for i in range(b)]
    empty = [not bool(masks[i].any()) for i in range(b)]
    assert all(o or e for o, e in zip(from_own, empty, strict=True)) and any(from_own)

    wrong = simulated_clicks(net, wli, nbi, present, None, target, 1.0, np.random.default_rng(5), rounds=0,
                             first_net=fixed, wrong_share=0.8)
    wm = wrong[:, 2] > 0.5
    others = [i for i in range(b) if wm[i].any() and not torch.equal(wm[i], own[i])]
    assert others, "some samples start from a mask that is not theirs"
    for i in others:
        assert any(torch.equal(wm[i], own[j]) for j in range(b) if j != i), "it is another sample's mask"


def test_training_a_click_network_for_a_fixed_automatic_one(tmp_path: Path) -> None:
    """The trainer with --first-masks-from and --wrong-masks on a workspace: it runs, its card says
    where the masks came from, and attach-clicks makes the app's model of it."""
    from tests.conftest import make_fixture_pairs
    from training.attach_clicks import attach
    from training.store import Workspace
    from training.train import main

    pairs = tmp_path / "pairs"
    names = make_fixture_pairs(pairs, 3)
    ws = Workspace.open(tmp_path / "ws", create=True)
    for n in names:
        ws.import_pair(next(pairs.glob(f"{n}_wli.*")), pairs / f"{n}_nbi.png", pairs / f"{n}_mask.png",
                       nbi_synthetic=True)
    ws.close()
    auto = _tiny_model(tmp_path / "auto", 1)
    rc = main(["--data", str(tmp_path / "ws"), "--epochs", "1", "--out", str(tmp_path / "run"), "--model-id", "cn",
               "--val-fraction", "0", "--init", str(auto), "--first-masks-from", str(auto), "--wrong-masks", "0.3",
               "--interactive", "1.0", "--click-rounds", "2", "--parent-blend", "1", *FAST])
    assert rc == 0
    card = json.loads((tmp_path / "run" / "cn.json").read_text())
    inter = card["interactive"]
    assert inter["first_masks_from"]["sha256"] == json.loads(auto.read_text())["sha256"]
    assert inter["wrong_masks_share"] == 0.3 and "auto" in inter["simulation"]
    js = attach(str(auto), str(tmp_path / "run" / "cn.json"), str(tmp_path / "rel"), "rel", "cmd")
    rel = json.loads(js.read_text())["interactive"]
    assert rel["network"] == "separate" and rel["first_masks_from"]["id"] == "auto"
    assert rel["click_network"]["id"] == "cn"
    p = Predictor.load(js, device="cpu")
    out = p.predict_clicks(_image(3), None, None, [Click(50, 40, True)], None)
    assert out.mask[40, 50], "a positive click is tumour in the result"

    # a clinic fine-tune of that model (the Train dialog's --init) trains and releases one network
    rc = main(["--data", str(tmp_path / "ws"), "--epochs", "1", "--out", str(tmp_path / "clinic"), "--model-id", "cl",
               "--val-fraction", "0", "--init", str(js), "--parent-blend", "1", *FAST])
    assert rc == 0
    net, click_net, card = load_models(tmp_path / "clinic" / "cl.json")
    assert click_net is None and "network" not in card["interactive"] and card["interactive"]["trained_share"] == 0.5
    assert card["parent"]["id"] == "rel"


@pytest.mark.parametrize("bad, says", [(["--wrong-masks", "0.9"], "--wrong-masks must be in"),
                                       (["--first-masks-from", "x", "--interactive", "0"], "needs --interactive")])
def test_click_network_options_are_checked(tmp_path: Path, capsys, bad: list[str], says: str) -> None:
    from training.train import main

    assert main(["--data", str(tmp_path), *bad, "--out", str(tmp_path / "run"), *FAST]) == 2
    assert says in capsys.readouterr().err


def test_models_dialog_adds_a_model_with_its_own_click_network_and_says_so(qtbot, tmp_path: Path) -> None:
    """Adding the combined file through the Models dialog checks both networks and registers it;
    the table's Clicks column tells the two kinds of click mode apart."""
    from unittest import mock

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    from training.attach_clicks import attach
    from training.store import Workspace
    from viewer.app import make_app
    from viewer.models_dialog import ModelsDialog

    make_app()
    auto = _tiny_model(tmp_path / "m" / "auto", 1)
    js = attach(str(auto), str(_tiny_model(tmp_path / "m" / "c", 2)), str(tmp_path / "m" / "both"), "both", "cmd")
    root = tmp_path / "ws"
    with Workspace.open(root, create=True) as ws:
        ws.register_model(auto)
        models = ws.models()
    dlg = ModelsDialog(models, None, workspace_root=root)
    qtbot.addWidget(dlg)
    with mock.patch.object(QFileDialog, "getOpenFileName", return_value=(str(js), "")):
        qtbot.mouseClick(dlg.add_btn, Qt.MouseButton.LeftButton)
    assert dlg.wait_done()
    qtbot.waitUntil(lambda: dlg.table.rowCount() == 2)
    clicks_col = [dlg.table.horizontalHeaderItem(j).text() for j in range(dlg.table.columnCount())].index("Clicks")
    shown = {dlg.table.item(i, 1).text(): dlg.table.item(i, clicks_col).text() for i in range(2)}
    assert shown == {"auto": "yes", "both": "own network"}
    with Workspace.open(root) as ws:
        assert [m["id"] for m in ws.models()] == ["auto", "both"]
    # the same file with its click tensors cut off is refused with the reason, nothing registered
    data = (tmp_path / "m" / "both.safetensors").read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    card = json.loads(js.read_text())
    card["id"] = "cut"
    (bad / "both.json").write_text(json.dumps(card))
    (bad / "both.safetensors").write_bytes(data[: len(data) // 2])
    dlg.add_model_file(bad / "both.json")
    assert dlg.wait_done()
    qtbot.waitUntil(lambda: dlg.add_btn.isEnabled())
    assert dlg.message.text().startswith("Cannot add both.json:") and "sha256" in dlg.message.text()
    with Workspace.open(root) as ws:
        assert [m["id"] for m in ws.models()] == ["auto", "both"]


def test_blend_writes_parent_plus_share_of_the_fine_tune_and_says_so(tmp_path: Path, capsys) -> None:
    """``python -m training blend``: every float tensor is parent + share x (model - parent), the card
    keeps the fine-tuned run's commands and records the blend; a share outside [0, 1] is refused."""
    from training.__main__ import main

    parent, tuned = _tiny_model(tmp_path / "parent", 1, interactive=False), _tiny_model(tmp_path / "tuned", 2, False)
    rc = main(["blend", "--parent", str(parent), "--model", str(tuned), "--share", "0.25",
               "--out", str(tmp_path / "rel" / "mix"), "--id", "mix-1"])
    assert rc == 0
    js = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"])
    card = json.loads(js.read_text())
    assert card["id"] == "mix-1" and card["commands"] == ["made by seed 2"]
    assert card["blend"]["share"] == 0.25 and card["blend"]["parent"]["id"] == "parent"
    assert card["blend"]["fine_tuned"]["sha256"] == json.loads(tuned.read_text())["sha256"]
    assert card["blend"]["command"].startswith("python -m training blend ")
    (p_net, _), (t_net, _), (m_net, _) = load_model(parent), load_model(tuned), load_model(js)
    checked = 0
    for name, w in m_net.state_dict().items():
        if w.is_floating_point():
            p, t = p_net.state_dict()[name], t_net.state_dict()[name]
            assert torch.allclose(w, p + 0.25 * (t - p), atol=1e-6), name
            checked += int(not torch.equal(p, t))
    assert checked > 10, "the two networks differ, so the blend is tested"
    assert main(["blend", "--parent", str(parent), "--model", str(tuned), "--share", "1.5",
                 "--out", str(tmp_path / "bad"), "--id", "bad"]) == 2
    assert not (tmp_path / "bad.json").exists()


def test_a_float16_copy_is_half_the_file_computes_in_float32_and_can_parent_a_fine_tune(tmp_path: Path,
                                                                                        capsys) -> None:
    """``blend --share 1 --float16 --operating-point-of RELEASE``: a reference model kept in the
    repository (a fold's base) stored in half the bytes, at the release's fixed operating point; it
    loads as float32 within float16's rounding of the original, predicts as the original does, and a
    model blended from it as parent is stored in float32 again."""
    from training.__main__ import main

    base = _tiny_model(tmp_path / "base", 3, interactive=False)
    cfg = get_preset("tiny")
    point = {"inference_input_size": 384, "inference_no_upsampling": True, "decision_threshold": 0.2,
             "test_time_flips": ["none"]}
    release = save_model(ADFNet(cfg), cfg, tmp_path / "release", {"id": "release", **point})
    assert json.loads(base.read_text()).get("decision_threshold") != 0.2
    rc = main(["blend", "--parent", str(base), "--model", str(base), "--share", "1", "--float16",
               "--operating-point-of", str(release), "--out", str(tmp_path / "ref" / "base16"), "--id", "base16"])
    assert rc == 0
    js = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"])
    card = json.loads(js.read_text())
    assert card["stored_dtype"] == "float16"
    assert {k: card.get(k) for k in point} == point and card["operating_point_from"]["id"] == "release"
    full_bytes = (base.parent / json.loads(base.read_text())["weights"]).stat().st_size
    assert (js.parent / card["weights"]).stat().st_size < 0.55 * full_bytes
    (b_net, _), (h_net, _) = load_model(base), load_model(js)
    for name, w in h_net.state_dict().items():
        if w.is_floating_point():
            assert w.dtype == torch.float32, name
            assert torch.allclose(w, b_net.state_dict()[name], rtol=1e-3, atol=1e-4), name
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(h_net(x, x).logits, b_net(x, x).logits, atol=0.05)
    rc = main(["blend", "--parent", str(js), "--model", str(base), "--share", "0.5",
               "--out", str(tmp_path / "mix"), "--id", "mix"])
    assert rc == 0
    mix = json.loads((tmp_path / "mix.json").read_text())
    assert "stored_dtype" not in mix and (tmp_path / mix["weights"]).stat().st_size > 0.9 * full_bytes
    from training.train import main as train_main

    mini = Path(__file__).resolve().parent / "data" / "public_mini"
    rc = train_main(["--data", "public", "--shared-root", str(mini), "--fold", "b", "--init", str(js), "--epochs", "1", "--input-size", "64", "--batch-size", "4", "--threads", "1",
                     "--workers", "0", "--no-tqdm", "--out", str(tmp_path / "tune"), "--model-id", "tune"])
    assert rc == 0
    tuned = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert tuned["decision_threshold"] == 0.2 and tuned["test_time_flips"] == ["none"]  # the fixed point, inherited
    assert "stored_dtype" not in tuned and tuned["parent"]["id"] == "base16"


def test_blend_gates_writes_each_share_as_a_model_and_measures_it_at_the_fixed_point(tmp_path: Path) -> None:
    """benchmarks/blend_gates.py (a release rule's gates): share 0 is the parent and share 1 the
    fine-tune, each written with its blend command and the release's operating point, each measured on
    the named set; its figures are those ``python -m training evaluate`` gives the written blend."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    parent, tuned = _tiny_model(tmp_path / "parent", 1, interactive=False), _tiny_model(tmp_path / "tuned", 2, False)
    cfg = get_preset("tiny")
    release = save_model(ADFNet(cfg), cfg, tmp_path / "release",
                         {"id": "release", "inference_input_size": 64, "decision_threshold": 0.5,
                          "inference_no_upsampling": True, "test_time_flips": ["none"]})
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "blend_gates.py"), "--parent", str(parent),
                          "--model", str(tuned), "--shares", "0,1", "--set", "vocal_seq2", "--no-noise-check",
                          "--out", str(tmp_path / "gates"), "--operating-point-of", str(release),
                          "--shared", str(root / "tests" / "data" / "public_mini")],
                         capture_output=True, text=True, cwd=root, timeout=600)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(summary["results"]) == ["0", "1"]
    for share, source in (("0", parent), ("1", tuned)):
        res = summary["results"][share]
        assert res["n"] == 3 and res.get("error") is None and 0.0 <= res["dice"] <= 1.0
        assert res["ci95"]["block"] == 3  # frames of a recording: resampled in runs of 3
        card = json.loads(Path(res["blend"]).read_text())
        assert card["blend"]["command"].startswith("python -m training blend ") and card["inference_input_size"] == 64
        (b_net, _), (s_net, _) = load_model(res["blend"]), load_model(source)
        assert all(torch.allclose(v, s_net.state_dict()[k], atol=1e-6) for k, v in b_net.state_dict().items()
                   if v.is_floating_point())
    assert summary["results"]["0"]["blend"].endswith("s0/tuned-s0.json")
    from training.data import write_public_eval_csvs

    csvs = write_public_eval_csvs(root / "tests" / "data" / "public_mini", tmp_path / "csv")
    direct = subprocess.run([sys.executable, "-m", "training", "evaluate", "--model", summary["results"]["1"]["blend"],
                             "--csv", str(csvs["vocal_seq2"]), "--pseudo-nbi", "--no-noise-check", "--no-progress",
                             "--device", "cpu"], capture_output=True, text=True, cwd=root, timeout=600)
    assert json.loads(direct.stdout.strip().splitlines()[-1])["dice"] == summary["results"]["1"]["dice"]
