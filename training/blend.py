"""``python -m training blend``: parent + share x (fine-tuned - parent), as a model of its own.

Why: the trainer releases a weight-space blend when it fine-tunes (``--parent-blend``, WiSE-FT),
but the share it can choose from inside one run is judged on that run's own validation. Issue 15's
r8a gained on the recording it never saw and lost on Kvasir; which share to keep had to be chosen
after the run, on data of both folds (docs/MODEL.md). This writes that blend as a model whose card
says what it is: the fine-tuned run's card (its training commands), the blend's parent and share,
and the command that made it.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training blend", description=__doc__.splitlines()[0])
    p.add_argument("--parent", required=True, help="the model the fine-tune started from (.json card or stem)")
    p.add_argument("--model", required=True, help="the fine-tuned model; its card is kept")
    p.add_argument("--share", required=True, type=float, help="0 = the parent, 1 = the fine-tuned model")
    p.add_argument("--out", required=True, help="output stem (path without extension)")
    p.add_argument("--id", required=True, help="the new model's id")
    p.add_argument("--float16", action="store_true",
                   help="store the weights in float16 (half the file, computed in float32): a reference model "
                        "kept in the repository, e.g. a --share 1 copy of a fold's base model")
    p.add_argument("--operating-point-of", default=None, metavar="MODEL",
                   help="take MODEL's operating point (inference size, upsampling, decision threshold, test-time "
                        "views) instead of the fine-tuned model's: a fold's twin measured, and fine-tuned, at the "
                        "release's fixed point")
    return p


def blend_models(parent_path: str, model_path: str, share: float, out: str, model_id: str, command: str,
                 float16: bool = False, operating_point_of: str | None = None) -> Path:
    """Write the blended model; returns its card's path. ValueError when the two do not fit."""
    from model.card import load_model, read_card, save_model
    from training.model_cli import derived_card
    from training.release import blend_with_parent
    from training.train_args import OPERATING_POINT_KEYS

    if not 0.0 <= share <= 1.0:
        raise ValueError(f"--share must be within [0, 1], got {share}")
    parent, parent_card = load_model(parent_path)
    net, card = load_model(model_path)
    if parent.cfg != net.cfg:
        raise ValueError("the two networks differ in their config (preset, size or inputs); only a model and "
                         "the parent it was fine-tuned from can be blended")
    blend_with_parent(net, parent.state_dict(), share)
    new = derived_card(card, model_id)
    new["blend"] = {"share": share, "parent": {"id": parent_card.get("id"), "sha256": parent_card.get("sha256"),
                                               "path": str(parent_path)},
                    "fine_tuned": {"id": card.get("id"), "sha256": card.get("sha256"), "path": str(model_path)},
                    "command": command}
    if operating_point_of:
        ocard, _ = read_card(operating_point_of)
        keys = (*OPERATING_POINT_KEYS, "test_time_flips")
        for k in keys:
            new.pop(k, None)
        new.update({k: ocard[k] for k in keys if ocard.get(k) is not None})
        new["operating_point_from"] = {"id": ocard.get("id"), "sha256": ocard.get("sha256"),
                                       "path": str(operating_point_of)}
    return save_model(net, net.cfg, out, new, float16=float16)


def main(argv: list[str] | None = None) -> int:
    from training.model_cli import command_line, report_written_model

    args = build_parser().parse_args(argv)
    command = command_line("blend", argv)
    return report_written_model(lambda: blend_models(args.parent, args.model, args.share, args.out, args.id, command,
                                                           args.float16, args.operating_point_of), args.id)


if __name__ == "__main__":
    raise SystemExit(main())
