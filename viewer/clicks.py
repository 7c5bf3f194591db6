"""Click to correct, the Qt-free part: which press makes which click, whether a model card offers
the interactive mode, and what a saved revision records about the clicks.

Why here and not in the widgets: these rules are shared by the editor, the window and the tests,
and they are easier to check without a window. The network side (the click encoding, the robot
clinician) is :mod:`model.interactive`; the prediction is ``Predictor.predict_clicks``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from model.card_file import ModelFileError, read_card_json
from model.interactive import Click

PLUS, MINUS = "+", "\u2212"  # the marker glyphs and the note's signs


def card_is_interactive(card: dict) -> bool:
    """Whether a model card offers the click mode (the rule of ``Predictor.interactive``), read
    from the JSON so the window can enable the tool before torch and the weights have loaded."""
    config = card.get("config") or {}
    return bool(config.get("click_chans")) and bool(card.get("interactive"))


def model_file_is_interactive(path: Path | None) -> bool:
    """``card_is_interactive`` of a model file's JSON card; False when it cannot be read."""
    if path is None:
        return False
    try:
        card, _ = read_card_json(path)
    except ModelFileError:  # missing, unreadable, not a JSON object
        return False
    return card_is_interactive(card)


def click_at(x: float, y: float, size: tuple[int, int], right_button: bool, shift: bool) -> Click | None:
    """The click a press at WLI scene point (x, y) makes on a (width, height) image: left =
    tumour, right or Shift+left = not tumour; None off the image (nothing to say there).

    The click is the pixel pressed, as whole pixel indices like the robot clinician's clicks
    (scene point 10.7 lies in pixel 10, whose centre is scene point 10.5)."""
    w, h = size
    if not (0.0 <= x < w and 0.0 <= y < h):
        return None
    return Click(float(math.floor(x)), float(math.floor(y)), not (right_button or shift))


def marker_points(clicks: Sequence[Click]) -> list[tuple[float, float, bool]]:
    """Where the click markers go in the scene: (x, y, positive) at the clicked pixels' centres."""
    return [(c.x + 0.5, c.y + 0.5, c.positive) for c in clicks]


def click_summary(clicks: Sequence[Click]) -> str:
    """The short human note of a click session, e.g. "3 clicks (2 +, 1 −)"."""
    pos = sum(1 for c in clicks if c.positive)
    n = len(clicks)
    return f"{n} click{'s' if n != 1 else ''} ({pos} {PLUS}, {n - pos} {MINUS})"


def click_provenance(clicks: Sequence[Click], model_id: str | None, edited_after: bool = False,
                     pending: bool = False) -> dict | None:
    """What a revision saved after clicks records in its audit event (None without clicks).

    ``edited_after``: a brush or other edit changed the clicks' result before the save;
    ``pending``: the last click's prediction had not arrived (the mask is the one before it)."""
    if not clicks:
        return None
    pos = sum(1 for c in clicks if c.positive)
    prov: dict = {"tool": "clicks", "model_id": model_id, "n_clicks": len(clicks), "positive": pos,
                  "negative": len(clicks) - pos, "clicks": [c.to_dict() for c in clicks],
                  "summary": click_summary(clicks) + (", then edited" if edited_after else "")}
    if pending:
        prov["pending"] = True
    return prov
