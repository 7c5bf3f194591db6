"""Issue 16, model side: the robot clinician's protocol, the click encoding, training with simulated
clicks, the predictor's interactive mode and ``python -m training evaluate-clicks``."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.interactive import Click, click_maps, error_clicks, first_click, next_click

FAST = ["--input-size", "64", "--batch-size", "3", "--no-tqdm", "--threads", "1", "--workers", "0"]


def test_first_click_is_the_most_interior_point_of_the_lesion() -> None:
    gt = np.zeros((50, 80), bool)
    gt[10:31, 20:61] = True  # 21 x 41: the centre row is 20, centre column 40
    c = first_click(gt)
    assert c is not None and c.positive and c.y == 20 and 30 <= c.x <= 50
    assert first_click(np.zeros((5, 5), bool)) is None


def test_next_click_goes_to_the_largest_error_with_the_right_sign() -> None:
    gt = np.zeros((60, 60), bool)
    gt[10:50, 10:50] = True
    pred = gt.copy()
    pred[10:50, 10:20] = False  # a 40 x 10 miss on the left
    pred[0:6, 54:60] = True  # a small false region in a corner
    c = next_click(pred, gt)
    assert c.positive and 10 <= c.x < 20 and 10 <= c.y < 50
    pred2 = gt.copy()
    pred2[0:8, 0:60] = True  # a 8 x 60 false band above: larger than any miss
    pred2[40:50, 40:50] = False
    c2 = next_click(pred2, gt)
    assert not c2.positive and c2.y < 10
    assert next_click(gt, gt) is None
    several = error_clicks(pred, gt, 5)
    assert [c.positive for c in several] == [True, False]


def test_click_maps_scale_clicks_and_mask_to_the_input() -> None:
    prev = np.zeros((100, 200), bool)
    prev[:, 100:] = True
    maps = click_maps([Click(50, 50, True), Click(150, 25, False)], prev, (100, 200), 64, radius=3)
    assert maps.shape == (64, 64, 3) and maps.dtype == np.float32
    assert maps[32, 16, 0] == 1 and maps[32, 16, 1] == 0  # (50, 50) -> (16, 32)
    assert maps[16, 48, 1] == 1 and maps[16, 48, 0] == 0  # (150, 25) -> (48, 16)
    assert maps[:, :30, 2].max() == 0 and maps[:, 34:, 2].min() == 1
    assert 20 < maps[..., 0].sum() < 40  # one disk of radius 3


def test_noc_counts_clicks_until_the_threshold() -> None:
    from training.evaluate_clicks import noc

    assert noc([0.9, 0.95], 0.85, 20) == 0
    assert noc([0.2, 0.5, 0.86], 0.85, 20) == 2
    assert noc([0.2, 0.5], 0.85, 20) == 20


@pytest.fixture(scope="module")
def interactive_model(tmp_path_factory) -> Path:
    """A tiny model trained for a few steps with clicks on every sample (fixture workspace)."""
    from tests.conftest import make_fixture_pairs
    from training.store import Workspace
    from training.train import main

    tmp = tmp_path_factory.mktemp("click")
    pairs = tmp / "pairs"
    names = make_fixture_pairs(pairs, 3)
    ws = Workspace.open(tmp / "ws", create=True)
    for n in names:
        wli = next(pairs.glob(f"{n}_wli.*"))
        ws.import_pair(wli, pairs / f"{n}_nbi.png", pairs / f"{n}_mask.png", nbi_synthetic=True)
    ws.close()
    rc = main(["--data", str(tmp / "ws"), "--epochs", "4", "--out", str(tmp / "run"), "--model-id", "clicky",
               "--val-fraction", "0", "--interactive", "1.0", "--lr", "3e-3", "--seed", "2", *FAST])
    assert rc == 0
    return tmp / "run" / "clicky.json"


def test_training_with_clicks_gives_an_interactive_model(interactive_model: Path, tmp_path: Path) -> None:
    import torch

    from model.card import load_model
    from model.predictor import Predictor

    net, card = load_model(interactive_model)
    assert card["interactive"]["trained_share"] == 1.0 and card["config"]["click_chans"] == 3
    assert float(net.click_embed.weight.detach().abs().sum()) > 0, "the click input was trained"
    pred = Predictor.load(interactive_model, device="cpu")
    assert pred.interactive
    wli = cv2.cvtColor(cv2.imread(str(Path(__file__).parent / "data" / "vf_0041.png")), cv2.COLOR_BGR2RGB)
    auto = pred.predict(wli)
    h, w = wli.shape[:2]
    clicked = pred.predict_clicks(wli, None, None, [Click(w / 2, h / 2, True)], auto.mask)
    assert clicked.mask.shape == auto.mask.shape
    away = np.ones(auto.mask.shape, bool)
    cv2.circle(away.view(np.uint8), (w // 2, h // 2), max(h, w) // 8, 0, -1)
    assert not np.array_equal(clicked.prob[away], auto.prob[away]), "the network itself answers a click"
    # no clicks and no mask = the automatic mode
    none = pred.predict_clicks(wli, None, None, [], None)
    assert np.array_equal(none.prob, auto.prob)
    # a model without the mode refuses clearly
    from model.adf import ADFNet
    from model.card import save_model

    torch.manual_seed(0)
    plain = save_model(ADFNet(net.cfg).eval(), net.cfg, tmp_path / "plain", {"id": "plain"})
    with pytest.raises(ValueError, match="no interactive mode"):
        Predictor.load(plain, device="cpu").predict_clicks(wli, None, None, [Click(1, 1, True)])


def test_click_radius_follows_the_input_size() -> None:
    """Training draws disks of 5 px at 256 and scales them with its input; inference must too."""
    from model.interactive import input_radius

    assert input_radius(256) == 5 and input_radius(384) == 8 and input_radius(512) == 10
    assert input_radius(64) == 2


def test_clicks_stick_and_reach_the_network_at_the_trained_radius(interactive_model: Path, monkeypatch) -> None:
    """Every click's disk keeps its label in the redraw, whatever the network says there, and the
    network sees the disks at the radius training used for its input size."""
    import model.interactive as mi
    from model.predictor import Predictor

    pred = Predictor.load(interactive_model, device="cpu")
    wli = cv2.cvtColor(cv2.imread(str(Path(__file__).parent / "data" / "vf_0041.png")), cv2.COLOR_BGR2RGB)
    h, w = wli.shape[:2]
    size = pred.size_for(h, w)
    seen: list[int] = []
    real = mi.click_maps

    def spy(clicks, prev, src, sz, radius=mi.CLICK_RADIUS):
        seen.append(radius)
        return real(clicks, prev, src, sz, radius)

    monkeypatch.setattr(mi, "click_maps", spy)
    r = mi.input_radius(size) * w / size
    x0, y0 = round(w * 0.3), round(h * 0.3)
    clicks = [Click(x0, y0, False), Click(w * 0.7, h * 0.7, True), Click(x0 + r, y0, True)]
    out = pred.predict_clicks(wli, None, None, clicks, np.ones((h, w), bool))
    assert seen == [mi.input_radius(size)]
    # the later positive click wins where it overlaps the earlier negative one
    assert out.mask[int(h * 0.7), int(w * 0.7)] and out.mask[y0, round(x0 + r / 2)]
    assert not out.mask[y0, round(x0 - r / 2)], "the negative click's disk is negative though the mask was all tumour"
    stamp = mi.stick_clicks(np.zeros((h, w), bool), clicks[1:2], (r, r))
    assert out.mask[stamp].all() and out.prob[stamp].min() >= 128


def _csv(tmp_path: Path) -> Path:
    from tests.conftest import make_fixture_pairs

    pairs = tmp_path / "pairs"
    names = make_fixture_pairs(pairs, 2)
    lines = ["wli_path,nbi_path,label_path"]
    for n in names:
        wli = next(pairs.glob(f"{n}_wli.*"))
        lines.append(f"pairs/{wli.name},pairs/{n}_nbi.png,pairs/{n}_mask.png")
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "c.csv"


@pytest.mark.parametrize("method", ["model", "grabcut"])
def test_evaluate_clicks_cli(interactive_model: Path, tmp_path: Path, capsys, method: str) -> None:
    from training.__main__ import main

    csv_path = _csv(tmp_path)
    rc = main(["evaluate-clicks", "--model", str(interactive_model), "--csv", str(csv_path), "--max-clicks", "3",
               "--method", method, "--device", "cpu", "--no-progress", "--per-case", str(tmp_path / "pc.csv")])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n"] == 2 and res["method"] == method and len(res["dice_by_click"]) == 4
    assert 0 <= res["noc85"] <= 3 and res["noc85"] <= res["noc90"] <= 3
    assert res["ms_per_click"] > 0
    rows = (tmp_path / "pc.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("case,dice_0,")


def test_evaluate_clicks_refuses_a_model_without_clicks(tmp_path: Path, capsys) -> None:
    import torch

    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset
    from training.__main__ import main

    torch.manual_seed(0)
    cfg = get_preset("tiny")
    plain = save_model(ADFNet(cfg).eval(), cfg, tmp_path / "plain", {"id": "plain"})
    rc = main(["evaluate-clicks", "--model", str(plain), "--csv", str(_csv(tmp_path)), "--device", "cpu"])
    assert rc == 2
    assert "no interactive mode" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]


def _disk_count(maps) -> list[int]:
    """Clicks per sample in click maps (B,3,S,S): connected disks in the positive and negative maps."""
    import cv2

    out = []
    for m in maps.numpy():
        n = 0
        for ch in (0, 1):
            n += cv2.connectedComponents(m[ch].astype(np.uint8), connectivity=8)[0] - 1
        out.append(n)
    return out


def test_click_rounds_add_iterative_clicks_at_the_redraws_errors() -> None:
    """--click-rounds N: after the first 1-3 clicks, up to N more, each where the redraw is wrong;
    0 rounds never go beyond the first 3."""
    import torch

    from model.adf import ADFNet
    from model.config import get_preset
    from training.click_sim import interactive_card, simulated_clicks

    torch.manual_seed(0)
    cfg = get_preset("tiny")
    assert cfg.click_chans == 3
    net = ADFNet(cfg).eval()
    s = 128
    wli = torch.rand(4, 3, s, s)
    nbi = torch.rand(4, 3, s, s)
    present = torch.ones(4, dtype=torch.bool)
    target = torch.zeros(4, 1, s, s)
    # four separate squares: every redraw of an untrained network leaves several error regions
    for y in (10, 80):
        for x in (10, 80):
            target[:, :, y:y + 30, x:x + 30] = 1
    none = simulated_clicks(net, wli, nbi, present, None, target, 1.0, np.random.default_rng(3), rounds=0)
    many = simulated_clicks(net, wli, nbi, present, None, target, 1.0, np.random.default_rng(3), rounds=4)
    assert max(_disk_count(none)) <= 3
    assert max(_disk_count(many)) > 3, "iterative rounds add clicks beyond the first three"
    assert interactive_card(0.5, False, 4)["click_rounds"] == 4
    assert "0-4 iterative" in interactive_card(0.5, False, 4)["simulation"]


def test_click_rounds_must_not_be_negative(tmp_path: Path, capsys) -> None:
    from training.train import main

    rc = main(["--data", str(tmp_path), "--click-rounds", "-1", "--out", str(tmp_path / "run"), *FAST])
    assert rc == 2
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["event"] == "error" and "--click-rounds" in last["message"]
    assert not (tmp_path / "run").exists()


def test_stick_clicks_matches_a_full_frame_drawing_and_clips_at_the_border() -> None:
    from model.interactive import stick_clicks

    mask = np.zeros((60, 80), bool)
    mask[20:40, 20:60] = True
    clicks = [Click(30, 30, False), Click(0, 0, True), Click(79, 59, True), Click(33, 30, True)]
    got = stick_clicks(mask, clicks, (4, 3))
    want = mask.copy()
    for c in clicks:
        full = np.zeros(mask.shape, np.uint8)
        cv2.ellipse(full, (int(c.x), int(c.y)), (4, 3), 0, 0, 360, 1, -1)
        want[full > 0] = c.positive
    assert np.array_equal(got, want)
    assert got[0, 0] and got[59, 79] and not got[30, 27] and got[30, 33]
    assert not mask[0, 0], "the input mask is left as it was"


def _auto_drift(parent: Path, child: Path) -> float:
    """Mean |automatic probability of child - parent| on a laryngeal test frame."""
    from model.predictor import Predictor

    wli = cv2.cvtColor(cv2.imread(str(Path(__file__).parent / "data" / "vf_0041.png")), cv2.COLOR_BGR2RGB)
    a = Predictor.load(parent, device="cpu").predict(wli).prob.astype(np.float32)
    b = Predictor.load(child, device="cpu").predict(wli).prob.astype(np.float32)
    return float(np.abs(a - b).mean())


def test_distill_holds_the_parents_automatic_output(interactive_model: Path, tmp_path: Path) -> None:
    """--distill W: a click fine-tune with the parent's automatic output as a soft target moves
    that output less than the same fine-tune without it, and logs the distillation loss."""
    from training.train import main

    ws = interactive_model.parent.parent / "ws"
    common = ["--data", str(ws), "--init", str(interactive_model), "--epochs", "6", "--val-fraction", "0",
              "--interactive", "0.5", "--lr", "3e-3", "--parent-blend", "1", "--seed", "4", *FAST]
    assert main([*common, "--out", str(tmp_path / "free"), "--model-id", "free"]) == 0
    assert main([*common, "--distill", "20", "--out", str(tmp_path / "held"), "--model-id", "held"]) == 0
    free = _auto_drift(interactive_model, tmp_path / "free" / "free.json")
    held = _auto_drift(interactive_model, tmp_path / "held" / "held.json")
    assert held < 0.5 * free, (held, free)
    epochs = [json.loads(line) for line in (tmp_path / "held" / "log.jsonl").read_text().splitlines()]
    assert any(e.get("loss_distill", 0) > 0 for e in epochs if e.get("event") == "epoch")
    card = json.loads((tmp_path / "held" / "held.json").read_text())
    assert "--distill 20" in card["command"] and card["training"]["distill_weight"] == 20


def test_distill_needs_a_parent(tmp_path: Path, capsys) -> None:
    from training.train import main

    rc = main(["--data", str(tmp_path), "--distill", "1", "--out", str(tmp_path / "run"), *FAST])
    assert rc == 2
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["event"] == "error" and "--distill" in last["message"]


def test_grabcut_gives_the_same_mask_whatever_ran_before_it() -> None:
    """OpenCV seeds GrabCut from its process-wide random state: without a fixed seed the same
    refinement of a real frame changed with what ran before (the robot's GrabCut baseline moved by
    0.6 clicks between two tools, docs/MODEL.md "Release 6")."""
    from model.interactive import grabcut
    from tests.conftest import ROOT
    from training.imageio import read_rgb

    img = read_rgb(ROOT / "resources" / "demo" / "vf_0056_wli.jpg")
    truth = cv2.imread(str(ROOT / "resources" / "demo" / "vf_0056_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
    loose = cv2.dilate(truth.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0  # a clinician's rough outline
    masks = []
    for prior in (1, 2, 3, 12345):
        cv2.setRNGSeed(prior)  # whatever an earlier OpenCV call left behind
        cv2.randu(np.zeros((64, 64), np.float32), 0, 1)
        out = grabcut(img, loose)
        assert out is not None
        masks.append(out[0])
    assert all((m == masks[0]).all() for m in masks)
    assert masks[0].sum() < loose.sum()  # and it did refine: the loose outline shrank towards the lesion
