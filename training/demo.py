"""The demo workspace: built on first run from the pairs bundled in resources/demo/.

Why a separate module: ``make run`` must open the app on something useful on a fresh machine
without any data, and the self-test needs the same thing in a temporary folder.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path

from model.card_file import card_id, read_card_json
from training.paths import resource_path
from training.store import Workspace, WorkspaceError, is_workspace

log = logging.getLogger(__name__)

BUNDLED_MODEL = "adf-tiny.json"


def _register_bundled_model(ws: Workspace) -> None:
    """Register resources/models/adf-tiny.json (when it exists) and decide whether it goes active.

    A fresh demo gets it active. An existing demo gets a newer bundled release registered too
    (app updates ship new weights under a new id), and activated only if the active model is
    the release it was fine-tuned from (its card's parent) or the release it says it replaces
    (its card's ``replaces``, when it was built through intermediate runs): a model the user trained or chose
    in the workspace stays active. Activating re-predicts lazily; human revisions are untouched.
    """
    card_path = resource_path("models", BUNDLED_MODEL)
    if not card_path.is_file() or not card_path.with_suffix(".safetensors").is_file():
        log.info("no bundled model at %s; demo workspace has no model", card_path)
        return
    try:
        card, _ = read_card_json(card_path)
        bundled_id = card_id(card, card_path)
        parent = card.get("parent") if isinstance(card.get("parent"), dict) else {}
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("could not read the bundled model card %s: %s", card_path, exc)
        return
    models = ws.models()
    active = next((m["id"] for m in models if m["active"]), None)
    if any(m["id"] == bundled_id for m in models) and active is not None:
        return
    # a release built through intermediate runs names the bundled release it supersedes ("replaces")
    activate = active is None or active in (parent.get("id"), card.get("replaces"))
    try:
        ws.register_model(card_path, activate=activate)
        if activate and active is not None:
            log.info("demo workspace: bundled model %s replaces its parent %s as active", bundled_id, active)
    except (WorkspaceError, KeyError) as exc:
        log.warning("could not register the bundled model %s: %s", card_path, exc)


def build_demo_workspace(dest: os.PathLike | str, source: os.PathLike | str | None = None) -> Path:
    """Import the bundled demo pairs into a workspace at ``dest`` and return ``dest``.

    Idempotent: an existing workspace at ``dest`` is returned as it is (the bundled model is
    registered if it appeared since). A fresh one is built in a temporary sibling folder and
    renamed into place, so an interrupted first run never leaves a half-built demo behind. NBI is
    marked synthetic. The public ground-truth masks beside the demo images are NOT imported: the
    demo is there to show the model's prediction and the correction tools, and a case with an
    imported mask would open on that mask instead of the prediction.
    """
    dest = Path(dest).expanduser()
    if is_workspace(dest):
        with Workspace.open(dest) as ws:
            if not ws.readonly:
                _register_bundled_model(ws)
        return dest
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise WorkspaceError(f"{dest} exists and is not an ADF Viewer workspace; not building the demo there")
        dest.rmdir()
    src = Path(source) if source is not None else resource_path("demo")
    if not src.is_dir():
        raise WorkspaceError(f"demo data not found at {src}")
    from training.importer import import_sources

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.building-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        with Workspace.open(tmp, create=True) as ws:
            summary = import_sources(ws, [src], nbi_synthetic=True, masks=False)
            if summary["skipped"]:
                log.warning("demo import skipped %d file(s): %s", len(summary["skipped"]), summary["skipped"][:3])
            if summary["imported"] == 0:
                raise WorkspaceError(f"no demo pairs could be imported from {src}")
            ws.log_event("demo_built", None, {"source": str(src), "imported": summary["imported"]})
            _register_bundled_model(ws)
        try:
            os.rename(tmp, dest)
        except OSError:
            if is_workspace(dest):  # another process built it meanwhile: use theirs
                return dest
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
