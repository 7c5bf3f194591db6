"""Timestamps as the workspace stores them and as the user reads them (no numpy, no torch, no Qt).

Stored: UTC in ISO 8601 with a ``Z`` (``2025-01-31T09:02:03.456Z``), so rows written on machines in
different time zones sort and compare as they happened. Shown: the user's local time, to the
minute. One rule for the store's rows, the presence records and export markers.
"""
from __future__ import annotations

import datetime as _dt


def utc_now(timespec: str = "milliseconds") -> str:
    """Now, UTC, ISO 8601 with ``Z`` (``timespec`` as ``datetime.isoformat``'s)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def local_time(iso_utc: str) -> str:
    """A stored UTC timestamp as the user's local "YYYY-MM-DD HH:MM" (the text itself if unparsable)."""
    try:
        return _dt.datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")
    except (ValueError, AttributeError):
        return str(iso_utc)
