"""Predictor: device choice and its reason, CUDA fallback, NBI warping, pre/post-processing."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import model.predictor as mp
from model.adf import ADFNet
from model.card import save_model
from model.config import get_preset
from model.postprocess import postprocess_mask
from model.predictor import Prediction, Predictor, choose_device


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    # the tiny preset's structure, narrower and at 96 px so the tests stay fast on a busy CPU
    cfg = dataclasses.replace(
        get_preset("tiny"), input_size=96, embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), disent_dim=32
    )
    net = ADFNet(cfg).eval()
    # centre the random net's logits on the test pair so its mask is partial, not empty/full
    wli, nbi = _images()
    p = Predictor(net, {"id": "probe"})
    a, b = p._preprocess(wli, cv2.resize(nbi, (300, 200)), None)
    with torch.inference_mode():
        logits = p.net(p._to_tensor([a]), p._to_tensor([b])).logits
    with torch.no_grad():
        net.dec_pred.bias -= logits.median()
    return save_model(net, cfg, tmp_path_factory.mktemp("m") / "adf-test", {"id": "adf-test"})


@pytest.fixture(scope="module")
def pred(model_path: Path) -> Predictor:
    return Predictor.load(model_path, device="cpu")


def _images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    wli = cv2.GaussianBlur(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8), (0, 0), 5)
    nbi = cv2.GaussianBlur(rng.integers(0, 256, (150, 220, 3), dtype=np.uint8), (0, 0), 5)
    return wli, nbi


def test_cuda_requested_without_cuda_falls_back(monkeypatch: pytest.MonkeyPatch, model_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    p = Predictor.load(model_path, device="cuda")
    assert p.device == "cpu"
    assert p.device_reason.startswith("CPU — CUDA requested but not available: ")
    assert p.device_reason.endswith(("torch was built without CUDA", "no CUDA device found"))
    dev, reason = choose_device("auto")
    assert dev == "cpu" and reason in ("CPU — torch was built without CUDA", "CPU — no CUDA device found")
    assert choose_device("cpu") == ("cpu", "CPU — requested")
    with pytest.raises(ValueError):
        choose_device("tpu")


def test_cuda_probe_failure_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(mp, "_cuda_probe", lambda _dev="cuda": "CUDA probe failed: driver too old")
    assert choose_device("auto") == ("cpu", "CPU — CUDA probe failed: driver too old")


def test_one_device_rule_falls_back_for_the_app_and_refuses_for_the_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    """choose_device is the only device rule: the app falls back to the CPU with a reason, the
    trainer (fallback=False) refuses an unusable CUDA; "auto" never refuses; the GPU index of a DDP
    rank and "cuda:N" reach the probe and the device name."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("cuda", fallback=True)[0] == "cpu"
    with pytest.raises(mp.DeviceUnavailable, match="CUDA requested but not available: "):
        choose_device("cuda", fallback=False)
    with pytest.raises(mp.DeviceUnavailable):
        choose_device("cuda:1", fallback=False, index=0)
    assert choose_device("auto", fallback=False, index=1)[0] == "cpu"
    assert choose_device("cpu", fallback=False) == ("cpu", "CPU — requested")
    for bad in ("tpu", "cuda:", "cuda:x", "mps"):
        with pytest.raises(ValueError):
            choose_device(bad, fallback=False)
    probed: list[str] = []
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(mp, "_cuda_probe", lambda dev: probed.append(dev))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: f"GPU {d.index}")
    assert choose_device("auto", index=1) == ("cuda:1", "CUDA: GPU 1")
    assert choose_device("cuda", fallback=False) == ("cuda", "CUDA: GPU None")
    assert choose_device("cuda:3", fallback=False, index=0) == ("cuda:3", "CUDA: GPU 3")
    assert probed == ["cuda:1", "cuda", "cuda:3"]


def test_predict_non_square_pair_with_other_nbi_size(pred: Predictor) -> None:
    wli, nbi = _images()
    hm = np.array([[300 / 220, 0, 0], [0, 200 / 150, 0], [0, 0, 1]], np.float64)  # NBI -> WLI
    out = pred.predict(wli, nbi, hm)
    assert isinstance(out, Prediction)
    assert out.prob.shape == out.mask.shape == (200, 300)
    assert out.prob.dtype == np.uint8 and out.mask.dtype == np.bool_
    assert out.model_id == "adf-test"
    assert set(out.ms) == {"pre", "infer", "post", "total"} and out.ms["total"] >= out.ms["infer"] > 0
    assert np.array_equal(out.mask, postprocess_mask(out.prob))
    assert 0 < out.mask.sum() < out.mask.size  # the test model gives a real, partial mask
    # the homography is applied as NBI -> WLI: pre-warping by hand gives the same result
    warped = cv2.warpPerspective(nbi, hm, (300, 200))
    same = pred.predict(wli, warped)
    assert np.array_equal(same.prob, out.prob)
    # and the NBI matters (not silently dropped)
    assert not np.array_equal(pred.predict(wli).prob, out.prob)


def test_wli_only_and_batch(pred: Predictor) -> None:
    wli, nbi = _images()
    alone = pred.predict(wli)
    assert alone.prob.shape == (200, 300)
    singles = [pred.predict(wli), pred.predict(wli[:150, :170].copy(), nbi)]
    batch = pred.predict_batch([(wli,), (wli[:150, :170].copy(), nbi, None)], batch_size=2)
    assert len(batch) == 2
    for a, b in zip(singles, batch, strict=True):
        assert a.prob.shape == b.prob.shape
        assert np.abs(a.prob.astype(int) - b.prob.astype(int)).max() <= 1


def test_bad_input_refused(pred: Predictor) -> None:
    with pytest.raises(ValueError, match="wli must be an RGB uint8"):
        pred.predict(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="homography must be 3x3"):
        pred.predict(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10, 3), np.uint8), np.eye(2))


def test_cuda_runtime_failure_falls_back_once(model_path: Path) -> None:
    class Flaky(Predictor):
        calls = 0

        def _to_tensor(self, arrs):  # keep tensors on the CPU: this machine may have no GPU
            return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)

        def _forward(self, wli_t, nbi_t, present, *rest):
            Flaky.calls += 1
            if self.device == "cuda":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
            return super()._forward(wli_t, nbi_t, present, *rest)

    base = Predictor.load(model_path, device="cpu")
    p = Flaky(base.net, base.card, "cpu", "CUDA: fake")
    p.device = "cuda"  # pretend the model lives on a GPU that fails at run time
    wli, _ = _images()
    with pytest.warns(RuntimeWarning, match="continuing on the CPU"):
        out = p.predict(wli)
    assert out.prob.shape == (200, 300)
    assert p.device == "cpu"
    assert p.device_reason == "CPU — CUDA failed at run time: CUDA out of memory. Tried to allocate 2 GiB"
    assert Flaky.calls == 2


def _card_with_flips(model_path: Path, tmp_path: Path, flips: object) -> Path:
    import json
    import shutil

    for ext in (".json", ".safetensors"):
        shutil.copy(model_path.with_suffix(ext), tmp_path / f"adf-test{ext}")
    js = tmp_path / "adf-test.json"
    card = json.loads(js.read_text())
    card["test_time_flips"] = flips
    js.write_text(json.dumps(card))
    return js


def test_test_time_flips_average_the_flipped_views(model_path: Path, tmp_path: Path) -> None:
    wli, nbi = _images()
    p_tta = Predictor.load(_card_with_flips(model_path, tmp_path, ["none", "h", "v"]), device="cpu")
    p_plain = Predictor.load(tmp_path / "adf-test.json", device="cpu", tta=False)
    assert p_tta.flips == [(), (3,), (2,)] and p_plain.flips == [()]
    a, b = p_plain._preprocess(wli, cv2.resize(nbi, (300, 200)), None)
    w_t, n_t = p_plain._to_tensor([a]), p_plain._to_tensor([b])
    def view(dims: tuple[int, ...]) -> torch.Tensor:
        """The net's probability on one flipped view, flipped back (done by hand here)."""
        if not dims:
            return torch.sigmoid(p_plain.net(w_t, n_t).logits)
        logits = p_plain.net(torch.flip(w_t, dims), torch.flip(n_t, dims)).logits
        return torch.flip(torch.sigmoid(logits), dims)

    with torch.inference_mode():
        views = [view(d) for d in [(), (3,), (2,)]]
    plain = views[0][0, 0].numpy()
    expected = torch.stack([v[0, 0] for v in views]).mean(0).numpy()
    got = p_tta._infer([a], [b])[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got - plain).max() > 1e-3  # the views do differ: the average is not the plain view
    np.testing.assert_allclose(p_plain._infer([a], [b])[0], plain, atol=1e-6)
    # the whole predict path (two cases in one batch, one without NBI) uses the same average
    res = p_tta.predict_batch([(wli, cv2.resize(nbi, (300, 200))), (wli,)], batch_size=2)
    ref = p_tta._postprocess(expected, 200, 300)[0]
    assert np.abs(res[0].prob.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("flips", [[], ["none", "x"], "h", ["h", "h"]])
def test_bad_test_time_flips_is_a_clear_model_error(model_path: Path, tmp_path: Path, flips: object) -> None:
    from model.card import ModelFileError

    with pytest.raises(ModelFileError, match="test_time_flips"):
        Predictor.load(_card_with_flips(model_path, tmp_path, flips), device="cpu")


def test_a_cards_decision_threshold_moves_the_overlay_rule_to_it(model_path: Path, tmp_path: Path) -> None:
    """A release may choose a threshold other than 0.5 (docs/MODEL.md, release 3). The cached
    probability is recalibrated so the one 0.5 rule of the viewer and the evaluations gives the
    mask of thresholding the raw probability at t, and the ranking of pixels is unchanged."""
    import json

    wli, nbi = _images()
    nbi = cv2.resize(nbi, (300, 200))
    raw = Predictor.load(model_path, device="cpu").predict(wli, nbi)
    card = json.loads(model_path.read_text())
    card["decision_threshold"] = 0.3
    dest = tmp_path / "thr"
    dest.mkdir()
    (dest / model_path.name).write_text(json.dumps(card))
    (dest / model_path.with_suffix(".safetensors").name).write_bytes(model_path.with_suffix(".safetensors").read_bytes())
    low = Predictor.load(dest / model_path.name, device="cpu")
    assert low.decision_threshold == 0.3
    res = low.predict(wli, nbi)
    expected = postprocess_mask(raw.prob, threshold=0.3)
    # 1 uint8 step of rounding may flip pixels lying on the threshold
    assert (res.mask != expected).mean() < 0.002 and res.mask.sum() > raw.mask.sum()
    assert np.array_equal(res.mask, postprocess_mask(res.prob))  # the viewer's rule on the cached map
    x = np.linspace(0.0, 1.0, 101, dtype=np.float32)
    y = low.recalibrate(x)
    assert np.all(np.diff(y) > 0) and y[0] == 0.0 and y[-1] == 1.0  # monotone: the ranking is kept
    assert abs(float(low.recalibrate(np.float32([0.3]))[0]) - 0.5) < 1e-6
    card["decision_threshold"] = 1.5
    (dest / model_path.name).write_text(json.dumps(card))
    with pytest.raises(ValueError, match="decision_threshold"):
        Predictor.load(dest / model_path.name, device="cpu")


def test_no_upsampling_runs_small_images_at_their_own_size_and_batches_by_size(model_path: Path) -> None:
    """Release 3 runs 384 px but Kvasir-sized (256 px) images at 256 (chosen on Kvasir val_choose):
    the size follows each image, and a batch mixing sizes still gives each pair its own answer."""
    p = Predictor.load(model_path, device="cpu")
    p.input_size, p.no_upsampling = 160, True  # training size of the fixture: 96
    assert [p.size_for(h, w) for h, w in [(512, 640), (128, 128), (100, 300), (60, 60)]] == [160, 128, 96, 96]
    p.no_upsampling = False
    assert p.size_for(128, 128) == 160
    p.no_upsampling = True
    wli, nbi = _images()  # 200 x 300 -> 192 > 160: the card's size
    small = cv2.resize(wli, (128, 112))  # -> 96 (112 // 32 * 32 = 96)
    alone = [p.predict(wli, nbi).prob, p.predict(small).prob]
    mixed = p.predict_batch([(wli, nbi), (small,)], batch_size=2)
    assert [m.prob.shape for m in mixed] == [(200, 300), (112, 128)]
    for got, ref in zip(mixed, alone, strict=True):
        assert np.abs(got.prob.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("shape", [(512, 512), (300, 401), (1076, 1348), (96, 96)])
def test_normalisation_is_exactly_the_cards_mean_and_std(pred: Predictor, shape: tuple[int, int]) -> None:
    """The fast OpenCV normalisation gives the float32 values of (img/255 - mean)/std as numpy
    computes them (what training saw), at every resize path."""
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    s = pred.size_for(*shape)
    got = pred._prep_image(img, s)
    small = img if shape == (s, s) else cv2.resize(
        img, (s, s), interpolation=cv2.INTER_AREA if max(shape) > s else cv2.INTER_LINEAR)
    mean = np.asarray(pred.cfg.mean, np.float32)
    std = np.asarray(pred.cfg.std, np.float32)
    want = small.astype(np.float32) * (1.0 / (255.0 * std)) + (-mean / std)
    assert got.dtype == np.float32 and got.shape == (s, s, 3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert abs(float(got[..., 0].mean()) - float(((small[..., 0] / 255.0 - mean[0]) / std[0]).mean())) < 1e-4
