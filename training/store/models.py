"""The workspace's model registry: ``models/<id>.safetensors`` + ``<id>.json``, one marked active.

A registered model is a copy named by its id (model.card_file.card_id; the copied card's
``weights`` field names the copy, DESIGN-NOTES.md 3). Registering the same files again is a no-op,
a different model under a taken id is refused (it would change what earlier predictions and
revisions mean). A workspace always has an active model: ``ensure_active_model`` registers the
bundled one when none is (DESIGN.md).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

from model.card_file import ModelFileError, card_id, read_card_json
from training.imageio import fsync_dir, sha256_file, temp_name, write_bytes_atomic
from training.store.records import WorkspaceError
from training.timestamps import utc_now

registered_model_id = card_id  # the id a workspace registers a model card under (model/card_file.py)


class ModelsMixin:
    """Workspace's model registry (uses its root, readonly, _read, _write, _event)."""

    def register_model(self, json_card_path: os.PathLike | str, activate: bool = False) -> str:
        """Copy a model (``<stem>.json`` card + ``<stem>.safetensors``) into ``models/``; returns its id.

        The id is the card's ``model_id`` or ``id`` (else the file stem), made filesystem-safe.
        Registering the same files again is a no-op; a different model with a taken id is refused.
        """
        card_path = Path(json_card_path)
        if card_path.suffix.lower() != ".json":
            card_path = card_path.with_suffix(".json")
        weights = card_path.with_suffix(".safetensors")
        try:
            card, _ = read_card_json(card_path)
        except ModelFileError as exc:
            raise WorkspaceError(str(exc)) from None
        if not weights.is_file():
            raise WorkspaceError(f"model weights {weights} not found")
        model_id = card_id(card, card_path)
        wsha = sha256_file(weights)
        with self._write() as db:
            row = db.execute("SELECT sha256 FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is not None:
                if row[0] != wsha:
                    raise WorkspaceError(f"a different model with id {model_id!r} is already registered")
            else:
                dest = self.root / "models"
                try:
                    dest.mkdir(exist_ok=True)
                    tmp = temp_name(dest / f"{model_id}.safetensors")
                    shutil.copyfile(weights, tmp)
                    with open(tmp, "rb+") as fh:
                        os.fsync(fh.fileno())
                    os.replace(tmp, dest / f"{model_id}.safetensors")
                    # The copy is named after the id, so the card must name that file (model.card
                    # loads the weights the card names, beside the card).
                    card = {**card, "weights": f"{model_id}.safetensors"}
                    write_bytes_atomic(dest / f"{model_id}.json", json.dumps(card, indent=2).encode("utf-8"))
                    fsync_dir(dest)
                except OSError as exc:
                    with contextlib.suppress(OSError, UnboundLocalError):
                        tmp.unlink()
                    raise WorkspaceError(f"cannot copy model into {dest}: {exc.strerror or exc}") from None
                db.execute("INSERT INTO models (id, card, path, sha256, active, created_at) VALUES (?,?,?,?,0,?)",
                           (model_id, json.dumps(card), f"models/{model_id}.json", wsha, utc_now()))
                self._event(db, "register_model", None, {"model_id": model_id, "sha256": wsha,
                                                         "source": str(card_path)})
            if activate:
                self._activate(db, model_id)
        return model_id

    def _activate(self, db: sqlite3.Connection, model_id: str) -> None:
        if db.execute("SELECT 1 FROM models WHERE id = ?", (model_id,)).fetchone() is None:
            raise KeyError(f"no model {model_id!r} registered")
        db.execute("UPDATE models SET active = (id = ?)", (model_id,))
        self._event(db, "activate_model", None, {"model_id": model_id})

    def set_active_model(self, model_id: str) -> None:
        """Mark one registered model active (the others inactive); logged."""
        with self._write() as db:
            self._activate(db, model_id)

    def models(self) -> list[dict]:
        """Registered models: {"id", "card", "path" (the .json), "sha256", "active", "created_at"}."""
        out = []
        for r in self._read("SELECT * FROM models ORDER BY created_at, id"):
            r["card"] = json.loads(r["card"])
            r["path"] = self.root / r["path"]
            r["active"] = bool(r["active"])
            out.append(r)
        return out

    def active_model_path(self) -> Path | None:
        """The active model's card (.json) path (its .safetensors lies beside it), or None."""
        rows = self._read("SELECT path FROM models WHERE active = 1 LIMIT 1")
        return self.root / rows[0]["path"] if rows else None

    def active_model_id(self) -> str | None:
        """The id of the active model, or None when no model is active."""
        rows = self._read("SELECT id FROM models WHERE active = 1 LIMIT 1")
        return str(rows[0]["id"]) if rows else None

    def ensure_active_model(self, card_path: os.PathLike | str | None = None) -> str | None:
        """The active model's id; when none is active, register ``card_path`` and activate it first.

        Why: DESIGN.md says a workspace always has an active model, so a clinician's new workspace
        predicts at once. ``card_path`` defaults to the bundled model (training.paths). A model that
        is already active is never replaced, also when another process activates one meanwhile
        (checked again inside the write). A read-only workspace is left as it is: None when it has
        no active model (the caller then predicts with the bundled files without registering).
        Raises WorkspaceError when the model cannot be registered (missing or unreadable files).
        """
        active = self.active_model_id()
        if active is not None or self.readonly:
            return active
        if card_path is None:
            from training.paths import bundled_model_card

            card_path = bundled_model_card()
        model_id = self.register_model(card_path)
        with self._write() as db:
            row = db.execute("SELECT id FROM models WHERE active = 1 LIMIT 1").fetchone()
            if row is not None:
                return str(row[0])
            self._activate(db, model_id)
        return model_id
