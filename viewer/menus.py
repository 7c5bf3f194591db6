"""The table of viewer/actions.py made real: what each action does, one QAction per row on the
window (shortcuts, tooltips, exclusive groups, undo/redo from the undo group), and the menu bar.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu

from viewer import dialog_launchers as dialogs
from viewer.actions import ACTIONS, LAYOUT_LABELS, MENU_TITLES, MENUS, OPERATIONS, TOOL_SHORTCUTS, translated

if TYPE_CHECKING:
    from viewer.main_window import MainWindow


def action_slots(win: MainWindow) -> dict[str, Callable[[], Any]]:
    """What each action of ACTIONS does (undo/redo come from the undo group)."""
    ed, pair = win.editor, win.pair
    slots: dict[str, Callable[[], Any]] = {
        "new_workspace": lambda: dialogs.new_workspace(win), "open_workspace": lambda: dialogs.open_workspace(win),
        "import": lambda: dialogs.import_pairs(win), "import_video": lambda: dialogs.import_video(win),
        "export": win.export_dialog, "save": lambda: win.save_current("manual"), "quit": win.close,
        "brush_larger": lambda: ed.set_radius(ed.radius + max(1, ed.radius // 8)),
        "brush_smaller": lambda: ed.set_radius(ed.radius - max(1, ed.radius // 8)),
        "fit": pair.fit, "actual_size": pair.actual_size,
        "zoom_in": lambda: pair.zoom(1.25), "zoom_out": lambda: pair.zoom(0.8),
        "toggle_overlay": lambda: win.overlay_visible.toggle(),
        "overlay_mode": lambda: win.tools_panel.cycle_overlay_mode(),
        "next_case": win.next_case, "previous_case": win.previous_case,
        "accept": win.accept_current, "approve_tumour_free": win.approve_tumour_free,
        "exclude": win.exclude_current_dialog, "predict": win.request_prediction,
        "preannotate": win.preannotate_all, "agreement": lambda: dialogs.agreement_summary(win),
        "train": win.train_dialog, "model_versions": win.models_dialog,
        "settings": lambda: dialogs.settings(win), "shortcuts": lambda: dialogs.shortcuts(win), "about": lambda: dialogs.about(win),
    }
    for tool in TOOL_SHORTCUTS:
        slots[f"tool.{tool}"] = lambda t=tool: ed.set_tool(t)
    for name, _label, _key, kwargs in OPERATIONS:
        slots[f"op.{name}"] = lambda n=name, k=kwargs: ed.apply_operation(n, **k)
    for mode in LAYOUT_LABELS:
        slots[f"layout.{mode}"] = lambda m=mode: win.set_layout_mode(m)
    return slots


def create_actions(window: QMainWindow, slots: dict[str, Callable[[], Any]],
                   undo_group: QUndoGroup) -> tuple[dict[str, QAction], dict[str, QActionGroup]]:
    """One QAction per row of ACTIONS, with its shortcuts, added to the window (so its keys work
    with the menus hidden); returns them by action id, and the exclusive groups by name."""
    groups: dict[str, QActionGroup] = {}
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        if spec.id == "undo":
            act = undo_group.createUndoAction(window, spec.tr_text())
        elif spec.id == "redo":
            act = undo_group.createRedoAction(window, spec.tr_text())
        else:
            act = QAction(spec.tr_text(), window)
            act.setCheckable(spec.checkable)
            act.triggered.connect(lambda _c=False, f=slots[spec.id]: f())
        if spec.shortcuts:
            act.setShortcuts([QKeySequence(k) for k in spec.shortcuts])
            act.setToolTip(f"{spec.tr_text().rstrip('…')} ({spec.shortcuts[0]})")
        if spec.group:
            groups.setdefault(spec.group, QActionGroup(window)).addAction(act)
        window.addAction(act)
        actions[spec.id] = act
    return actions, groups


def build_menus(window: QMainWindow, actions: dict[str, QAction], docks: Iterable[QDockWidget]) -> dict[str, QMenu]:
    """The menu bar, in the order of ACTIONS, plus the docks' show/hide toggles under View."""
    menus = {name: window.menuBar().addMenu(translated(MENU_TITLES[name][1], "Menus")) for name in MENUS}
    for spec in ACTIONS:
        if spec.separator_before:
            menus[spec.menu].addSeparator()
        menus[spec.menu].addAction(actions[spec.id])
    menus["View"].addSeparator()
    for dock in docks:
        menus["View"].addAction(dock.toggleViewAction())
    return menus
