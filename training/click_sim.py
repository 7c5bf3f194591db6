"""Simulated clicks for training the interactive mode (issue 16): the clicks a clinician would
make on the network's own errors, and the card's account of how the mode was trained."""
from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def simulated_clicks(net: torch.nn.Module, wli: torch.Tensor, nbi: torch.Tensor, present: torch.Tensor,
                     wli_present: torch.Tensor | None, target: torch.Tensor, share: float,
                     rng: np.random.Generator, max_clicks: int = 3, rounds: int = 1) -> torch.Tensor | None:
    """Click maps (B,3,S,S) for a batch: a share of the samples get clicks, the rest zeros (the
    automatic mode keeps training).

    For a clicked sample the current mask is the network's own automatic prediction (or, one time
    in five, nothing: a clinician starting from scratch) and 1-3 clicks go into its largest error
    regions; then 0 to ``rounds`` iterative rounds follow (drawn per sample, uniformly): the network
    redraws from the clicks so far and the next click goes into the largest error of that result
    (the iterative simulation of DeepEdit/RITM). ``rounds`` 1 = one extra round half the time.
    More rounds teach the late clicks of a hard case (the robot clinician goes up to 20) at one
    no-grad pass of the clicked samples per round."""
    from model.interactive import click_maps, error_clicks, input_radius, next_click

    b, _, s, _ = wli.shape
    chosen = np.nonzero(rng.random(b) < share)[0]
    if len(chosen) == 0:
        return None
    radius = input_radius(s)
    was_training = net.training
    net.eval()
    auto = (net(wli, nbi, present, wli_present).logits[:, 0] > 0).cpu().numpy()
    gt = (target[:, 0] > 0.5).cpu().numpy()
    maps = np.zeros((b, s, s, 3), np.float32)
    clicks: dict[int, list] = {}
    prev: dict[int, np.ndarray] = {}
    for i in chosen:
        prev[i] = auto[i] if rng.random() >= 0.2 else np.zeros_like(auto[i])
        clicks[i] = error_clicks(prev[i], gt[i], int(rng.integers(1, max_clicks + 1)))
        maps[i] = click_maps(clicks[i], prev[i], (s, s), s, radius)
    wanted = {i: int(rng.integers(0, max(0, rounds) + 1)) for i in chosen}
    for k in range(max(0, rounds)):
        again = [i for i in chosen if clicks[i] and wanted[i] > k]
        if not again:
            break
        idx = torch.as_tensor(again, device=wli.device)
        ck = torch.from_numpy(maps[again]).permute(0, 3, 1, 2).to(wli.device)
        wp = None if wli_present is None else wli_present[idx]
        redo = (net(wli[idx], nbi[idx], present[idx], wp, ck).logits[:, 0] > 0).cpu().numpy()
        for j, i in enumerate(again):
            c = next_click(redo[j], gt[i])
            if c is not None:
                clicks[i] = [*clicks[i], c]
            maps[i] = click_maps(clicks[i], redo[j], (s, s), s, radius)
    if was_training:
        net.train()
    return torch.from_numpy(maps).permute(0, 3, 1, 2).to(wli.device)


def interactive_card(share: float, parent_had_it: bool, rounds: int = 1) -> dict | None:
    """The card's "interactive" field: how the click mode was trained, or None without one."""
    from model.interactive import CLICK_RADIUS

    if share <= 0 and not parent_had_it:
        return None
    more = ("half the time one more iterative click" if rounds == 1
            else f"then 0-{rounds} iterative clicks (each at the largest error of the network's redraw)")
    return {"channels": ["positive clicks", "negative clicks", "current mask"],
            "click_radius_px_at_input": CLICK_RADIUS, "trained_share": share, "click_rounds": rounds,
            "simulation": "1-3 clicks in the largest error regions of the automatic prediction (or of "
                          f"nothing, 1 in 5), {more}"}
