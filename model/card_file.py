"""The model card on disk, without torch: find, parse and check a card, and the id it goes by.

<stem>.json beside <stem>.safetensors: id, preset, full config, input size, normalisation,
training data and command, parent, metrics, sha256 of the weights file, created, format
version (model/card.py writes it and loads the weights).

Why a torch-free module: the viewer needs a card's id to find cached predictions, and the store
registers cards, long before (or without ever) importing torch. model/card.py re-exports all of
this, so ``from model.card import read_card`` keeps working where torch is loaded anyway.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from model.i18n_marks import QT_TRANSLATE_NOOP, Message
from model.names import safe_model_id

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "id", "preset", "config", "weights", "sha256")
# Optional card key "test_time_flips": the predictor averages the probabilities of these views
# (un-flipped back); absent = ["none"]. Dimensions are of an NCHW tensor.
TEST_TIME_FLIPS: dict[str, tuple[int, ...]] = {"none": (), "h": (3,), "v": (2,), "hv": (2, 3)}


CLICK_PREFIX = "clicks."  # tensor-name prefix of a separate click network in the weights file (DESIGN-NOTES 26)


def has_click_network(card: dict) -> bool:
    """Whether the card says its weights carry a separate click network (``clicks.`` tensors)."""
    inter = card.get("interactive")
    return isinstance(inter, dict) and inter.get("network") == "separate"


class ModelFileError(ValueError):
    """A model file is missing, corrupt, or does not match its card / the code."""

    def __init__(self, path: os.PathLike | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def card_stem(path: os.PathLike | str) -> Path:
    """The common stem of a model's two files, from the .json, the .safetensors or the stem."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".json", ".safetensors") else p


def card_id(card: dict, card_path: os.PathLike | str | None = None) -> str:
    """The id a model goes by everywhere: the card's ``model_id`` or ``id``, else the file's stem,
    made filesystem-safe (the store registers it under this id, the predictor reports it, cached
    predictions are filed under it)."""
    stem = card_stem(card_path).name if card_path is not None else ""
    return safe_model_id(str(card.get("model_id") or card.get("id") or stem))


def read_card_json(path: os.PathLike | str) -> tuple[dict, Path]:
    """(card, json path) of a card that parses as a JSON object; nothing else is checked (the
    store registers what it is given, read_card checks a card before its weights load)."""
    stem = card_stem(path)
    js = stem.with_name(stem.name + ".json")
    if not js.is_file():
        raise ModelFileError(js, Message(QT_TRANSLATE_NOOP("Errors", "model card not found (expected the .json beside the .safetensors)")))
    try:
        card = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(js, Message(QT_TRANSLATE_NOOP("Errors", "model card is not valid JSON ({error})"), error=e)) from None
    if not isinstance(card, dict):
        raise ModelFileError(js, "model card is not a JSON object")
    return card, js


def read_card(path: os.PathLike | str) -> tuple[dict, Path]:
    """Parse and check a card (given .json, .safetensors or stem); returns (card, json path)."""
    card, js = read_card_json(path)
    missing = [k for k in REQUIRED_KEYS if k not in card]
    if missing:
        raise ModelFileError(js, f"model card lacks {', '.join(missing)}")
    if card["format_version"] != FORMAT_VERSION:
        raise ModelFileError(js, f"unsupported format_version {card['format_version']!r} (this app reads {FORMAT_VERSION})")
    try:
        check_test_time_flips(card.get("test_time_flips", ["none"]))
    except ValueError as e:
        raise ModelFileError(js, f"test_time_flips: {e}") from None
    return card, js


def check_test_time_flips(flips: object) -> list[str]:
    """A non-empty list of distinct view names from TEST_TIME_FLIPS, else ValueError saying so."""
    if not isinstance(flips, list) or not flips or any(f not in TEST_TIME_FLIPS for f in flips) \
            or len(set(flips)) != len(flips):
        raise ValueError(f"give a non-empty list of distinct views from {sorted(TEST_TIME_FLIPS)}, got {flips!r}")
    return flips


def test_time_flips(card: dict) -> list[tuple[int, ...]]:
    """The flip views a card asks the predictor to average (read_card has checked them)."""
    return [TEST_TIME_FLIPS[f] for f in card.get("test_time_flips", ["none"])]
