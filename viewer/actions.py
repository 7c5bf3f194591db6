"""One table of the window's actions: the menus, the keyboard shortcuts and the F1 list come from it.

Why: the F1 list used to be written by hand beside the menus and drifted from them (Ctrl+N/O/I/E/Q/T,
the zoom keys and Alt+Up/Down were missing). Here each action is declared once, with its menu,
its shortcuts and its help line; ``MainWindow`` builds menus and shortcuts from ``ACTIONS`` and
``ShortcutsDialog`` lists ``help_sections()``. Only pure data lives here (no widgets), so the
table can be read without a window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from viewer.tools import (
    BRUSH,
    CLICK,
    ERASER,
    LASSO,
    LASSO_ERASE,
    NAVIGATE,
    POLYGON,
    POLYGON_ERASE,
    PUSH_PULL,
    TOOL_LABELS,
)

MENUS = ("File", "Edit", "View", "Case", "Model", "Help")


@dataclass(frozen=True)
class ActionSpec:
    """One menu action: ``id`` names its slot in the window; shortcuts are Qt portable key texts."""

    id: str
    text: str
    menu: str
    shortcuts: tuple[str, ...] = ()
    help: str = ""                 # the F1 line; defaults to the menu text without its ellipsis
    checkable: bool = False
    group: str = ""                # exclusive group ("tools", "layouts")
    separator_before: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)  # arguments of a mask operation

    @property
    def help_text(self) -> str:
        return self.help or self.text.rstrip("…").strip()


TOOL_SHORTCUTS = {
    NAVIGATE: "H", BRUSH: "B", ERASER: "E", POLYGON: "P", POLYGON_ERASE: "Shift+P", LASSO: "L",
    LASSO_ERASE: "Shift+L", PUSH_PULL: "U", CLICK: "C",
}
TOOL_HELP = {NAVIGATE: "Navigate (left-drag pans)", PUSH_PULL: "Push / pull the boundary",
             CLICK: "Click to correct: left click = tumour, right or Shift+click = not tumour; the model "
                    "redraws the mask (Ctrl+Z removes the last click)"}
# (name, label, shortcut, keyword arguments of EditController.apply_operation)
OPERATIONS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("smooth", "Smooth boundary", "Alt+S", {}),
    ("grow", "Grow 2 px", "Alt+=", {"pixels": 2}),
    ("shrink", "Shrink 2 px", "Alt+-", {"pixels": 2}),
    ("fill_holes", "Fill holes", "Alt+H", {}),
    ("remove_islands", "Remove islands < 50 px", "Alt+I", {"min_pixels": 50}),
    ("refine", "Refine (GrabCut)", "G", {}),
)
LAYOUT_LABELS = {"side_by_side": "Side by side", "wli_only": "WLI only", "nbi_only": "NBI only",
                 "swapped": "Swapped (NBI | WLI)"}
TUMOUR_FREE_NOTE = "approved as tumour-free"


def _tool_specs() -> list[ActionSpec]:
    return [ActionSpec(f"tool.{tool}", TOOL_LABELS[tool], "Edit", (key,), TOOL_HELP.get(tool, ""),
                       checkable=True, group="tools", separator_before=i == 0)
            for i, (tool, key) in enumerate(TOOL_SHORTCUTS.items())]


def _operation_specs() -> list[ActionSpec]:
    return [ActionSpec(f"op.{name}", label, "Edit", (key,), separator_before=i == 0, kwargs=kwargs)
            for i, (name, label, key, kwargs) in enumerate(OPERATIONS)]


def _layout_specs() -> list[ActionSpec]:
    return [ActionSpec(f"layout.{mode}", label, "View", (f"F{5 + i}",), f"Layout: {label}", checkable=True,
                       group="layouts", separator_before=i == 0)
            for i, (mode, label) in enumerate(LAYOUT_LABELS.items())]


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("new_workspace", "New workspace…", "File", ("Ctrl+N",)),
    ActionSpec("open_workspace", "Open workspace…", "File", ("Ctrl+O",)),
    ActionSpec("import", "Import pairs…", "File", ("Ctrl+I",)),
    ActionSpec("import_video", "Import video…", "File", ("Ctrl+Shift+I",),
               help="Import endoscopy videos (WLI/NBI frames found, paired and registered)"),
    ActionSpec("export", "Export dataset…", "File", ("Ctrl+E",)),
    ActionSpec("save", "Save now", "File", ("Ctrl+S",), "Save now (autosave runs 2 s after the last edit)",
               separator_before=True),
    ActionSpec("quit", "Quit", "File", ("Ctrl+Q",), separator_before=True),

    ActionSpec("undo", "Undo", "Edit", ("Ctrl+Z",), "Undo stroke"),
    ActionSpec("redo", "Redo", "Edit", ("Ctrl+Shift+Z", "Ctrl+Y")),
    *_tool_specs(),
    ActionSpec("brush_larger", "Larger brush", "Edit", ("]",), separator_before=True),
    ActionSpec("brush_smaller", "Smaller brush", "Edit", ("[",)),
    *_operation_specs(),

    ActionSpec("fit", "Fit", "View", ("Home", "Ctrl+0"), "Fit the images to the view"),
    ActionSpec("actual_size", "Actual pixels (1:1)", "View", ("Ctrl+1",)),
    ActionSpec("zoom_in", "Zoom in", "View", ("Ctrl+=", "Ctrl++")),
    ActionSpec("zoom_out", "Zoom out", "View", ("Ctrl+-",)),
    *_layout_specs(),
    ActionSpec("toggle_overlay", "Toggle overlay", "View", ("O",), "Overlay on / off", separator_before=True),
    ActionSpec("overlay_mode", "Next overlay mode", "View", ("M",), "Overlay mode: outline, filled, heat map"),

    ActionSpec("next_case", "Next case", "Case", ("PgDown", "Alt+Down")),
    ActionSpec("previous_case", "Previous case", "Case", ("PgUp", "Alt+Up")),
    ActionSpec("accept", "Accept and next", "Case", ("A", "Return", "Enter"),
               "Accept the mask on screen and go to the next case to review", separator_before=True),
    ActionSpec("approve_tumour_free", "Approve as tumour-free", "Case", ("Ctrl+Shift+A",),
               "Approve the case as showing no tumour (saves an empty mask) and go to the next case"),
    ActionSpec("exclude", "Exclude…", "Case", ("X",), "Exclude the case with a reason"),
    ActionSpec("predict", "Predict again", "Case", ("Ctrl+R",), separator_before=True),
    ActionSpec("preannotate", "Pre-annotate all…", "Case", ("Ctrl+Shift+R",)),
    ActionSpec("agreement", "Agreement summary…", "Case", ("Ctrl+Shift+D",)),

    ActionSpec("train", "Train a new version…", "Model", ("Ctrl+T",)),
    ActionSpec("model_versions", "Model versions…", "Model"),

    ActionSpec("shortcuts", "Keyboard shortcuts", "Help", ("F1",), "This list of keyboard shortcuts"),
    ActionSpec("about", "About ADF Viewer", "Help"),
)

# Keys and gestures that are not menu actions: they act inside the image views only.
GESTURES: tuple[tuple[str, str], ...] = (
    ("Wheel", "Zoom at the cursor"),
    ("Middle / right drag", "Pan (with the click tool a right click marks \"not tumour\": middle drag pans)"),
    ("Ctrl+wheel", "Brush size"),
    ("Enter / Esc / Backspace", "While drawing a polygon: close it / cancel it / remove the last point"),
)
GESTURES_SECTION = "Mouse, and keys while drawing"


def action(action_id: str) -> ActionSpec:
    """The spec of one action (KeyError for an unknown id)."""
    for spec in ACTIONS:
        if spec.id == action_id:
            return spec
    raise KeyError(action_id)


def help_sections() -> list[tuple[str, list[tuple[tuple[str, ...], str, str | None]]]]:
    """F1's rows by section: (title, [(shortcuts, help line, action id or None for a gesture)])."""
    sections: list[tuple[str, list[tuple[tuple[str, ...], str, str | None]]]] = []
    for menu in MENUS:
        rows = [(s.shortcuts, s.help_text, s.id) for s in ACTIONS if s.menu == menu and s.shortcuts]
        if rows:
            sections.append((menu, rows))
    sections.append((GESTURES_SECTION, [((keys,), text, None) for keys, text in GESTURES]))
    return sections
