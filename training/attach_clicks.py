"""``python -m training attach-clicks``: one model from an automatic network and a click network.

Why (DESIGN-NOTES 26): training one network for both modes made every gain in clicks cost the
automatic mode on a recording it never saw (r4i: seq2 Dice 0.712 -> 0.603; with distillation,
r5i: 0.674). A click network trained beside a fixed automatic one (``train --first-masks-from
AUTO``: its simulated clicks start from AUTO's masks) can be as good at clicks as it gets while
the automatic output stays bit-identical. This command writes the model the app loads: the
automatic network's weights and card (so its measured figures still hold), the click network
under ``clicks.`` in the same weights file, and the card's ``interactive`` taken from the click
network's card with ``"network": "separate"`` and where it came from.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training attach-clicks", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the automatic model (.json card or stem); its card is kept")
    p.add_argument("--clicks", required=True, help="the model whose network answers clicks (trained with clicks)")
    p.add_argument("--out", required=True, help="output stem (path without extension), e.g. runs/rel/adf-tiny")
    p.add_argument("--id", required=True, help="the new model's id")
    p.add_argument("--replaces", default=None,
                   help="the id of the bundled model this one replaces (a bundled release; default: none)")
    p.add_argument("--note", action="append", default=[], help="a line for the card's release_notes")
    return p


def attach(auto_path: str, clicks_path: str, out: str, model_id: str, command: str,
           notes: list[str] | None = None, replaces: str | None = None) -> Path:
    """Write the combined model; returns its card's path. ValueError when the two do not fit."""
    from model.card import load_models, save_model
    from training.model_cli import derived_card

    net, _, card = load_models(auto_path)
    own, separate, ccard = load_models(clicks_path)
    click_net = separate if separate is not None else own
    inter = ccard.get("interactive")
    if not isinstance(inter, dict) or not net.cfg.click_chans:
        raise ValueError(f"{clicks_path}: the click model's card says it was not trained with clicks")
    if click_net.cfg != net.cfg:
        raise ValueError("the two networks differ in their config (preset, size or inputs); a click network "
                         "must have the automatic network's config")
    new = derived_card(card, model_id)
    new["parent"] = {"id": card.get("id"), "sha256": card.get("sha256"), "path": str(auto_path)}
    metrics = dict(card.get("metrics") or {})
    if "val_dice" in metrics:  # the parent's automatic network is this one: same cases, same figure
        metrics["parent_val_dice"] = metrics["val_dice"]
    new["metrics"] = metrics
    new["interactive"] = {**{k: v for k, v in inter.items() if k not in ("network", "click_network")},
                          "network": "separate",
                          "click_network": {"id": ccard.get("id"), "sha256": ccard.get("sha256"),
                                            "command": ccard.get("command"),
                                            "commands": ccard.get("commands"),
                                            "parent": ccard.get("parent"),
                                            "stored_dtype": "float16",  # computes in float32 (model/card.py)
                                            **({"from_separate": True} if separate is not None else {})}}
    # "commands" stays the automatic network's training; how this model was put together:
    new["release_command"] = command
    if replaces:
        new["replaces"] = replaces
    if notes:
        new["release_notes"] = [*(card.get("release_notes") or []), *notes]
    return save_model(net, net.cfg, out, new, click_net=click_net)


def main(argv: list[str] | None = None) -> int:
    from training.model_cli import command_line, report_written_model

    args = build_parser().parse_args(argv)
    command = command_line("attach-clicks", argv)
    return report_written_model(lambda: attach(args.model, args.clicks, args.out, args.id, command, args.note, args.replaces), args.id)


if __name__ == "__main__":
    raise SystemExit(main())
