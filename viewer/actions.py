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

from model.i18n_marks import QT_TRANSLATE_NOOP
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
# the menu names as lupdate sees them: the F1 section titles, and the menu bar's titles with their
# Alt mnemonic ("&File"; a translation places its own, e.g. "文件(&F)"). MENUS stays the English key.
MENU_TITLES = {
    "File": (QT_TRANSLATE_NOOP("Menus", "File"), QT_TRANSLATE_NOOP("Menus", "&File")),
    "Edit": (QT_TRANSLATE_NOOP("Menus", "Edit"), QT_TRANSLATE_NOOP("Menus", "&Edit")),
    "View": (QT_TRANSLATE_NOOP("Menus", "View"), QT_TRANSLATE_NOOP("Menus", "&View")),
    "Case": (QT_TRANSLATE_NOOP("Menus", "Case"), QT_TRANSLATE_NOOP("Menus", "&Case")),
    "Model": (QT_TRANSLATE_NOOP("Menus", "Model"), QT_TRANSLATE_NOOP("Menus", "&Model")),
    "Help": (QT_TRANSLATE_NOOP("Menus", "Help"), QT_TRANSLATE_NOOP("Menus", "&Help")),
}


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

    def tr_text(self) -> str:
        """The menu text in the UI language (the table holds the English source)."""
        return translated(self.text)

    def tr_help(self) -> str:
        """The F1 line in the UI language."""
        return translated(self.help) if self.help else self.tr_text().rstrip("…").strip()


def translated(text: str, context: str = "Actions") -> str:
    """A string of this table in the UI language (marked with QT_TRANSLATE_NOOP in ``context``)."""
    from PySide6.QtCore import QCoreApplication

    return QCoreApplication.translate(context, text)


TOOL_SHORTCUTS = {
    NAVIGATE: "H", BRUSH: "B", ERASER: "E", POLYGON: "P", POLYGON_ERASE: "Shift+P", LASSO: "L",
    LASSO_ERASE: "Shift+L", PUSH_PULL: "U", CLICK: "C",
}
TOOL_HELP = {NAVIGATE: QT_TRANSLATE_NOOP("Actions", "Navigate (left-drag pans)"), PUSH_PULL: QT_TRANSLATE_NOOP("Actions", "Push / pull the boundary"),
             CLICK: QT_TRANSLATE_NOOP("Actions", "Click to correct: left click = tumour, right or Shift+click = not "
                                                 "tumour; the model redraws the mask (Ctrl+Z removes the last click)")}
# (name, label, shortcut, keyword arguments of EditController.apply_operation)
OPERATIONS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("smooth", QT_TRANSLATE_NOOP("Actions", "Smooth boundary"), "Alt+S", {}),
    ("grow", QT_TRANSLATE_NOOP("Actions", "Grow 2 px"), "Alt+=", {"pixels": 2}),
    ("shrink", QT_TRANSLATE_NOOP("Actions", "Shrink 2 px"), "Alt+-", {"pixels": 2}),
    ("fill_holes", QT_TRANSLATE_NOOP("Actions", "Fill holes"), "Alt+H", {}),
    ("remove_islands", QT_TRANSLATE_NOOP("Actions", "Remove islands < 50 px"), "Alt+I", {"min_pixels": 50}),
    ("refine", QT_TRANSLATE_NOOP("Actions", "Refine (GrabCut)"), "G", {}),
)
LAYOUT_LABELS = {"side_by_side": QT_TRANSLATE_NOOP("Actions", "Side by side"), "wli_only": QT_TRANSLATE_NOOP("Actions", "WLI only"), "nbi_only": QT_TRANSLATE_NOOP("Actions", "NBI only"),
                 "swapped": QT_TRANSLATE_NOOP("Actions", "Swapped (NBI | WLI)")}
TUMOUR_FREE_NOTE = "approved as tumour-free"  # stored in the revision note: stays English


def _tool_specs() -> list[ActionSpec]:
    return [ActionSpec(f"tool.{tool}", TOOL_LABELS[tool], "Edit", (key,), TOOL_HELP.get(tool, ""),
                       checkable=True, group="tools", separator_before=i == 0)
            for i, (tool, key) in enumerate(TOOL_SHORTCUTS.items())]


def _operation_specs() -> list[ActionSpec]:
    return [ActionSpec(f"op.{name}", label, "Edit", (key,), separator_before=i == 0, kwargs=kwargs)
            for i, (name, label, key, kwargs) in enumerate(OPERATIONS)]


def _layout_specs() -> list[ActionSpec]:
    return [ActionSpec(f"layout.{mode}", label, "View", (f"F{5 + i}",), "", checkable=True,
                       group="layouts", separator_before=i == 0)
            for i, (mode, label) in enumerate(LAYOUT_LABELS.items())]


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("new_workspace", QT_TRANSLATE_NOOP("Actions", "New workspace…"), "File", ("Ctrl+N",)),
    ActionSpec("open_workspace", QT_TRANSLATE_NOOP("Actions", "Open workspace…"), "File", ("Ctrl+O",)),
    ActionSpec("import", QT_TRANSLATE_NOOP("Actions", "Import pairs…"), "File", ("Ctrl+I",)),
    ActionSpec("import_video", QT_TRANSLATE_NOOP("Actions", "Import video…"), "File", ("Ctrl+Shift+I",),
               help=QT_TRANSLATE_NOOP("Actions", "Import endoscopy videos (WLI/NBI frames found, paired and registered)")),
    ActionSpec("export", QT_TRANSLATE_NOOP("Actions", "Export dataset…"), "File", ("Ctrl+E",)),
    ActionSpec("save", QT_TRANSLATE_NOOP("Actions", "Save now"), "File", ("Ctrl+S",), QT_TRANSLATE_NOOP("Actions", "Save now (autosave runs 2 s after the last edit)"),
               separator_before=True),
    ActionSpec("quit", QT_TRANSLATE_NOOP("Actions", "Quit"), "File", ("Ctrl+Q",), separator_before=True),

    ActionSpec("undo", QT_TRANSLATE_NOOP("Actions", "Undo"), "Edit", ("Ctrl+Z",), QT_TRANSLATE_NOOP("Actions", "Undo stroke")),
    ActionSpec("redo", QT_TRANSLATE_NOOP("Actions", "Redo"), "Edit", ("Ctrl+Shift+Z", "Ctrl+Y")),
    *_tool_specs(),
    ActionSpec("brush_larger", QT_TRANSLATE_NOOP("Actions", "Larger brush"), "Edit", ("]",), separator_before=True),
    ActionSpec("brush_smaller", QT_TRANSLATE_NOOP("Actions", "Smaller brush"), "Edit", ("[",)),
    *_operation_specs(),
    ActionSpec("settings", QT_TRANSLATE_NOOP("Actions", "Settings…"), "Edit", separator_before=True),

    ActionSpec("fit", QT_TRANSLATE_NOOP("Actions", "Fit"), "View", ("Home", "Ctrl+0"), QT_TRANSLATE_NOOP("Actions", "Fit the images to the view")),
    ActionSpec("actual_size", QT_TRANSLATE_NOOP("Actions", "Actual pixels (1:1)"), "View", ("Ctrl+1",)),
    ActionSpec("zoom_in", QT_TRANSLATE_NOOP("Actions", "Zoom in"), "View", ("Ctrl+=", "Ctrl++")),
    ActionSpec("zoom_out", QT_TRANSLATE_NOOP("Actions", "Zoom out"), "View", ("Ctrl+-",)),
    *_layout_specs(),
    ActionSpec("toggle_overlay", QT_TRANSLATE_NOOP("Actions", "Toggle overlay"), "View", ("O",), QT_TRANSLATE_NOOP("Actions", "Overlay on / off"), separator_before=True),
    ActionSpec("overlay_mode", QT_TRANSLATE_NOOP("Actions", "Next overlay mode"), "View", ("M",), QT_TRANSLATE_NOOP("Actions", "Overlay mode: outline, filled, heat map")),

    ActionSpec("next_case", QT_TRANSLATE_NOOP("Actions", "Next case"), "Case", ("PgDown", "Alt+Down")),
    ActionSpec("previous_case", QT_TRANSLATE_NOOP("Actions", "Previous case"), "Case", ("PgUp", "Alt+Up")),
    ActionSpec("accept", QT_TRANSLATE_NOOP("Actions", "Accept and next"), "Case", ("A", "Return", "Enter"),
               QT_TRANSLATE_NOOP("Actions", "Accept the mask on screen and go to the next case to review"), separator_before=True),
    ActionSpec("approve_tumour_free", QT_TRANSLATE_NOOP("Actions", "Approve as tumour-free"), "Case", ("Ctrl+Shift+A",),
               QT_TRANSLATE_NOOP("Actions", "Approve the case as showing no tumour (saves an empty mask) and go to the next case")),
    ActionSpec("exclude", QT_TRANSLATE_NOOP("Actions", "Exclude…"), "Case", ("X",), QT_TRANSLATE_NOOP("Actions", "Exclude the case with a reason")),
    ActionSpec("predict", QT_TRANSLATE_NOOP("Actions", "Predict again"), "Case", ("Ctrl+R",), separator_before=True),
    ActionSpec("preannotate", QT_TRANSLATE_NOOP("Actions", "Pre-annotate all…"), "Case", ("Ctrl+Shift+R",)),
    ActionSpec("agreement", QT_TRANSLATE_NOOP("Actions", "Agreement summary…"), "Case", ("Ctrl+Shift+D",)),

    ActionSpec("train", QT_TRANSLATE_NOOP("Actions", "Train a new version…"), "Model", ("Ctrl+T",)),
    ActionSpec("model_versions", QT_TRANSLATE_NOOP("Actions", "Model versions…"), "Model"),

    ActionSpec("shortcuts", QT_TRANSLATE_NOOP("Actions", "Keyboard shortcuts"), "Help", ("F1",), QT_TRANSLATE_NOOP("Actions", "This list of keyboard shortcuts")),
    ActionSpec("about", QT_TRANSLATE_NOOP("Actions", "About ADF Viewer"), "Help"),
)

# Keys and gestures that are not menu actions: they act inside the image views only.
GESTURES: tuple[tuple[str, str], ...] = (
    (QT_TRANSLATE_NOOP("Actions", "Wheel"), QT_TRANSLATE_NOOP("Actions", "Zoom at the cursor")),
    (QT_TRANSLATE_NOOP("Actions", "Middle / right drag"), QT_TRANSLATE_NOOP("Actions", "Pan (with the click tool a right click marks \"not tumour\": middle drag pans)")),
    ("Ctrl+wheel", QT_TRANSLATE_NOOP("Actions", "Brush size")),
    ("Enter / Esc / Backspace", QT_TRANSLATE_NOOP("Actions", "While drawing a polygon: close it / cancel it / remove the last point")),
)
GESTURES_SECTION = QT_TRANSLATE_NOOP("Actions", "Mouse, and keys while drawing")


def action(action_id: str) -> ActionSpec:
    """The spec of one action (KeyError for an unknown id)."""
    for spec in ACTIONS:
        if spec.id == action_id:
            return spec
    raise KeyError(action_id)


def help_sections() -> list[tuple[str, list[tuple[tuple[str, ...], str, str | None]]]]:
    """F1's rows by section, in the UI language: (title, [(shortcuts, help line, action id or None for a gesture)])."""
    sections: list[tuple[str, list[tuple[tuple[str, ...], str, str | None]]]] = []
    for menu in MENUS:
        rows = [(s.shortcuts, s.tr_help(), s.id) for s in ACTIONS if s.menu == menu and s.shortcuts]
        if rows:
            sections.append((translated(menu, "Menus"), rows))
    sections.append((translated(GESTURES_SECTION), [((translated(keys),), translated(text), None)
                                                    for keys, text in GESTURES]))
    return sections
