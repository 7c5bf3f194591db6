"""Model files: weights in safetensors + a JSON model card beside them.

<stem>.safetensors  the state dict (safetensors: a JSON header + raw tensors; never pickle)
<stem>.json         the card: id, preset, full config, input size, normalisation, training
                    data and command, parent, metrics, sha256 of the weights file, created,
                    format version.

Loading trusts nothing: the card must parse and have every required key, the weights file
must hash to the card's sha256, parse as safetensors, and carry exactly the tensor names and
shapes of a freshly built network for the card's config.  Any problem raises ModelFileError
with one line naming the file and what is wrong. Reading and checking the card itself needs no
torch: model/card_file.py (re-exported here).

A model may carry a second network of the same config for its click mode (DESIGN-NOTES 26): its
tensors sit in the same file under ``clicks.`` and the card's ``interactive.network`` says
"separate". One file, one hash: importing, copying and checking a model stay as they were. The
click network is stored in float16 (the file stays under 40 MB) and computes in float32.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path

import torch

from model.adf import ADFNet, count_params
from model.atomic import write_bytes_atomic
from model.card_file import (
    CLICK_PREFIX,
    FORMAT_VERSION,
    REQUIRED_KEYS,
    TEST_TIME_FLIPS,
    ModelFileError,
    card_id,
    card_stem,
    check_test_time_flips,
    has_click_network,
    read_card,
    read_card_json,
    test_time_flips,
)
from model.config import ADFConfig
from model.i18n_marks import QT_TRANSLATE_NOOP, Message

# the card's format, reading and id are torch-free in model/card_file.py; re-exported here
__all__ = ["FORMAT_VERSION", "REQUIRED_KEYS", "TEST_TIME_FLIPS", "ModelFileError", "card_id", "card_stem",
           "check_test_time_flips", "read_card", "read_card_json", "test_time_flips", "save_model", "load_model",
           "load_models", "CLICK_PREFIX", "has_click_network"]


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(net: ADFNet, cfg: ADFConfig, out_path_without_ext: os.PathLike | str, card: dict,
               click_net: ADFNet | None = None, float16: bool = False) -> Path:
    """Write <stem>.safetensors and <stem>.json atomically; returns the .json path.

    `card` supplies id (default: the stem's name), training_data, command, parent, metrics and
    any extra fields; the config, hash, sizes and dates are filled in here. ``click_net``: a
    separate network for the click mode, stored beside ``net`` (the card's ``interactive`` must
    then say ``"network": "separate"``). ``float16``: the automatic network stored in float16 too
    (half the file; it computes in float32): for reference models kept in the repository, not releases.
    """
    from safetensors.torch import save

    if (click_net is not None) != has_click_network(card):
        raise ValueError("a separate click network needs the card's interactive.network = 'separate', and back")
    stem = card_stem(out_path_without_ext)
    state = {k: (v.half() if float16 and v.is_floating_point() else v).detach().to("cpu").contiguous()
             for k, v in net.state_dict().items()}
    if click_net is not None:
        # float16 on disk (the automatic network stays float32, bit for bit): the two networks fit
        # one file of ~31 MB instead of 42; loading widens them back to float32 (compute is float32)
        state.update({CLICK_PREFIX + k: (v.half() if v.is_floating_point() else v).detach().to("cpu").contiguous()
                      for k, v in click_net.state_dict().items()})
    data = save(state, metadata={"format": "adf-viewer", "format_version": str(FORMAT_VERSION)})
    weights = stem.with_name(stem.name + ".safetensors")
    full = {
        "format_version": FORMAT_VERSION,
        "id": card.get("id", stem.name),
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "input_size": cfg.input_size,
        "normalisation": {"mean": list(cfg.mean), "std": list(cfg.std)},
        "training_data": card.get("training_data"),
        "command": card.get("command"),
        "parent": card.get("parent"),
        "metrics": card.get("metrics", {}),
        "params": count_params(net) + (count_params(click_net) if click_net is not None else 0),
        "weights": weights.name,
        "sha256": _sha256_bytes(data),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if float16:
        full["stored_dtype"] = "float16"  # the automatic network's; loading widens it to float32
    for k, v in card.items():
        if k != "stored_dtype":  # a card derived from a float16 model's says nothing of this file
            full.setdefault(k, v)
    write_bytes_atomic(weights, data)
    js = stem.with_name(stem.name + ".json")
    write_bytes_atomic(js, (json.dumps(full, indent=2, sort_keys=False) + "\n").encode())
    return js


def _widened(t: torch.Tensor) -> torch.Tensor:
    """A stored tensor as the network computes it: float16 on disk (the click network; a reference
    model saved with ``float16``) -> float32; float32 comes back as it is, not copied."""
    return t.float() if t.is_floating_point() else t


def load_model(path: os.PathLike | str, map_location: str | torch.device = "cpu") -> tuple[ADFNet, dict]:
    """Load (net in eval mode, card) from a .json, a .safetensors or their common stem: the
    automatic network (a separate click network, if any, is checked and left out)."""
    net, _, card = load_models(path, map_location)
    return net, card


def load_models(path: os.PathLike | str,
                map_location: str | torch.device = "cpu") -> tuple[ADFNet, ADFNet | None, dict]:
    """Load (automatic net, separate click net or None, card), both in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    card, js = read_card(path)
    try:
        cfg = ADFConfig.from_dict(card["config"])
    except (TypeError, ValueError) as e:
        raise ModelFileError(js, f"bad config: {e}") from None
    wpath = js.parent / str(card["weights"])
    if Path(card["weights"]).name != card["weights"]:
        raise ModelFileError(js, f"weights must be a file name beside the card, got {card['weights']!r}")
    try:
        data = wpath.read_bytes()
    except OSError as e:
        raise ModelFileError(wpath, Message(QT_TRANSLATE_NOOP("Errors", "cannot read weights ({error})"), error=e.strerror or e)) from None
    digest = _sha256_bytes(data)
    if digest != card["sha256"]:
        raise ModelFileError(
            wpath, Message(QT_TRANSLATE_NOOP("Errors", "sha256 mismatch: file has {file}..., card says {card}... "
                                                       "(corrupt or replaced)"),
                           file=digest[:12], card=str(card["sha256"])[:12]))
    try:
        state = load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelFileError(wpath, Message(QT_TRANSLATE_NOOP("Errors", "not a valid safetensors file ({error})"), error=first)) from None
    net = ADFNet(cfg, init_weights=False)  # every weight comes from the file (checked below)
    click_net = ADFNet(cfg, init_weights=False) if has_click_network(card) else None
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    if click_net is not None:
        want.update({CLICK_PREFIX + k: tuple(v.shape) for k, v in click_net.state_dict().items()})
    have = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    if missing or extra:
        raise ModelFileError(
            wpath, f"tensor names do not match the config: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    bad = [k for k in want if want[k] != have[k]]
    if bad:
        k = bad[0]
        raise ModelFileError(wpath, f"tensor {k} has shape {list(have[k])}, config needs {list(want[k])}")
    if click_net is not None:
        n = len(CLICK_PREFIX)
        click_net.load_state_dict({k[n:]: _widened(state.pop(k)) for k in list(state) if k.startswith(CLICK_PREFIX)},
                                  strict=True, assign=True)
        click_net.to(map_location).eval()
    state = {k: _widened(v) for k, v in state.items()}
    net.load_state_dict(state, strict=True, assign=True)  # take the loaded tensors, no second copy
    net.to(map_location).eval()
    return net, click_net, card
