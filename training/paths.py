"""Where things live: bundled resources (from source or frozen by PyInstaller) and user data; and
whether a path lies inside a folder (the import's CSV paths, the export's output)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR_NAME = "adf-viewer"


def _app_root() -> Path:
    """The repository root from source; the unpacked bundle (sys._MEIPASS) when frozen."""
    frozen = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and frozen:
        return Path(frozen)
    return Path(__file__).resolve().parents[1]


def resource_path(*parts: str) -> Path:
    """A path under ``resources/`` (e.g. ``resource_path("demo")``); works frozen and from source."""
    return _app_root().joinpath("resources", *parts)


def bundled_model_card() -> Path:
    """The model shipped with the app (``resources/models/adf-tiny.json`` + ``.safetensors``).

    Every workspace without an active model gets it (DESIGN.md: a workspace always has an active
    model); the file name stays while each release carries a new id in its card.
    """
    return resource_path("models", "adf-tiny.json")


def user_data_dir() -> Path:
    """Per-user data folder: $ADF_VIEWER_DATA, else the platform's usual place.

    Linux: $XDG_DATA_HOME/adf-viewer or ~/.local/share/adf-viewer; Windows: %LOCALAPPDATA%\\adf-viewer;
    macOS: ~/Library/Application Support/adf-viewer. Not created here.
    """
    env = os.environ.get("ADF_VIEWER_DATA")
    if env:
        return Path(env).expanduser()
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return (Path(base) if base else Path.home() / "AppData" / "Local") / APP_DIR_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_DIR_NAME
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / APP_DIR_NAME


def default_demo_workspace() -> Path:
    """Where the demo workspace is built on first run."""
    return user_data_dir() / "demo-workspace"


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` lies inside ``root`` once both are resolved (links and ``..`` followed); a
    path that cannot be resolved is not."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False
