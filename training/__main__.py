"""``python -m training <command> ...``: import | train | evaluate | evaluate-clicks | export |
attach-clicks | blend.

Each command's module is imported only when that command runs (train/evaluate/export pull in
torch; import does not), so a missing or broken module gives a one-line error, not a traceback.
Set ADF_DEBUG=1 to see tracebacks.
"""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

COMMANDS = {
    "import": ("training.importer", "copy WLI/NBI pairs (folders, CSV) into a workspace"),
    "train": ("training.train", "train or fine-tune the ADF model"),
    "evaluate": ("training.evaluate", "evaluate a model (Dice, IoU, ablations)"),
    "evaluate-clicks": ("training.evaluate_clicks", "a robot clinician corrects cases with clicks (NoC@85/90)"),
    "export": ("training.export", "export a workspace's approved masks / a dataset"),
    "attach-clicks": ("training.attach_clicks", "one model from an automatic network and a click network"),
    "blend": ("training.blend", "parent + share x (fine-tuned - parent), as a model of its own"),
}


def _usage() -> str:
    lines = ["usage: python -m training <command> [options]", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "python -m training <command> --help for a command's options"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to ``<module>.main(argv)``; returns its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Before any command imports torch: passive OpenMP waiting (a busy machine otherwise slows
    # training many times over), and a lower priority when the Train dialog asked for it.
    from model.cpu_policy import apply_low_priority_request, apply_thread_policy

    apply_thread_policy(count=False)
    apply_low_priority_request()
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd not in COMMANDS:
        print(f"error: unknown command {cmd!r} (expected one of: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module_name = COMMANDS[cmd][0]
    debug = bool(os.environ.get("ADF_DEBUG"))
    try:
        module = importlib.import_module(module_name)
        entry = module.main
    except (ImportError, AttributeError) as exc:
        if debug:
            raise
        print(f"error: `python -m training {cmd}` is not available ({module_name}: {exc})", file=sys.stderr)
        return 2
    try:
        code = entry(rest)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse --help / usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except Exception as exc:  # noqa: BLE001 - fatal errors are one line, no traceback
        if debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: {type(exc).__name__}: {msg}" if msg else f"error: {type(exc).__name__}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
