"""Marks strings of Qt-free code (model/, training/) for translation (no Qt, torch or numpy).

In model/ because model/ is the lowest package (training/ imports it, never the reverse).

``pyside6-lupdate`` recognises ``QT_TRANSLATE_NOOP(context, text)`` by its name and extracts the
text into ``resources/i18n/*.ts``; here it returns the English text unchanged. The viewer
translates it at display time with ``QCoreApplication.translate(context, text)`` (errors:
``viewer.i18n.error_text``), so training/ and model/ stay usable without Qt.
"""
from __future__ import annotations

from typing import Any


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:  # noqa: N802 - the name lupdate looks for
    """The text itself; marks it for extraction into the context ``context``."""
    return text


class Message(str):
    """An English message that also carries its template and fields, so the viewer can show it
    translated: ``str(Message(T, path=p))`` is ``T.format(path=p)``; ``.template`` is ``T``."""

    template: str
    fields: dict[str, Any]

    def __new__(cls, template: str, **fields: Any) -> Message:
        self = super().__new__(cls, template.format(**fields))
        self.template = template
        self.fields = fields
        return self
