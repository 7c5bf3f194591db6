"""Filesystem-safe ids: the one rule that turns a file stem, a patient's label or a model card's
id into a name that is safe as a file or folder name on every OS the app runs on.

It lives in ``model/`` because the id of a model card (model.card_file.card_id) uses it and model/
imports nothing from training/; the store re-exports it for case ids. No torch, no numpy, no Qt.
"""
from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_id(name: str, max_len: int = 48, default: str = "case") -> str:
    """A short filesystem-safe id from any string (never trusted as a path as it was given)."""
    s = _UNSAFE.sub("_", str(name)).strip("._-")
    s = re.sub(r"\.{2,}", ".", re.sub(r"_+", "_", s))[:max_len].strip("._-")
    if not s:
        s = default
    if s.split(".")[0].lower() in _WINDOWS_RESERVED:
        s = f"_{s}"
    return s


def safe_model_id(name: str) -> str:
    """A model's id made filesystem-safe (up to 96 characters, "model" when nothing is left): the
    one rule behind model.card_file.card_id and the prediction cache's file names."""
    return safe_id(name, 96, "model")
