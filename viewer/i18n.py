"""The app's language: which Qt translators to install, and locale-aware numbers and dates.

Why Qt's own system: the strings are marked with ``tr()`` / ``QCoreApplication.translate`` in
the code, ``make i18n`` extracts them into ``resources/i18n/adf_viewer_<lang>.ts`` (reviewed by
a person, committed) and compiles ``.qm`` files that a ``QTranslator`` loads at start-up; no
string table is kept by hand. Qt's own ``qtbase_<lang>.qm`` translates the standard buttons
(OK, Cancel...). The language follows the OS unless the Settings dialog (or ``ADF_LANG`` /
``--lang``, for tests and screenshots) chose one; it is applied at the next start.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QDateTime, QLibraryInfo, QLocale, QSettings, QTranslator

from model.i18n_marks import QT_TRANSLATE_NOOP, Message
from training.paths import resource_path

SETTING_KEY = "language"
ENV_KEY = "ADF_LANG"
SYSTEM = ""           # follow the operating system
ENGLISH = "en"
CHINESE = "zh_CN"
TRANSLATED = (CHINESE,)  # languages with a resources/i18n/adf_viewer_<lang>.qm
APP_CATALOG = "adf_viewer"

_installed: list[QTranslator] = []  # kept alive: Qt does not own installed translators


def language_names() -> list[tuple[str, str]]:
    """The Settings dialog's choices: (setting value, label); each language named in itself."""
    return [(SYSTEM, QCoreApplication.translate("Language", "System default")),
            (ENGLISH, "English"), (CHINESE, "简体中文")]


def chosen_language(settings: QSettings | None = None) -> str:
    """``$ADF_LANG`` if set, else the stored setting, else ``SYSTEM``."""
    env = os.environ.get(ENV_KEY)
    if env is not None:
        return env
    if settings is None:
        return SYSTEM
    value = settings.value(SETTING_KEY, SYSTEM)
    return str(value) if value is not None else SYSTEM


def locale_for(choice: str, system: QLocale | None = None) -> QLocale:
    """The locale a choice means; ``SYSTEM`` is the OS locale (``system`` for tests)."""
    if choice == SYSTEM:
        return system if system is not None else QLocale.system()
    if choice == ENGLISH:
        return QLocale(QLocale.Language.English, QLocale.Country.UnitedStates)
    return QLocale(choice)


def translation_dirs() -> list[Path]:
    """Where .qm files are looked for: the app's resources (frozen or source), then Qt's own."""
    return [resource_path("i18n"), Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath))]


def qm_file(locale: QLocale, catalog: str = APP_CATALOG) -> Path | None:
    """The .qm of ``catalog`` for ``locale`` (e.g. adf_viewer_zh_CN.qm), or None when there is none."""
    for folder in translation_dirs():
        tr = QTranslator()
        if tr.load(locale, catalog, "_", str(folder)):
            return Path(tr.filePath())
    return None


def install(app: Any, settings: QSettings | None = None, system: QLocale | None = None) -> QLocale:
    """Install the translators of the chosen language and make its locale the default one.

    Returns the locale in use. English (or a language without a catalogue) installs nothing, so
    the source strings are shown. Calling it again replaces what an earlier call installed."""
    for tr in _installed:
        app.removeTranslator(tr)
    _installed.clear()
    locale = locale_for(chosen_language(settings), system)
    QLocale.setDefault(locale)
    if locale.language() == QLocale.Language.English:
        return locale
    for catalog in (APP_CATALOG, "qtbase"):
        path = qm_file(locale, catalog)
        if path is None:
            continue
        tr = QTranslator(app)
        if tr.load(str(path)) and app.installTranslator(tr):
            _installed.append(tr)
    return locale


def installed_files() -> list[Path]:
    """The .qm files installed now (tests, the self-test)."""
    return [Path(tr.filePath()) for tr in _installed]


def number(value: float, decimals: int = 2) -> str:
    """A number in the current locale's format (Dice, areas)."""
    return QLocale().toString(float(value), "f", decimals)


def integer(value: int) -> str:
    """A whole number with the locale's group separators (pixel areas, counts)."""
    return QLocale().toString(int(value))


def percent(fraction: float, decimals: int = 0) -> str:
    """A fraction (0.25) as a percentage in the locale's format ("25%")."""
    loc = QLocale()
    return loc.toString(float(fraction) * 100.0, "f", decimals) + loc.percent()


def date_time(when: datetime) -> str:
    """A local date and time in the locale's short format (revision history, worklist); ISO
    (2026-12-01 05:20) when the OS gives no locale (LANG unset or C), whose short format
    ("1 12 2026 05:20") leaves day and month ambiguous."""
    qdt = QDateTime.fromSecsSinceEpoch(int(when.timestamp()))
    locale = QLocale()
    if locale.language() == QLocale.Language.C:
        return qdt.toString("yyyy-MM-dd HH:mm")
    return locale.toString(qdt, QLocale.FormatType.ShortFormat)


# phrases of model/predictor.py's device line ("CPU — no CUDA device found"), translated where they
# occur in it (model/ has no Qt; the line's structure is fixed there)
DEVICE_PHRASES = (
    QT_TRANSLATE_NOOP("Device", "CUDA requested but not available"),
    QT_TRANSLATE_NOOP("Device", "CUDA failed at run time"),
    QT_TRANSLATE_NOOP("Device", "torch was built without CUDA"),
    QT_TRANSLATE_NOOP("Device", "no CUDA device found"),
    QT_TRANSLATE_NOOP("Device", "CUDA probe returned a wrong result"),
    QT_TRANSLATE_NOOP("Device", "CUDA probe failed"),
    QT_TRANSLATE_NOOP("Device", "requested"),
)


def device_text(reason: str) -> str:
    """The predictor's device line ("CPU — no CUDA device found") with its known phrases translated;
    the GPU's name and raw driver messages stay as they are."""
    head, sep, rest = reason.partition(" — ")
    if not sep:
        return reason
    for phrase in DEVICE_PHRASES:
        if rest.startswith(phrase):
            rest = QCoreApplication.translate("Device", phrase) + rest[len(phrase):]
            break
    return head + sep + rest


def stored_time(iso_utc: str) -> str:
    """A stored UTC timestamp (training/timestamps.py) as local time in the locale's short format."""
    try:
        when = datetime.fromisoformat(str(iso_utc).replace("Z", "+00:00"))
    except ValueError:
        return str(iso_utc)
    return date_time(when)


def error_text(exc: BaseException | str) -> str:
    """An error in the UI language.

    Messages of training/ and model/ built as ``model.i18n_marks.Message`` are translated
    (context "Errors") and filled in, also as the ``reason`` of an error that has a ``path``
    (unreadable image, corrupt model file: "<path>: <reason>"). Anything else (raw OS and SQLite
    texts, rare internal errors) is shown as it is, in English."""
    if isinstance(exc, Message):
        return _message_text(exc)
    if not isinstance(exc, BaseException):
        return str(exc)
    first = exc.args[0] if exc.args else None
    if isinstance(first, Message):
        return _message_text(first)
    reason = getattr(exc, "reason", None)
    if isinstance(reason, Message) and getattr(exc, "path", None) is not None:
        return f"{exc.path}: {_message_text(reason)}"  # type: ignore[attr-defined]
    return str(exc) or exc.__class__.__name__


def _message_text(msg: Message) -> str:
    try:
        return QCoreApplication.translate("Errors", msg.template).format(**msg.fields)
    except (KeyError, IndexError, ValueError):  # a translation with a broken field: the English text
        return str(msg)
