"""Simulated clicks for training the interactive mode (issue 16): the clicks a clinician would
make on the network's own errors, and the card's account of how the mode was trained."""
from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def simulated_clicks(net: torch.nn.Module, wli: torch.Tensor, nbi: torch.Tensor, present: torch.Tensor,
                     wli_present: torch.Tensor | None, target: torch.Tensor, share: float,
                     rng: np.random.Generator, max_clicks: int = 3, rounds: int = 1,
                     first_net: torch.nn.Module | None = None, wrong_share: float = 0.0) -> torch.Tensor | None:
    """Click maps (B,3,S,S) for a batch: a share of the samples get clicks, the rest zeros (the
    automatic mode keeps training).

    For a clicked sample the current mask is the network's own automatic prediction (or, one time
    in five, nothing: a clinician starting from scratch) and 1-3 clicks go into its largest error
    regions; then 0 to ``rounds`` iterative rounds follow (drawn per sample, uniformly): the network
    redraws from the clicks so far and the next click goes into the largest error of that result
    (the iterative simulation of DeepEdit/RITM). ``rounds`` 1 = one extra round half the time.
    More rounds teach the late clicks of a hard case (the robot clinician goes up to 20) at one
    no-grad pass of the clicked samples per round.

    ``first_net`` (a click network trained beside a fixed automatic one, DESIGN-NOTES 26): the
    first masks are that network's automatic predictions, the ones the clinician will meet.
    ``wrong_share``: that share of the clicked samples starts instead from another sample's
    automatic mask, a mostly wrong mask the clicks must overturn (the cases that take most clicks)."""
    from model.interactive import click_maps, error_clicks, input_radius, next_click

    b, _, s, _ = wli.shape
    chosen = np.nonzero(rng.random(b) < share)[0]
    if len(chosen) == 0:
        return None
    radius = input_radius(s)
    was_training = net.training
    net.eval()
    auto = ((first_net or net)(wli, nbi, present, wli_present).logits[:, 0] > 0).cpu().numpy()
    gt = (target[:, 0] > 0.5).cpu().numpy()
    maps = np.zeros((b, s, s, 3), np.float32)
    clicks: dict[int, list] = {}
    prev: dict[int, np.ndarray] = {}
    for i in chosen:
        u = rng.random()
        if u < 0.2:
            prev[i] = np.zeros_like(auto[i])
        elif u < 0.2 + wrong_share and b > 1:
            prev[i] = auto[(i + int(rng.integers(1, b))) % b]
        else:
            prev[i] = auto[i]
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


def interactive_card(share: float, parent_had_it: bool, rounds: int = 1, first_masks_from: dict | None = None,
                     wrong_share: float = 0.0) -> dict | None:
    """The card's "interactive" field: how the click mode was trained, or None without one.
    ``first_masks_from``: the id and sha256 of the model whose automatic masks the clicks started
    from (``--first-masks-from``)."""
    from model.interactive import CLICK_RADIUS

    if share <= 0 and not parent_had_it:
        return None
    more = ("half the time one more iterative click" if rounds == 1
            else f"then 0-{rounds} iterative clicks (each at the largest error of the network's redraw)")
    start = "the automatic prediction" if first_masks_from is None else \
        f"the automatic prediction of {first_masks_from.get('id')}"
    wrong = f"; {wrong_share:g} of them start from another sample's automatic mask" if wrong_share > 0 else ""
    out = {"channels": ["positive clicks", "negative clicks", "current mask"],
           "click_radius_px_at_input": CLICK_RADIUS, "trained_share": share, "click_rounds": rounds,
           "simulation": f"1-3 clicks in the largest error regions of {start} (or of nothing, 1 in 5{wrong}), {more}"}
    if first_masks_from is not None:
        out["first_masks_from"] = first_masks_from
    if wrong_share > 0:
        out["wrong_masks_share"] = wrong_share
    return out
