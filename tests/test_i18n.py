"""The app in English and Simplified Chinese (issue 21).

Why: the first clinical users work in Guangdong. Checked here: (a) every string the code marks
for translation has a finished entry in resources/i18n/adf_viewer_zh_CN.ts (a string added to
the code without its translation fails), (b) the main window and every dialog, in zh_CN at
their default size, show each label, button, check box, group title and combo box whole, and
(c) the language follows the OS unless the Settings dialog chose one, and the .qm is found where
the frozen app looks for it.
"""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QDateTime, QLocale, QRect, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QGroupBox,
    QLabel,
    QTabBar,
    QTableWidget,
    QWidget,
)

from tests.conftest import ROOT
from tests.test_window_layout import long_id_workspace
from tests.viewer_fixtures import FakePredictor, wait_for_prediction

TS = ROOT / "resources" / "i18n" / "adf_viewer_zh_CN.ts"
SOURCES = ("main.py", "viewer", "training", "model")  # what `make i18n` scans
PLACEHOLDER = re.compile(r"\{\w*\}")


# ---- (a) the .ts is complete ------------------------------------------------------------------
def lupdate() -> Path:
    """The venv's pyside6-lupdate (the one `make i18n` runs)."""
    exe = Path(sys.executable).parent / "pyside6-lupdate"
    assert exe.is_file(), f"{exe} missing: PySide6-Essentials ships it (requirements.txt)"
    return exe


def ts_messages(path: Path) -> dict[tuple[str, str], ET.Element]:
    """(context, source) -> the <translation> element, for every <message> of a .ts file."""
    out = {}
    for ctx in ET.parse(path).getroot().iter("context"):
        name = ctx.findtext("name") or ""
        for msg in ctx.iter("message"):
            out[(name, msg.findtext("source") or "")] = msg.find("translation")
    return out


def extracted(sources: list[Path], tmp: Path) -> set[tuple[str, str]]:
    """What lupdate finds in ``sources`` now: (context, source) pairs."""
    out = tmp / "extracted.ts"
    r = subprocess.run([str(lupdate()), "-extensions", "py", "-no-obsolete", "-locations", "none",
                        *map(str, sources), "-ts", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(ts_messages(out))


def translation_problems(ts: Path, sources: list[Path], tmp: Path) -> list[str]:
    """Every reason the .ts is not ready: a string of the code missing from it, an entry no
    longer in the code (run `make i18n`), an empty, unfinished or obsolete translation, or a
    translation that drops or invents a ``{field}``."""
    committed = ts_messages(ts)
    found = extracted(sources, tmp)
    problems = [f"not in {ts.name} (run `make i18n`, then translate): [{c}] {s!r}" for c, s in sorted(found - set(committed))]
    problems += [f"no longer in the code (run `make i18n`): [{c}] {s!r}" for c, s in sorted(set(committed) - found)]
    for (ctx, src), tr in sorted(committed.items()):
        kind = tr.get("type") if tr is not None else "missing"
        text = (tr.text or "") if tr is not None else ""
        if kind in ("unfinished", "obsolete", "vanished", "missing") or not text.strip():
            problems.append(f"untranslated ({kind or 'empty'}): [{ctx}] {src!r}")
        elif sorted(PLACEHOLDER.findall(src)) != sorted(PLACEHOLDER.findall(text)):
            problems.append(f"fields differ: [{ctx}] {src!r} -> {text!r}")
    return problems


def test_every_marked_string_has_a_finished_chinese_translation(tmp_path: Path) -> None:
    problems = translation_problems(TS, [ROOT / s for s in SOURCES], tmp_path)
    assert not problems, "\n".join(problems)


def test_the_check_fails_on_a_string_added_without_its_translation(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "viewer" / "settings_dialog.py", src / "settings_dialog.py")  # fully translated
    assert translation_problems(TS, [src], tmp_path) == [
        f"no longer in the code (run `make i18n`): [{c}] {s!r}" for c, s in sorted(set(ts_messages(TS)) - extracted([src], tmp_path))]
    (src / "new_panel.py").write_text(
        "from PySide6.QtWidgets import QWidget\n\n\nclass NewPanel(QWidget):\n"
        "    def label(self) -> str:\n        return self.tr(\"Tumour margin checked\")\n", encoding="utf-8")
    problems = translation_problems(TS, [src], tmp_path)
    assert "not in adf_viewer_zh_CN.ts (run `make i18n`, then translate): [NewPanel] 'Tumour margin checked'" in problems
    # an entry left unfinished (as lupdate adds it) or with a lost field is caught as well
    bad = tmp_path / "bad.ts"
    bad.write_text(TS.read_text(encoding="utf-8").replace("<translation>已将 {case} 保存为修订版本 {rev}（{reason}）",
                                                          "<translation type=\"unfinished\">已保存", 1), encoding="utf-8")
    assert any(p.startswith("untranslated (unfinished): [Review] 'Saved {case}")
               for p in translation_problems(bad, [ROOT / s for s in SOURCES], tmp_path))


def test_clinical_terms_are_the_ones_clinicians_use() -> None:
    """The reviewed vocabulary: 白光 (WLI), 窄带成像 (NBI), 肿瘤, 勾画, 修订, 病例, 工作区, 掩膜."""
    zh = {src: (tr.text or "") for (_c, src), tr in ts_messages(TS).items()}
    assert "白光 (WLI)" in zh["<p>Paired WLI | NBI endoscopy viewer with a local Align-Disentangle-Fusion tumour "
                              "segmentation model. Everything runs on this computer; no image or mask ever leaves it.</p>"]
    assert "窄带成像 (NBI)" in zh[next(s for s in zh if s.startswith("<b>Research demonstration"))]
    assert "不是医疗器械" in zh[next(s for s in zh if s.startswith("<b>Research demonstration"))]
    assert "勾画肿瘤" in zh[next(s for s in zh if s.startswith("Nothing to accept for"))]
    assert zh["Approve as tumour-free"] == "确认为无肿瘤" and zh["Restore selected as new revision"] == "将所选版本恢复为新修订"
    assert zh["Worklist"] == "工作列表" and "工作区" in zh["New workspace…"] and "掩膜" in zh["Use model prediction"] + zh[
        "Replace the current mask by the model's prediction (undoable)"]
    assert zh["WLI only"] == "仅 WLI" and zh["NBI only"] == "仅 NBI"  # abbreviations kept where clinicians keep them


# ---- the language and its translators --------------------------------------------------------
@pytest.fixture
def zh_cn(qapp, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The app in zh_CN (as ``ADF_LANG=zh_CN`` or ``--lang zh_CN`` starts it); English again after."""
    from viewer import i18n

    monkeypatch.setenv("ADF_LANG", "zh_CN")
    i18n.install(qapp)
    try:
        yield
    finally:
        monkeypatch.setenv("ADF_LANG", "en")
        i18n.install(qapp)


def test_system_default_follows_a_chinese_os_and_english_overrides_it(qapp, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from viewer import i18n
    from viewer.app import settings_at

    monkeypatch.delenv("ADF_LANG")
    settings = settings_at(tmp_path / "settings.ini")
    chinese_os = QLocale(QLocale.Language.Chinese, QLocale.Country.China)
    try:
        assert i18n.chosen_language(settings) == i18n.SYSTEM  # nothing chosen: the OS decides
        assert i18n.install(qapp, settings, system=chinese_os).name() == "zh_CN"
        assert sorted(p.name for p in i18n.installed_files()) == ["adf_viewer_zh_CN.qm", "qtbase_zh_CN.qm"]
        assert QCoreApplication.translate("Menus", "&File") == "文件(&F)"
        assert QLocale().name() == "zh_CN"  # numbers and dates follow
        settings.setValue(i18n.SETTING_KEY, i18n.ENGLISH)
        assert i18n.install(qapp, settings, system=chinese_os).language() == QLocale.Language.English
        assert i18n.installed_files() == [] and QCoreApplication.translate("Menus", "&File") == "&File"
        settings.setValue(i18n.SETTING_KEY, i18n.CHINESE)  # and Chinese on an English OS
        assert i18n.install(qapp, settings, system=QLocale("en_US")).name() == "zh_CN"
        assert QCoreApplication.translate("Menus", "&File") == "文件(&F)"
    finally:
        monkeypatch.setenv("ADF_LANG", "en")
        i18n.install(qapp)
    assert QCoreApplication.translate("Menus", "&File") == "&File"


def test_settings_dialog_stores_the_language_for_the_next_start(qtbot, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from viewer import i18n
    from viewer.app import settings_at
    from viewer.settings_dialog import SettingsDialog

    settings = settings_at(tmp_path / "settings.ini")
    dlg = SettingsDialog(settings)
    qtbot.addWidget(dlg)
    assert [dlg.language.itemText(i) for i in range(dlg.language.count())] == ["System default", "English", "简体中文"]
    assert dlg.language.currentData() == i18n.SYSTEM
    dlg.language.setCurrentIndex(dlg.language.findData(i18n.CHINESE))
    dlg.accept()
    assert settings_at(tmp_path / "settings.ini").value(i18n.SETTING_KEY) == "zh_CN"
    monkeypatch.delenv("ADF_LANG")
    assert i18n.chosen_language(settings_at(tmp_path / "settings.ini")) == "zh_CN"
    monkeypatch.setenv("ADF_LANG", "en")  # the environment (tests, --lang) wins over the setting
    assert i18n.chosen_language(settings) == "en"


def test_the_frozen_app_finds_its_translations_in_its_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyInstaller unpacks resources/ under sys._MEIPASS (packaging/adf_viewer.spec puts the .qm
    files in resources/i18n there); the app must load them from there, not from the source tree."""
    from viewer import i18n

    built = ROOT / "resources" / "i18n" / "adf_viewer_zh_CN.qm"
    assert built.is_file(), "run `make qm` (make test does)"
    bundle = tmp_path / "bundle"
    (bundle / "resources" / "i18n").mkdir(parents=True)
    shutil.copy(built, bundle / "resources" / "i18n" / built.name)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert i18n.qm_file(QLocale("zh_CN")) == bundle / "resources" / "i18n" / "adf_viewer_zh_CN.qm"
    assert i18n.qm_file(QLocale("fr_FR")) is None
    spec = (ROOT / "packaging" / "adf_viewer.spec").read_text(encoding="utf-8")
    assert '"resources/i18n"' in spec and "qtbase_" in spec


def test_numbers_dates_and_errors_are_shown_in_the_locale(zh_cn) -> None:
    from model.i18n_marks import QT_TRANSLATE_NOOP, Message
    from training.imageio import ImageReadError
    from training.store import WorkspaceError
    from viewer import i18n

    when = datetime(2026, 3, 5, 14, 7).astimezone()
    shown_zh = i18n.date_time(when)
    assert shown_zh == QLocale("zh_CN").toString(QDateTime.fromSecsSinceEpoch(int(when.timestamp())),
                                                 QLocale.FormatType.ShortFormat)
    assert "2026/3/5" in shown_zh and "14:07" in shown_zh
    assert i18n.stored_time(when.astimezone(UTC).isoformat().replace("+00:00", "Z")) == shown_zh
    assert i18n.number(0.8766, 3) == "0.877" and i18n.percent(0.25) == "25%" and i18n.integer(12345) == "12,345"
    err = WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "workspace {root} is read-only"), root="/data/ws"))
    assert str(err) == "workspace /data/ws is read-only"  # the CLI and the logs stay English
    assert i18n.error_text(err) == "工作区 /data/ws 是只读的"
    bad = ImageReadError("/x/a.png", Message(QT_TRANSLATE_NOOP("Errors", "truncated PNG (no IEND chunk)")))
    assert i18n.error_text(bad) == "/x/a.png: PNG 文件不完整（缺少 IEND 块）"
    assert i18n.error_text(OSError(28, "No space left on device")) == "[Errno 28] No space left on device"
    assert i18n.device_text("CPU — no CUDA device found") == "CPU — 未找到 CUDA 设备"
    assert i18n.device_text("CUDA: NVIDIA H100") == "CUDA: NVIDIA H100"


# ---- (b) nothing cut off in zh_CN ---------------------------------------------------------------
MEASURED = (QLabel, QAbstractButton, QGroupBox, QComboBox, QTabBar)


def _text(w: QWidget) -> str:
    if isinstance(w, (QLabel, QAbstractButton)):
        return w.text()
    if isinstance(w, QGroupBox):
        return w.title()
    if isinstance(w, QComboBox):
        return w.currentText()
    if isinstance(w, QTabBar):
        return " | ".join(w.tabText(i) for i in range(w.count()))
    return ""


def cut_off(root: QWidget) -> list[str]:
    """The visible text widgets under ``root`` that are smaller than their size hint (a word-wrapped
    label: shorter than the height its text needs at its width; a group box: smaller than its
    minimum size), with their texts."""
    problems = []
    for w in [root, *root.findChildren(QWidget)]:
        if not isinstance(w, MEASURED) or not w.isVisible() or not _text(w).strip():
            continue
        # a group box may be squeezed down to its minimum (its title and its children's minimum sizes;
        # the children are measured one by one); a text widget needs its size hint (its whole text)
        hint = w.minimumSizeHint() if isinstance(w, QGroupBox) else w.sizeHint()
        if isinstance(w, QLabel) and w.wordWrap():
            need = w.heightForWidth(w.contentsRect().width()) + w.height() - w.contentsRect().height()
            if need > w.height() + 1:
                problems.append(f"{type(w).__name__} {_text(w)!r}: needs {need} px high, has {w.height()}")
            continue
        if w.width() < hint.width() or w.height() < hint.height():
            problems.append(f"{type(w).__name__} {_text(w)!r}: {w.width()}x{w.height()} < hint "
                            f"{hint.width()}x{hint.height()}")
    for table in root.findChildren(QTableWidget):  # the shortcut table, history, model versions...
        if table.isVisible():
            problems += _table_cut_off(table)
    return problems


def settled_cut_off(qtbot, root: QWidget, timeout_ms: int = 3000) -> list[str]:
    """``cut_off`` once the layout has settled: a text set by a late signal (the model panel's
    status after the first prediction) posts a layout request that one processEvents may not
    reach yet. A real cut-off stays after the wait and is returned."""
    try:
        qtbot.waitUntil(lambda: not cut_off(root), timeout=timeout_ms)
    except qtbot.TimeoutError:
        pass
    return cut_off(root)


def _table_cut_off(table: QTableWidget) -> list[str]:
    """Header titles and cell texts wider than their column (Qt would elide them with "…")."""
    fm, pad = table.fontMetrics(), 8
    problems = []
    for col in range(table.columnCount()):
        if table.isColumnHidden(col):
            continue
        width = table.columnWidth(col)
        head = table.horizontalHeaderItem(col)
        if head is not None and head.text() and fm.horizontalAdvance(head.text()) + pad > width:
            problems.append(f"table header {head.text()!r}: {fm.horizontalAdvance(head.text())} px > column {width}")
        for row in range(table.rowCount()):
            item = table.item(row, col)
            if item is not None and item.text():
                ifm = QFontMetrics(item.font())
                need = ifm.horizontalAdvance(item.text()) + pad
                if need > width and table.wordWrap():  # wrapped: its lines must fit the row's height
                    lines = ifm.boundingRect(QRect(0, 0, width - pad, 100000), Qt.TextFlag.TextWordWrap, item.text())
                    if lines.height() <= table.rowHeight(row):
                        continue
                if need > width:
                    problems.append(f"table cell {item.text()!r}: {need} px > column {width}")
    return problems


def chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def shown(qtbot, dlg: QWidget) -> QWidget:
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    QApplication.processEvents()
    return dlg


def test_window_and_every_dialog_fit_their_chinese_text_at_the_default_size(qtbot, tmp_path: Path, zh_cn) -> None:
    from training.store import RevisionConflict, Workspace
    from viewer import dialog_launchers
    from viewer.app import make_app, settings_at
    from viewer.dialogs import AgreementDialog, ImportDialog, ShortcutsDialog
    from viewer.export_dialog import ExportDialog
    from viewer.main_window import MainWindow
    from viewer.models_dialog import ModelsDialog
    from viewer.save_conflict import SaveConflictDialog
    from viewer.settings_dialog import SettingsDialog
    from viewer.train_dialog import TrainDialog
    from viewer.video_import_dialog import VideoImportDialog

    root, busy_case = long_id_workspace(tmp_path)
    make_app()  # as the app starts (ADF_LANG=zh_CN here)
    settings = settings_at(tmp_path / "fresh.ini")
    pred = FakePredictor()
    win = MainWindow(settings, device="cpu", predictor_factory=lambda _p, _d: pred)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_workspace(root)
    win.open_case(busy_case)
    wait_for_prediction(qtbot, win, busy_case)
    QApplication.processEvents()
    # the translator is really loaded: menus, docks and panels speak Chinese
    assert [a.text() for a in win.menuBar().actions()] == ["文件(&F)", "编辑(&E)", "视图(&V)", "病例(&C)", "模型(&M)",
                                                           "帮助(&H)"]
    assert win.worklist_dock.windowTitle() == "工作列表" and win.accept_btn.text() == "确认 (A)"
    assert win.worklist_model.headerData(0, Qt.Orientation.Horizontal) == "病例"
    assert chinese(win.case_label.text()) and chinese(win.device_label_panel.text())
    problems = settled_cut_off(qtbot, win)
    assert not problems, "main window:\n" + "\n".join(problems)

    ws = win.ws
    assert isinstance(ws, Workspace)
    rev = ws.history(busy_case)[-1]
    mine = np.zeros(ws.load_mask(rev).shape, bool)
    from training.recovery import JournalEntry

    entries = [JournalEntry(case_id=f"{busy_case}-{i}", mask=mine, base_rev=None, model_id=None, author="dr.a",
                            written_at=0.0, path=tmp_path / f"j{i}") for i in range(3)]
    dialogs = {
        "SettingsDialog": SettingsDialog(settings, win),
        "ShortcutsDialog": ShortcutsDialog(win),
        "AgreementDialog": AgreementDialog(ws.cases(), win),
        "ImportDialog": ImportDialog(root, win),
        "ExportDialog": ExportDialog(root, win),
        "ModelsDialog": ModelsDialog(ws.models(), win, workspace_root=root),
        "TrainDialog": TrainDialog(root, ws.models(), win),
        "VideoImportDialog": VideoImportDialog(root, win, settings),
        "SaveConflictDialog": SaveConflictDialog(win, RevisionConflict(busy_case, rev.rev - 1, rev), mine,
                                                 ws.load_mask(rev)),
        "about": dialog_launchers.about_box(win),
        "exclude": dialog_launchers.exclude_dialog(win),
        "recovery": dialog_launchers.recovery_box(win, entries),
    }
    # every QDialog subclass of viewer/ is measured here (a new dialog must be added above)
    declared = {node.name for path in (ROOT / "viewer").glob("*.py")
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "QDialog" for b in node.bases)}
    assert declared <= set(dialogs), f"dialogs not measured in zh_CN: {declared - set(dialogs)}"
    failures = []
    for name, dlg in dialogs.items():
        shown(qtbot, dlg)
        assert chinese(dlg.windowTitle()), (name, dlg.windowTitle())
        failures += [f"{name}: {p}" for p in cut_off(dlg)]
        measured = [w for w in dlg.findChildren(QWidget) if isinstance(w, MEASURED) and w.isVisible() and _text(w)]
        assert measured, name  # the check did look at something
        dlg.close()
    assert not failures, "\n".join(failures)


def test_the_size_check_sees_a_cut_off_text(qtbot, zh_cn) -> None:
    """cut_off() itself: a button narrower than its Chinese text and a wrapped label without the
    height for its lines are reported; the same widgets at their natural size are not."""
    from PySide6.QtWidgets import QPushButton, QVBoxLayout

    box = QWidget()
    lay = QVBoxLayout(box)
    btn = QPushButton(QCoreApplication.translate("SaveConflictDialog", "Save mine as newer revision"))
    label = QLabel(QCoreApplication.translate("TrainDialog", "Fine-tunes a model on this workspace's reviewed cases "
                                              "(a held-out part is used for validation). Runs on this computer; "
                                              "nothing is uploaded."))
    label.setWordWrap(True)
    lay.addWidget(btn)
    lay.addWidget(label)
    shown(qtbot, box)
    assert chinese(btn.text()) and cut_off(box) == []
    btn.setFixedWidth(btn.sizeHint().width() // 2)
    label.setFixedSize(label.sizeHint().width() // 3, label.fontMetrics().height())
    QApplication.processEvents()
    problems = cut_off(box)
    assert len(problems) == 2 and problems[0].startswith("QPushButton '将我的保存为更新的修订'"), problems
    assert problems[1].startswith("QLabel '在本工作区已审核的病例上微调模型"), problems


def test_dates_without_an_os_locale_are_iso_not_ambiguous(qapp) -> None:
    """Seen on a machine with LANG unset: the C locale's short format wrote "1 12 2026 05:20"."""
    from viewer import i18n

    when = datetime(2026, 12, 1, 5, 20).astimezone()
    before = QLocale()
    QLocale.setDefault(QLocale.c())
    try:
        assert i18n.date_time(when) == "2026-12-01 05:20"
    finally:
        QLocale.setDefault(before)
