"""What the commands that write a model file (``attach-clicks``, ``blend``) share: the card a new
model inherits from the one it is made from, the command line recorded in it, and one JSON line
on stdout, the model's card or the error."""
from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# fields that describe one weights file, not the network's history: a derived model gets its own
FILE_FIELDS = ("id", "created", "sha256", "weights", "params", "replaces")


def derived_card(card: dict[str, Any], model_id: str) -> dict[str, Any]:
    """The card of a model made from ``card``'s model: its history and settings, a new id, and none
    of the fields of its file (``save_model`` writes those for the new file)."""
    return {**{k: v for k, v in card.items() if k not in FILE_FIELDS}, "id": model_id}


def command_line(name: str, argv: list[str] | None) -> str:
    """``python -m training <name> <args>`` as it was typed, for the card (how the file was made)."""
    return f"python -m training {name} " + shlex.join(sys.argv[1:] if argv is None else argv)


def report_written_model(write: Callable[[], Path], model_id: str) -> int:
    """Run ``write``; print the written card (exit 0) or the error (stderr and JSON, exit 2)."""
    try:
        js = write()
    except (OSError, ValueError) as e:  # ModelFileError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    print(json.dumps({"model": str(js), "id": model_id}), flush=True)
    return 0
