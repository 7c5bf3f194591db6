"""training.train runs unchanged under torchrun: a 2-process gloo (CPU) DDP smoke test."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import ROOT
from tests.test_train import _last_json, make_export


def test_ddp_two_process_gloo_smoke(tmp_path):
    data = make_export(tmp_path / "export", 4)
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training", "train", "--data", str(data), "--epochs", "1", "--steps-per-epoch", "1",
           "--out", str(out), "--model-id", "ddp", "--input-size", "64", "--batch-size", "1", "--no-tqdm",
           "--threads", "1"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    done = _last_json(r.stdout)
    assert done["event"] == "done"
    start = json.loads(r.stdout.strip().splitlines()[0])
    assert start["world"] == 2
    ep = [json.loads(x) for x in r.stdout.strip().splitlines() if json.loads(x)["event"] == "epoch"]
    assert len(ep) == 1 and ep[0]["images"] == 2  # one step of batch 1 on each of 2 ranks
    # only rank 0 wrote: one log line per event, one model
    assert len([x for x in (out / "log.jsonl").read_text().splitlines() if '"done"' in x]) == 1
    from model.card import load_model

    net, card = load_model(done["model"])
    assert card["training"]["world_size"] == 2
    assert all(np.isfinite(v.numpy()).all() for v in net.state_dict().values() if v.is_floating_point())
