"""What the commands that write a model file (``attach-clicks``, ``blend``) share: the command
line recorded in the card, and one JSON line on stdout, the model's card or the error."""
from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path


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
